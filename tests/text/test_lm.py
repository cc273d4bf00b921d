"""dltool text lm train|eval|sample|score on tiny generated text: what each writes, checked against an
independent computation, and the bad inputs."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dltool.text.models.lm import LM_MODELS

FAST = ("--epochs", "8", "--batch-size", "16", "--lr", "0.02", "--warmup", "0", "--device", "cpu", "--quiet")


def pattern_lines(n: int, seed: int) -> list[str]:
    """Words of a tiny language: 'ab' or 'cd' repeated 1-4 times (next letters are easy to predict)."""
    rng = random.Random(seed)
    return [rng.choice(("ab", "cd")) * rng.randint(1, 4) for _ in range(n)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(t + "\n" for t in lines))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A gpt_tiny trained on the pattern language (lines mode), its data, and its summary."""
    from dltool.cli import main
    from dltool.core.console import set_quiet

    base = tmp_path_factory.mktemp("lm")
    data = write_lines(base / "train.txt", pattern_lines(120, 0))
    val = write_lines(base / "val.txt", pattern_lines(30, 1))
    run = base / "run"
    try:
        main([str(a) for a in ("text", "lm", "train", data, "--val", val, "--model", "gpt_tiny", "--dim", "32", "--layers",
                               "2", "--out", run, *FAST)])
    except SystemExit as e:
        assert e.code in (0, None)
    finally:
        set_quiet(False)
    summary = json.loads((run / "summary.json").read_text())
    return {"data": data, "val": val, "run": run, "model": run / "model.pt", "summary": summary}


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_train_learns_the_language(trained):
    s = trained["summary"]
    vocab = 2 + 4  # boundary, unknown, a b c d
    assert s["val_loss"] < 0.5 * math.log(vocab), s
    assert s["val_ppl"] == pytest.approx(math.exp(s["val_loss"]))
    assert (trained["run"] / "curves.png").exists() and (trained["run"] / "config.toml").exists()


def _network(model_file):
    """The model file's network and a function: line -> (its log-probability under the network, its tokens)."""
    ckpt = torch.load(model_file, weights_only=True)
    model = LM_MODELS.create(ckpt["arch"], **ckpt["arch_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    tokens = ckpt["preprocess"]["vocab"]["tokens"]

    def logprob(line: str) -> tuple[float, int]:
        seq = [0, *(tokens.index(c) for c in line), 0]
        with torch.no_grad():
            logp = model(torch.tensor([seq[:-1]]))[0][0].log_softmax(-1)
        return float(logp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].sum()), len(seq) - 1

    return ckpt, logprob


def test_eval_and_score_equal_an_independent_computation_of_the_repeat_mixture(cli, trained, tmp_path):
    """model.pt of a lines run is the mixture of dltool.text.lm_repeats: the network's probability of a training
    line times rate / share, of any other line times (1 - rate) / (1 - share), where share is the network's
    probability of all distinct training lines and rate the add-one smoothed share of validation lines that
    are training lines."""
    r = cli("text", "lm", "eval", trained["model"], trained["val"], "--format", "json", "--device", "cpu")
    assert r.code == 0, r.stderr
    got = json.loads(r.stdout)
    ckpt, logprob = _network(trained["model"])
    seen = set(trained["data"].read_text().splitlines())
    share = sum(math.exp(logprob(t)[0]) for t in seen)
    val = trained["val"].read_text().splitlines()
    rate = (sum(t in seen for t in val) + 1) / (len(val) + 2)
    network, nats, count, chars, expected = 0.0, 0.0, 0, 0, []
    for line in val:
        lp, n = logprob(line)
        lp_mixture = lp + math.log(rate / share if line in seen else (1 - rate) / (1 - share))
        network, nats, count, chars = network - lp, nats - lp_mixture, count + n, chars + len(line) + 1
        expected.append(lp_mixture)
    assert got["loss"] == pytest.approx(nats / count, rel=1e-5)
    assert got["ppl"] == pytest.approx(math.exp(nats / count), rel=1e-5)
    assert got["bpc"] == pytest.approx(nats / math.log(2) / chars, rel=1e-5)
    assert got["tokens"] == count and got["repeat_rate"] == pytest.approx(rate)
    s = trained["summary"]  # the training run's figures: the network's (what the engine kept), then the mixture's
    assert s["val_loss"] == pytest.approx(network / count, rel=1e-5) and nats < network
    assert s["val_loss_repeats"] == pytest.approx(got["loss"], rel=1e-5)
    assert s["repeat_network_share"] == pytest.approx(share, rel=1e-4)
    r = cli("text", "lm", "score", trained["model"], trained["val"], "--device", "cpu")
    assert r.code == 0, r.stderr
    assert [row["logprob"] for row in _records(r.stdout)] == pytest.approx(expected, abs=1e-4)


def test_the_repeat_rate_sets_how_often_samples_repeat_training_lines(cli, trained, tmp_path):
    seen = set(trained["data"].read_text().splitlines())
    for rate in ("0.25", "off"):
        run = tmp_path / rate
        r = cli("text", "lm", "train", trained["data"], "--val", trained["val"], "--model", "gpt_tiny", "--dim", "32",
                "--layers", "2", "--repeat-rate", rate, "--out", run, *FAST)
        assert r.code == 0, r.stderr
        s = json.loads(r.stdout)
        r = cli("text", "lm", "sample", run, "-n", "400", "--seed", "1", "--device", "cpu")
        assert r.code == 0, r.stderr
        repeated = sum(row["text"] in seen for row in _records(r.stdout)) / 400
        if rate == "off":  # the network alone: no mixture in the file, its own share of training lines
            assert "repeat_rate" not in s and "repeats" not in torch.load(run / "model.pt", weights_only=True)["preprocess"]
            assert repeated > 0.5
            r = cli("text", "lm", "eval", run, trained["val"], "--format", "json", "--device", "cpu")
            assert json.loads(r.stdout)["loss"] == pytest.approx(s["val_loss"], rel=1e-5)
        else:  # binomial sd of 400 draws: 0.022
            assert s["repeat_rate"] == 0.25 and s["repeat_network_share"] > 0.5
            assert abs(repeated - 0.25) < 0.08, repeated


def test_sample_writes_lines_of_the_language_and_repeats_with_the_seed(cli, trained):
    r = cli("text", "lm", "sample", trained["model"], "-n", "50", "--seed", "3", "--device", "cpu")
    assert r.code == 0, r.stderr
    rows = _records(r.stdout)
    assert len(rows) == 50 and all(set(row) == {"prompt", "text", "tokens"} for row in rows)
    assert all(set(row["text"]) <= set("abcd") for row in rows)
    # a tiny model after a second of training: most lines are words of the language (chance: a few percent)
    good = [row["text"] for row in rows if row["text"] in {p * k for p in ("ab", "cd") for k in range(1, 5)}]
    assert len(good) >= 25, rows
    again = cli("text", "lm", "sample", trained["model"], "-n", "50", "--seed", "3", "--device", "cpu")
    assert again.stdout == r.stdout
    r = cli("text", "lm", "sample", trained["model"], "--prompt", "cdc", "-n", "3", "--temperature", "0.5",
            "--top-k", "3", "--top-p", "0.9", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert all(row["text"].startswith("cdcd") and row["prompt"] == "cdc" for row in _records(r.stdout))


def test_prompts_from_stdin_and_stop(cli, trained):
    r = cli("text", "lm", "sample", trained["model"], "--prompt", "-", "-n", "2", "--temperature", "0",
            "--stop", "b", "--device", "cpu", input="a\ncd\n")
    assert r.code == 0, r.stderr
    rows = _records(r.stdout)
    assert [row["prompt"] for row in rows] == ["a", "a", "cd", "cd"]
    assert rows[0]["text"] == "a"  # greedy writes 'b' next: the stop text, left out


@pytest.mark.parametrize("arch", ["gpt_tiny", "lstm_tiny"])
def test_the_cache_gives_the_same_text_as_rerunning_the_sequence(arch):
    from dltool.text.lm import SampleConfig, generate

    torch.manual_seed(0)
    model = LM_MODELS.create(arch, vocab_size=7).eval()
    cfg = SampleConfig(model=Path("x"), temperature=0)
    prefix = [0, 3, 4]
    with_cache = generate(model, prefix, 2, 25, cfg, torch.Generator(), stop_at_boundary=False, cache=True)
    without = generate(model, prefix, 2, 25, cfg, torch.Generator(), stop_at_boundary=False, cache=False)
    assert with_cache == without and len(with_cache[0]) == 25


def test_every_token_weighs_the_same_in_batches_of_one_length():
    """LengthBatches groups lines by length; the mean of its batches' training losses is the corpus's loss per
    token (a per-batch mean weighed the tokens of short lines more, and the model learnt to end lines early)."""
    from dltool.text.lm import LengthBatches, LMTask, LMVocab, line_tensors, sequence_metrics

    torch.manual_seed(0)
    lines = ["ab" * (1 + i % 6) for i in range(64)]  # 3 to 13 tokens, 8 lines a batch
    vocab = LMVocab.build("char", lines, 100)
    x, y, _ = line_tensors(vocab, lines, 16)
    model = LM_MODELS.create("lstm_tiny", vocab_size=len(vocab))
    task = LMTask("lstm_tiny", {}, vocab, "lines", 16, torch.device("cpu"), float((y >= 0).sum(1).float().mean()))
    batches = list(LengthBatches(x, y, 8))
    assert len({int((b[1] >= 0).sum()) for b in batches}) > 1  # batches of different token counts
    with torch.no_grad():
        mean_of_batches = sum(task.loss(model, b).item() for b in batches) / len(batches)
        corpus = sequence_metrics(model, [(x, y)], task.chars)["loss"]
    assert mean_of_batches == pytest.approx(corpus, rel=1e-5)


def test_score_ranks_the_odd_line_last(cli, trained, tmp_path):
    lines = ["abab", "cdcd", "ab", "acbd"]
    r = cli("text", "lm", "score", trained["model"], write_lines(tmp_path / "c.txt", lines), "--device", "cpu")
    assert r.code == 0, r.stderr
    rows = _records(r.stdout)
    assert [row["text"] for row in rows] == lines
    assert min(rows, key=lambda row: row["logprob"])["text"] == "acbd"
    for row in rows:
        assert row["tokens"] == len(row["text"]) + 1
        assert row["ppl"] == pytest.approx(math.exp(-row["logprob"] / row["tokens"]), rel=1e-4)


def test_bigram_counts_equal_numpy(cli, tmp_path):
    lines = pattern_lines(50, 2)
    data, val = write_lines(tmp_path / "t.txt", lines), write_lines(tmp_path / "v.txt", ["abab", "cd", "abcd"])
    r = cli("text", "lm", "train", data, "--val", val, "--model", "bigram", "--out", tmp_path / "run", "--quiet")
    assert r.code == 0, r.stderr
    got = json.loads(r.stdout)
    ids = {c: i for i, c in enumerate(["<s>", "<unk>", *sorted(set("".join(lines)))])}
    counts = np.ones((len(ids), len(ids)))
    for t in lines:
        seq = [0, *(ids[c] for c in t), 0]
        for a, b in zip(seq, seq[1:]):
            counts[a, b] += 1
    logp = np.log(counts / counts.sum(1, keepdims=True))
    nats = [-logp[a, b] for t in ["abab", "cd", "abcd"] for seq in [[0, *(ids[c] for c in t), 0]]
            for a, b in zip(seq, seq[1:])]
    assert got["val_loss"] == pytest.approx(np.mean(nats), rel=1e-5)
    r = cli("text", "lm", "train", data, "--model", "bigram", "--lr", "0.1", "--out", tmp_path / "run2")
    assert r.code == 1 and "--lr does not apply to --model bigram" in r.stderr
    assert not (tmp_path / "run2").exists()


def test_stream_mode_with_lstm_and_words(cli, tmp_path):
    from tests.text.conftest import gensim_file

    text = gensim_file("lee_background.cor").read_text().splitlines()[:25]
    data = write_lines(tmp_path / "lee.txt", text)
    run = tmp_path / "run"
    r = cli("text", "lm", "train", data, "--mode", "stream", "--model", "lstm_tiny", "--context", "32",
            "--out", run, "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    s = json.loads(r.stdout)
    assert 0 < s["val_bpc"] < 8 and s["val_tokens"] > 0
    r = cli("text", "lm", "sample", run, "--prompt", "The ", "--max-tokens", "40", "--device", "cpu")
    assert r.code == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["text"].startswith("The ") and row["tokens"] == 40
    r = cli("text", "lm", "train", data, "--mode", "stream", "--vocab", "word", "--model", "gru_tiny",
            "--context", "16", "--out", tmp_path / "words", "--epochs", "1", "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    r = cli("text", "lm", "sample", tmp_path / "words", "--prompt", "the", "--max-tokens", "5", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert len(json.loads(r.stdout)["text"].split()) >= 5
    r = cli("text", "lm", "train", data, "--mode", "stream", "--vocab", "bpe", "--vocab-size", "300", "--model",
            "gru_tiny", "--context", "16", "--out", tmp_path / "bpe", "--epochs", "1", "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    r = cli("text", "lm", "sample", tmp_path / "bpe", "--prompt", "The ", "--max-tokens", "8", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["text"].startswith("The ")


@pytest.mark.parametrize("name", [n for n in LM_MODELS.names() if n.endswith("_tiny") or n == "bigram"])
def test_every_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = LM_MODELS.create(name, vocab_size=9)
    ids = torch.randint(0, 9, (2, 6))
    logits, _ = model(ids)
    assert logits.shape == (2, 6, 9) and torch.isfinite(logits).all()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:  # bigram: counted, not trained
        return
    logits.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in trainable)


# -- bad input ------------------------------------------------------------------------------------

def _one_line_error(r, code: int = 1, *needles: str) -> None:
    assert r.code == code, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_an_empty_corpus_is_refused_and_leaves_nothing(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    r = cli("text", "lm", "train", empty, "--out", tmp_path / "run", "--device", "cpu")
    _one_line_error(r, 1, "empty")
    assert not (tmp_path / "run").exists()


def test_a_corpus_shorter_than_the_context_is_refused(cli, tmp_path):
    data = write_lines(tmp_path / "short.txt", ["tiny text"])
    r = cli("text", "lm", "train", data, "--mode", "stream", "--context", "64", "--val-split", "0",
            "--out", tmp_path / "run", "--device", "cpu")
    _one_line_error(r, 1, "--context 64")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, needle", [
    (("--prompt", "abXY"), "lacks: 'X', 'Y'"),
    (("--top-p", "0"), "--top-p 0.0 must be in (0, 1]"),
    (("--temperature", "-1"), "--temperature -1.0 must be >= 0"),
])
def test_bad_sampling_options_are_refused(cli, trained, tmp_path, args, needle):
    out = tmp_path / "s.jsonl"
    r = cli("text", "lm", "sample", trained["model"], *args, "-o", out, "--device", "cpu")
    _one_line_error(r, 1, needle)
    assert not out.exists()


def test_a_classifier_model_file_is_refused(cli, tmp_path):
    from tests.text.conftest import write_two_topic_csv

    data = write_two_topic_csv(tmp_path / "t.csv", n_per_topic=5, seed=0)
    r = cli("text", "classify", "train", data, "--model", "tfidf", "--out", tmp_path / "clf", "--quiet")
    assert r.code == 0, r.stderr
    for verb in ("sample", "score", "eval"):
        args = () if verb == "sample" else (str(data),)
        r = cli("text", "lm", verb, tmp_path / "clf" / "model.pt", *args, "--device", "cpu")
        _one_line_error(r, 1, "'text-classify' model, not a 'text-lm' model")


# -- a pretrained GPT-2 folder ----------------------------------------------------------------------

def _tiny_gpt2_folder(folder: Path, texts: list[str]) -> Path:
    """A GPT-2 folder as save_pretrained writes it: random weights, a byte-level BPE trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = GPT2TokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                               unk_token="<|endoftext|>")
    hf_tok.save_pretrained(folder)
    eos = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=eos, eos_token_id=eos)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_pretrained_gpt2_folder_fine_tunes_and_samples(cli, tmp_path):
    pytest.importorskip("transformers")
    lines = pattern_lines(60, 0)
    folder = _tiny_gpt2_folder(tmp_path / "gpt2", lines)
    data = write_lines(tmp_path / "t.txt", lines)
    run = tmp_path / "run"
    r = cli("text", "lm", "train", data, "--pretrained", folder, "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
            "--warmup", "0", "--out", run, "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] and torch.load(run / "model.pt", weights_only=True)["arch"] == "gpt2_hf"
    r = cli("text", "lm", "sample", run, "--prompt", "ab", "-n", "3", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert len(_records(r.stdout)) == 3 and all(row["text"].startswith("ab") for row in _records(r.stdout))
    r = cli("text", "lm", "score", run, data, "--device", "cpu")
    assert r.code == 0 and len(_records(r.stdout)) == len(lines)


def test_word_dropout_hides_training_inputs_only(tmp_path):
    from dltool.text.lm import LMTask, LMVocab

    class Echo(torch.nn.Module):  # logits that record what the model was given
        def forward(self, x, state=None):
            self.seen = x
            return torch.zeros(*x.shape, 5), None

    vocab = LMVocab.build("char", ["abc"], 0)
    x = torch.randint(2, 5, (64, 40))
    x[:, [0, 15]] = vocab.boundary  # a line's start (and, in a stream, the newline in the middle)
    x[:, 30:] = vocab.boundary  # padding
    y = torch.where(torch.arange(40) < 30, x.roll(-1, 1), -1)
    task = LMTask("lstm", {}, vocab, "lines", 40, "cpu", line_tokens=30.0, word_dropout=0.25)
    torch.manual_seed(0)
    model = Echo().train()
    task.loss(model, (x, y))
    hidden = model.seen == 1
    assert model.seen.shape == (64, 30)  # the padding columns trimmed
    assert abs(hidden[:, 1:15].float().mean().item() - 0.25) < 0.03
    assert not hidden[:, [0, 15]].any()  # never the boundary
    assert torch.equal(model.seen[~hidden], x[:, :30][~hidden])
    task.loss(model.eval(), (x, y))
    assert torch.equal(model.seen, x[:, :30])  # not outside training


@pytest.mark.parametrize("args, needle", [
    (("--vocab", "bpe", "--vocab-size", "300"), "--vocab bpe has none"),
    (("--model", "bigram"), "--word-dropout"),
    (("--word-dropout", "1"), "--word-dropout 1.0"),
])
def test_word_dropout_where_it_cannot_work_is_refused(cli, tmp_path, args, needle):
    data = write_lines(tmp_path / "t.txt", pattern_lines(40, 0))
    r = cli("text", "lm", "train", data, "--word-dropout", "0.1", *args, "--out", tmp_path / "run", "--device", "cpu")
    assert r.code in (1, 2) and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, needle", [
    (("--repeat-rate", "1"), "--repeat-rate 1.0 must be in (0, 1)"),
    (("--repeat-rate", "often"), "--repeat-rate 'often' is not auto, off or a number"),
    (("--repeat-rate", "0.2", "--mode", "stream"), "--repeat-rate applies to --mode lines"),
])
def test_bad_repeat_rates_are_refused(cli, tmp_path, args, needle):
    data = write_lines(tmp_path / "t.txt", pattern_lines(40, 0))
    r = cli("text", "lm", "train", data, *args, "--out", tmp_path / "run", "--device", "cpu")
    _one_line_error(r, 1, needle)
    assert not (tmp_path / "run").exists()


def test_pretrained_refuses_a_name_another_kind_and_its_own_options(cli, tmp_path):
    data = write_lines(tmp_path / "t.txt", pattern_lines(20, 0))
    r = cli("text", "lm", "train", data, "--pretrained", "gpt2", "--out", tmp_path / "a", "--device", "cpu")
    _one_line_error(r, 1, "never downloads")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    r = cli("text", "lm", "train", data, "--pretrained", bert, "--out", tmp_path / "b", "--device", "cpu")
    _one_line_error(r, 1, "'bert' model, not a GPT-2")
    r = cli("text", "lm", "train", data, "--pretrained", bert, "--dim", "8", "--out", tmp_path / "c", "--device", "cpu")
    _one_line_error(r, 1, "--dim would not apply")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_streamed_text_is_the_text_of_the_records(trained):
    """On a terminal `sample` streams; what it shows is what it would write piped, for the same seed."""
    from dltool.text.lm import SampleConfig, sample

    shown = []
    cfg = SampleConfig(model=trained["model"], prompts=("ab", "c"), n=3, seed=5, device="cpu")
    records = sample(cfg, stream=shown.append)
    assert "".join(shown) == "".join(r["text"] + "\n" for r in records)
    assert records == sample(cfg)
