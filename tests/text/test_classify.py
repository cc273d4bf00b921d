"""text classify: tfidf on SMS messages, the neural models on a two-topic corpus (tiny, learnable in
seconds), pretraining, subwords, word vectors, predict/embed, and bad input. --nproc 2 and exact resume
run for `text classify train|pretrain` in tests/core/test_train_commands.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tests.text.conftest import SMS, gensim_file, sms_subset, write_two_topic_csv


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("text-classify")
    return {"sms_train": sms_subset(base / "sms_train.csv", SMS / "train.csv", 300, 100),
            "sms_test": sms_subset(base / "sms_test.csv", SMS / "test.csv", 100, 40),
            "train": write_two_topic_csv(base / "train.csv", n_per_topic=40, seed=0),
            "test": write_two_topic_csv(base / "test.csv", n_per_topic=20, seed=100), "base": base}


def _module_cli(args):
    """The CLI for module fixtures (pytest's capsys is function-scoped)."""
    import contextlib
    import io

    from dltool.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    assert code == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def lstm_run(data):
    run = data["base"] / "lstm"
    _module_cli(["text", "classify", "train", data["train"], "--model", "lstm_tiny", "--epochs", "4", "--batch-size",
                 "16", "--lr", "0.02", "--device", "cpu", "--out", run, "--quiet", "--format", "json"])
    return run


def test_tfidf_learns_sms_and_eval_matches_sklearn(cli, data, tmp_path):
    run = tmp_path / "tfidf"
    r = cli("text", "classify", "train", data["sms_train"], "--model", "tfidf", "--out", run, "--format", "json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["val_f1_macro"] > 0.8 and (run / "config.toml").exists()
    r = cli("text", "classify", "eval", run, data["sms_test"], "--out", tmp_path / "ev", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["f1_macro"] > 0.85 and m["n"] == 140
    assert {"metrics.json", "confusion.json", "confusion.png"} <= {p.name for p in (tmp_path / "ev").iterdir()}
    # the same model's predictions give the same figures through scikit-learn
    from sklearn.metrics import f1_score

    r = cli("text", "classify", "predict", run, data["sms_test"], "--format", "jsonl")
    preds = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(preds) == 140 and all(p["topk"][0]["label"] == p["label"] for p in preds)
    assert f1_score([p["true_label"] for p in preds], [p["label"] for p in preds], average="macro") == \
        pytest.approx(m["f1_macro"])
    # engine options would do nothing for tfidf: refused
    for typed in (["--epochs", "3"], ["--epochs", "8"], ["--max-len", "64"]):  # the default typed counts too
        r = cli("text", "classify", "train", data["sms_train"], "--model", "tfidf", *typed, "--out", tmp_path / "x")
        assert r.code == 1 and f"{typed[0]} does not apply to --model tfidf" in r.stderr
        assert not (tmp_path / "x").exists()
    r = cli("text", "classify", "train", data["sms_train"], "--model", "lstm_tiny", "--classifier", "svm")
    assert r.code == 1 and "--classifier does not apply to --model lstm_tiny" in r.stderr
    if not torch.cuda.is_available():  # tf-idf runs on the CPU: a GPU that is not there is still an error
        r = cli("text", "classify", "train", data["sms_train"], "--model", "tfidf", "--device", "cuda",
                "--out", tmp_path / "x")
        assert r.code == 1 and "CUDA is not available" in r.stderr and not (tmp_path / "x").exists()
    # the --embed feature table needs a network
    r = cli("text", "classify", "predict", run, data["sms_test"], "--embed")
    assert r.code == 1 and "--embed needs a neural model" in r.stderr


def test_fasttext_lines_train_and_predict_from_stdin(cli, tmp_path):
    from tests.text.conftest import two_topic_corpus

    ft = tmp_path / "train.txt"
    ft.write_text("".join(f"__label__{label} {text}\n" for label, text in two_topic_corpus(20)))
    r = cli("text", "classify", "train", ft, "--model", "tfidf", "--out", tmp_path / "run", "--quiet")
    assert r.code == 0, r.stderr
    r = cli("text", "classify", "predict", tmp_path / "run", "--topk", "1", "--format", "jsonl",
            input="flour sugar butter oven\ngoal match referee league\n")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["id"], x["text"], x["label"]) for x in rows] == [
        ("1", "flour sugar butter oven", "food"), ("2", "goal match referee league", "sport")]
    assert len(rows[0]["topk"]) == 1 and 0.5 < rows[0]["score"] <= 1


def test_lstm_learns_and_predict_repeats_training_preprocessing(cli, data, lstm_run, tmp_path):
    r = cli("text", "classify", "eval", lstm_run, data["test"], "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["accuracy"] > 0.9
    # the vocabulary and tokenizer settings are plain data in the model file, loaded without code
    ckpt = torch.load(lstm_run / "model.pt", weights_only=True)
    vocab = ckpt["preprocess"]["vocab"]
    assert vocab["kind"] == "word" and vocab["tokens"][:4] == ["[PAD]", "[UNK]", "[CLS]", "[MASK]"]
    assert vocab["tokenizer"]["lower"] is True and "goal" in vocab["tokens"]
    # raw, differently cased text on stdin: lower-cased as in training, so the same labels as eval's
    r = cli("text", "classify", "predict", lstm_run, data["test"], "--format", "jsonl")
    preds = [json.loads(line) for line in r.stdout.splitlines()]
    upper = "\n".join(p["text"].upper() for p in preds) + "\n"
    r2 = cli("text", "classify", "predict", lstm_run, "--format", "jsonl", input=upper)
    assert [json.loads(line)["label"] for line in r2.stdout.splitlines()] == [p["label"] for p in preds]
    assert np.mean([p["label"] == p["true_label"] for p in preds]) == pytest.approx(m["accuracy"])
    # --embed: the pooled representation as a feature table (bidirectional lstm_tiny: 2 x 16)
    out = tmp_path / "emb.csv"
    r = cli("text", "classify", "predict", lstm_run, data["test"], "--embed", "-o", out)
    assert r.code == 0, r.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and {"id", "true_label", "emb0", "emb31"} <= set(rows[0]) and "emb32" not in rows[0]
    # text embed --method model: the same representation, into a pipeline
    r = cli("text", "embed", data["test"], "--method", "model", "--model", lstm_run, "--format", "csv")
    assert r.code == 0, r.stderr
    header = r.stdout.splitlines()[0].split(",")
    assert header[:3] == ["id", "label", "text"] and header[-1] == "e31"


def test_transformer_with_wordpiece_subwords(cli, data, tmp_path):
    run = tmp_path / "tr"
    r = cli("text", "classify", "train", data["train"], "--model", "transformer_tiny", "--subword", "120",
            "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--out", run, "--quiet",
            "--format", "json")
    assert r.code == 0, r.stderr
    vocab = torch.load(run / "model.pt", weights_only=True)["preprocess"]["vocab"]
    assert vocab["kind"] == "wordpiece" and len(vocab["tokens"]) <= 120 and json.loads(vocab["subword_json"])
    r = cli("text", "classify", "eval", run, data["test"], "--format", "json", "--quiet")
    assert json.loads(r.stdout)["accuracy"] > 0.8


def test_fasttext_learns_and_keeps_its_words_ngrams(cli, data, tmp_path):
    """fastText: words + bigrams + character n-grams; the n-gram rows of each word travel in the model file."""
    run = tmp_path / "fasttext"
    r = cli("text", "classify", "train", data["train"], "--model", "fasttext_tiny", "--epochs", "4", "--batch-size",
            "16", "--lr", "0.05", "--device", "cpu", "--out", run, "--quiet", "--format", "json")
    assert r.code == 0, r.stderr
    r = cli("text", "classify", "eval", run, data["test"], "--format", "json", "--quiet")
    assert json.loads(r.stdout)["accuracy"] > 0.9
    ckpt = torch.load(run / "model.pt", weights_only=True)
    from dltool.text.models.fasttext import fasttext_tiny

    model = fasttext_tiny(vocab_size=len(ckpt["preprocess"]["vocab"]["tokens"]), num_classes=2)
    fresh = model.subwords.clone()
    model.set_words(ckpt["preprocess"]["vocab"]["tokens"])
    assert torch.equal(model.subwords, ckpt["state_dict"]["subwords"]) and not torch.equal(fresh, model.subwords)
    assert (model.subwords[:4] == model.buckets).all()  # the specials have no n-grams


def test_mlp_reads_tfidf_ngrams_in_two_texts_learns_embeds_and_takes_no_vocabulary_option(cli, data, tmp_path):
    """The bag-of-n-grams MLP: its input is scikit-learn's TF-IDF of the n-grams in 2+ training texts (the
    fitted vectorizers travel in the model file), --hidden sets the width --embed gives."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    from dltool.text.classify import load, read_labelled

    run = tmp_path / "mlp"
    r = cli("text", "classify", "train", data["train"], "--model", "mlp_tiny", "--hidden", "12", "--val-split", "0",
            "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--out", run, "--quiet",
            "--format", "json")
    assert r.code == 0, r.stderr
    r = cli("text", "classify", "eval", run, data["test"], "--format", "json", "--quiet")
    assert json.loads(r.stdout)["accuracy"] > 0.9
    r = cli("text", "classify", "predict", run, data["test"], "--embed", "--format", "csv", "--quiet")
    assert r.code == 0, r.stderr
    assert next(csv.reader(r.stdout.splitlines()))[-1] == "emb11"

    train, test = (read_labelled(data[k], None, "label").texts for k in ("train", "test"))
    reference = [TfidfVectorizer(analyzer=a, ngram_range=n, sublinear_tf=True, min_df=2).fit(train)
                 for a, n in (("word", (1, 2)), ("char_wb", (2, 5)))]
    expected = hstack([v.transform(test) for v in reference]).toarray()
    lm = load(run / "model.pt", device="cpu")
    ids, values = lm.task.model_inputs(test)
    got = np.zeros((len(test), expected.shape[1] + 1), dtype=np.float32)  # the last column: the padding
    np.put_along_axis(got, ids.numpy(), values.numpy(), axis=1)
    assert np.allclose(got[:, :-1], expected, atol=1e-6) and not got[:, -1].any()

    r = cli("text", "classify", "train", data["train"], "--model", "mlp_tiny", "--max-len", "32",
            "--out", tmp_path / "refused")
    assert r.code == 1 and "--max-len does not apply to --model mlp_tiny — drop it, or use --model cnn|" in r.stderr
    assert not (tmp_path / "refused").exists()
    unshared = tmp_path / "unshared.csv"  # no word in two texts: no feature to learn from
    unshared.write_text("text,label\ncat,a\nhat,b\ndog,a\npig,b\n")
    r = cli("text", "classify", "train", unshared, "--val-split", "0", "--out", tmp_path / "none")
    assert r.code == 1 and "no word is in 2 or more of the 4 training texts" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_cnn_learns_and_embeds_its_pooled_filters(cli, data, tmp_path):
    """Kim's CNN: --kernel-sizes and --filters shape it; --embed gives one max-pooled value per filter."""
    run = tmp_path / "cnn"
    r = cli("text", "classify", "train", data["train"], "--model", "cnn_tiny", "--kernel-sizes", "1,2,3", "--filters",
            "5", "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--out", run, "--quiet",
            "--format", "json")
    assert r.code == 0, r.stderr
    kw = torch.load(run / "model.pt", weights_only=True)["arch_kwargs"]
    assert kw["kernel_sizes"] == [1, 2, 3] and kw["filters"] == 5
    r = cli("text", "classify", "eval", run, data["test"], "--format", "json", "--quiet")
    assert json.loads(r.stdout)["accuracy"] > 0.9
    r = cli("text", "classify", "predict", run, data["test"], "--embed", "--format", "csv", "--quiet")
    assert r.code == 0, r.stderr
    header = next(csv.reader(r.stdout.splitlines()))
    assert header[-1] == "emb14"  # 5 filters x 3 widths
    bad = tmp_path / "bad"
    _one_line_error(cli("text", "classify", "train", data["train"], "--model", "cnn_tiny", "--kernel-sizes", "3,x",
                        "--out", bad), "--kernel-sizes '3,x' must be comma-separated widths >= 1")
    _one_line_error(cli("text", "classify", "train", data["train"], "--model", "lstm_tiny", "--kernel-sizes", "3",
                        "--out", bad), "--kernel-sizes does not apply to --model lstm_tiny")
    assert not bad.exists()


def test_pretrain_then_fine_tune_bert(cli, data, tmp_path):
    corpus = tmp_path / "lee.txt"  # a slice of gensim's news corpus, plus the training texts
    corpus.write_text("\n".join(gensim_file("lee_background.cor").read_text().splitlines()[:60]) + "\n")
    pre = tmp_path / "mlm"
    r = cli("text", "classify", "pretrain", corpus, data["train"], "--model", "bert_tiny", "--epochs", "4",
            "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--out", pre, "--quiet", "--format", "json")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in (pre / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and rows[-1]["val_loss"] < rows[0]["val_loss"]
    run = tmp_path / "ft"
    r = cli("text", "classify", "train", data["train"], "--model", "bert_tiny", "--init-from", pre, "--epochs", "4",
            "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--out", run, "--format", "json")
    assert r.code == 0, r.stderr
    assert "loaded the" in r.stderr and "encoder tensors" in r.stderr
    pre_state = torch.load(pre / "model.pt", weights_only=True)
    ft_state = torch.load(run / "model.pt", weights_only=True)
    assert ft_state["preprocess"]["vocab"] == pre_state["preprocess"]["vocab"]  # the pretrained vocabulary
    r = cli("text", "classify", "eval", run, data["test"], "--format", "json", "--quiet")
    assert json.loads(r.stdout)["accuracy"] > 0.8
    # without --lr, fine-tuning takes the gentler FINETUNE_LR (recorded where resume checks it)
    import tomllib

    from dltool.text.classify import FINETUNE_LR

    assert tomllib.loads((run / "config.toml").read_text())["lr"] == 0.01
    gentle = tmp_path / "ft-default-lr"
    r = cli("text", "classify", "train", data["train"], "--model", "bert_tiny", "--init-from", pre, "--epochs", "1",
            "--batch-size", "16", "--device", "cpu", "--out", gentle, "--quiet")
    assert r.code == 0, r.stderr
    assert tomllib.loads((gentle / "config.toml").read_text())["lr"] == FINETUNE_LR != 0.003
    # a pretraining model file is not a classifier
    r = cli("text", "classify", "eval", pre, data["test"])
    assert r.code == 1 and "'text-pretrain' model, not a 'text-classify' model" in r.stderr


def test_word2vec_embeddings_start_the_embedding_layer(cli, data, tmp_path):
    vec = tmp_path / "vec.txt"
    r = cli("text", "word2vec", "train", data["train"], "--column", "text", "-o", vec, "--dim", "12",
            "--min-count", "1", "--epochs", "2", "--quiet")
    assert r.code == 0, r.stderr
    run = tmp_path / "run"
    r = cli("text", "classify", "train", data["train"], "--model", "gru_tiny", "--embeddings", vec,
            "--freeze-embeddings", "--epochs", "1", "--device", "cpu", "--out", run, "--quiet")
    assert r.code == 0, r.stderr
    from dltool.text.word2vec import load_vectors

    kv = load_vectors(vec)
    ckpt = torch.load(run / "model.pt", weights_only=True)
    tokens = ckpt["preprocess"]["vocab"]["tokens"]
    weight = ckpt["state_dict"]["embedding.weight"]
    assert ckpt["arch_kwargs"]["embed_dim"] == 12
    assert torch.allclose(weight[tokens.index("goal")], torch.from_numpy(kv["goal"]))  # frozen: unchanged


def test_mlm_masking_is_15_percent_80_10_10():
    from dltool.text.pretrain import IGNORE, mask_tokens
    from dltool.text.vocab import CLS, MASK

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 1000, (400, 100), generator=g)
    ids[:, 0] = CLS
    inputs, targets = mask_tokens(ids, torch.full((400,), 100), 1000, 0.15, g)
    picked = targets != IGNORE
    assert not picked[:, 0].any() and (targets[picked] == ids[picked]).all()
    assert picked.float().mean().item() == pytest.approx(0.15 * 99 / 100, abs=0.005)
    masked = (inputs[picked] == MASK).float().mean().item()
    kept = (inputs[picked] == ids[picked]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.02) and kept == pytest.approx(0.1, abs=0.02)
    assert (inputs[~picked] == ids[~picked]).all()


def test_mlm_validation_over_two_ranks_is_the_mean_over_masked_tokens(monkeypatch):
    """--nproc: each rank validates its shard; the combined loss is every masked token's mean, however
    unevenly the shards' texts are masked (short texts on one rank, long ones on the other)."""
    import torch.nn.functional as F

    from dltool.core import distributed as dist
    from dltool.core.data import TensorBatches
    from dltool.text.models.bert import bert_mlm
    from dltool.text.pretrain import IGNORE, MaskedLMTask, mask_tokens

    torch.manual_seed(0)
    model = bert_mlm(vocab_size=40, embed_dim=8, heads=2, layers=1, dropout=0.0, max_len=32).eval()
    task = MaskedLMTask("bert_tiny", {}, list(range(40)), 0.5, seed=0)  # only len(vocab) is read
    shards = []
    for length in (3, 30):  # 8 texts each: 2 real tokens a text on one rank, 29 on the other
        ids = torch.randint(4, 40, (8, length))
        ids[:, 0] = 2  # CLS
        shards.append(TensorBatches((ids, torch.full((8,), length)), 256, shuffle=False))
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    with torch.inference_mode():
        parts = [(task.evaluate(model, shard), 8) for shard in shards]
        losses = []  # the reference: every masked token of both shards, masked as each rank masks them
        for shard in shards:
            g = torch.Generator().manual_seed(0)
            for ids, lengths in shard:
                inputs, targets = mask_tokens(ids, lengths, 40, 0.5, g)
                picked = targets != IGNORE
                losses.append(F.cross_entropy(model(inputs, lengths, picked), targets[picked], reduction="none"))
    assert parts[0][0]["masked_tokens"] < parts[1][0]["masked_tokens"] / 5
    combined = task.combine_metrics(parts)
    assert set(combined) == {"loss", "accuracy"}
    assert combined["loss"] == pytest.approx(torch.cat(losses).mean().item(), rel=1e-5)

def _one_line_error(r, *fragments):
    assert r.code == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_input(cli, data, lstm_run, tmp_path):
    run = tmp_path / "run"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _one_line_error(cli("text", "classify", "train", empty, "--model", "lstm_tiny", "--out", run), "no documents")
    no_text = tmp_path / "notext.csv"
    no_text.write_text("id,label,body\n1,a,hello\n2,b,bye\n")
    _one_line_error(cli("text", "classify", "train", no_text, "--model", "lstm_tiny", "--out", run),
                    "no text column 'text'")
    unlabelled = tmp_path / "ft.txt"
    unlabelled.write_text("__label__a good film\n__label__b bad film\nno label here\n")
    _one_line_error(cli("text", "classify", "train", unlabelled, "--model", "tfidf", "--out", run),
                    "line 3 has no label")
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("id,label,text\n1,sport,goal match\n2,weather,rain cloud\n")
    _one_line_error(cli("text", "classify", "eval", lstm_run, unseen), "labels the model was not trained on: weather")
    assert not run.exists()
    from dltool.core.modelfile import save_model

    other = tmp_path / "other.pt"
    save_model(other, task="vision-classify", arch="cnn", arch_kwargs={}, state_dict={})
    _one_line_error(cli("text", "classify", "predict", other, input="hello\n"), "not a 'text-classify' model")
    _one_line_error(cli("text", "classify", "train", data["train"], "--model", "lstm_tiny", "--heads", "2",
                        "--out", run), "--heads does not apply to --model lstm_tiny")
    assert not run.exists()


def test_predict_and_embed_shards_concatenate_to_the_whole(cli, data, lstm_run):
    from tests.conftest import assert_shards_concatenate

    assert_shards_concatenate(cli, "text", "classify", "predict", lstm_run, data["sms_test"], shards=3)
    assert_shards_concatenate(cli, "text", "embed", data["sms_test"], "--method", "model", "--model", lstm_run,
                              "--column", "text")
    r = cli("text", "embed", data["sms_test"], "--column", "text", "--shard", "0/2")
    assert r.code == 1 and "TF-IDF is fitted on the whole corpus" in r.stderr
