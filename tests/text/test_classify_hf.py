"""text classify train --model bert --pretrained DIR: a tiny Hugging Face BERT folder built here (no
download), fine-tuned through the CLI on SMS messages; the weights and tokenizer really come from the folder,
the model file alone predicts, and bad folders are one-line errors. Needs the `hf` extra (make setup)."""

from __future__ import annotations

import csv
import json
import shutil
import string
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.text.conftest import SMS, assert_error, jsonl, run_main, sms_subset

PROBE = "Free entry: text WIN to 87121 now!"  # a text whose pooled output is compared with transformers'


def _bert_folder(folder: Path, texts: list[str]) -> None:
    """A tiny BERT as `save_pretrained` writes it: config.json, model.safetensors, the tokenizer files. Its
    WordPiece vocabulary: the specials, every letter and digit (alone and as ##piece) and the texts' frequent
    words, so most words are whole tokens and the rest split."""
    import transformers

    counts = Counter(w for t in texts for w in transformers.BasicTokenizer(do_lower_case=True).tokenize(t))
    chars = list(string.ascii_lowercase + string.digits)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + chars + ["##" + c for c in chars] + [w for w, _ in counts.most_common(150) if w not in chars]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)


def _pooled(folder: Path, text: str) -> torch.Tensor:
    """transformers' own pooled output of `text`, from the folder (the reference)."""
    import transformers

    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder, local_files_only=True)
    model = transformers.BertModel.from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).pooler_output[0]


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """One fine-tuning run from the folder: 60 SMS messages, one epoch, an lr so small (1e-6, onecycle from
    lr/25) that the weights move by about 1e-6: still the folder's to 1e-4, where a freshly initialised
    network (std 0.02) would be off by ~1e-2."""
    base = tmp_path_factory.mktemp("hf")
    data = base / "sms.csv"
    sms_subset(data, SMS / "train.csv", 40, 20)
    with open(data, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    folder = base / "bert-tiny"
    _bert_folder(folder, texts)
    from safetensors.torch import load_file

    reference = {"pooled": _pooled(folder, PROBE), "weights": load_file(folder / "model.safetensors")}
    run = base / "run"
    code, out, err = run_main("text", "classify", "train", data, "--model", "bert", "--pretrained", folder,
                              "--epochs", "1", "--batch-size", "16", "--lr", "1e-6", "--device", "cpu",
                              "--out", run, "--format", "json")
    assert code == 0, err
    shutil.rmtree(folder)  # from here on the model file must stand alone
    return {"data": data, "run": run, "folder": folder, "summary": json.loads(out), "stderr": err, **reference}


def test_weights_and_tokenizer_come_from_the_folder_and_the_model_file_stands_alone(cli, hf_run, tmp_path):
    run = hf_run["run"]
    assert "pretrained: BERT of 1 layer, width 16" in hf_run["stderr"] and "val_accuracy" in hf_run["summary"]
    ckpt = torch.load(run / "model.pt", weights_only=True)  # tensors and plain data only
    assert ckpt["arch"] == "bert_hf" and ckpt["arch_kwargs"]["config"]["hidden_size"] == 16
    assert ckpt["preprocess"]["vocab"]["kind"] == "hf" and json.loads(ckpt["preprocess"]["vocab"]["subword_json"])
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.allclose(ckpt["state_dict"]["bert." + key], hf_run["weights"][key], atol=1e-4), key
    # the folder is gone: predict --embed on raw text repeats its tokenizer and network (pooled output)
    out = tmp_path / "emb.csv"
    r = cli("text", "classify", "predict", run, "--embed", "-o", out, input=PROBE + "\n")
    assert r.code == 0, r.stderr
    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    embedded = torch.tensor([float(row[f"emb{i}"]) for i in range(16)])
    assert torch.allclose(embedded, hf_run["pooled"], atol=1e-4)
    r = cli("text", "classify", "predict", run, "--format", "jsonl", input="Call now to claim your prize\nok see u\n")
    preds = jsonl(r.stdout)
    assert r.code == 0 and len(preds) == 2 and {p["label"] for p in preds} <= {"ham", "spam"}
    r = cli("text", "classify", "eval", run, hf_run["data"], "--format", "json", "--quiet")
    assert r.code == 0 and json.loads(r.stdout)["n"] == 60
    # without transformers installed, such a model file names the extra to install
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "transformers", None)  # `import transformers` raises ImportError
        assert_error(cli("text", "classify", "predict", run, input="hello\n"), "transformers", "dltool[hf]")


def test_bert_hf_forward_backward():
    from dltool.text.models import create_model

    config = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 16, "max_position_embeddings": 16}
    model = create_model("bert_hf", config=config, num_classes=3)
    ids, lengths = torch.randint(1, 30, (3, 7)), torch.tensor([7, 4, 1])
    out = model(ids, lengths)
    assert out.shape == (3, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # padding never reaches a text's output
    model.eval()
    assert torch.allclose(model(ids[1:2, :4], lengths[1:2]), model(ids, lengths)[1:2], atol=1e-5)


def test_bad_folders(cli, hf_run, tmp_path, monkeypatch):
    run, data = tmp_path / "run", hf_run["data"]

    def train(*args):
        return cli("text", "classify", "train", data, "--model", "bert", "--epochs", "1", "--out", run, *args)

    assert_error(train("--pretrained", tmp_path / "missing"), "no such local folder", "a local Hugging Face BERT folder")
    assert_error(train("--pretrained", "bert-base-uncased"), "never downloads", "hf download bert-base-uncased")
    (tmp_path / "models" / "bert-tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    r = train("--pretrained", "models/bert-tin")  # a local path (shaped like owner/name) with a typo: no Hub talk
    assert_error(r, "no such local folder", "did you mean 'models/bert-tiny'?")
    r = train("--pretrained", "models/roberta")
    assert_error(r, "no such local folder", "a local Hugging Face BERT folder")
    assert "hf download" not in r.stderr
    (tmp_path / "empty").mkdir()
    assert_error(train("--pretrained", tmp_path / "empty"), "has no config.json")
    assert_error(cli("text", "classify", "train", data, "--model", "lstm", "--pretrained", tmp_path / "empty",
                     "--out", run), "use --model bert")
    assert_error(train("--pretrained", tmp_path / "empty", "--subword", "100", "--heads", "2"),
                 "--subword, --heads would not apply")
    assert not run.exists()


def test_a_masked_lm_folder_loads_without_its_pooler(tmp_path):
    """BertForMaskedLM's folders (bert-base-uncased's kind) hold the encoder under `bert.` and no pooler."""
    import transformers

    from dltool.text.models.bert_hf import read_folder

    folder = tmp_path / "mlm"
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"]) + "\n")
    config = transformers.BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=16)
    mlm = transformers.BertForMaskedLM(config)
    mlm.save_pretrained(folder)
    transformers.BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(folder)
    loaded = read_folder(folder)
    assert loaded.missing == ["pooler.dense.bias", "pooler.dense.weight"]
    assert torch.equal(loaded.state_dict["embeddings.word_embeddings.weight"],
                       mlm.bert.embeddings.word_embeddings.weight)
    assert "_name_or_path" not in loaded.config and loaded.config["hidden_size"] == 8
