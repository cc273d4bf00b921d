"""dltool text seq2seq train|eval|predict on tiny generated pairs: a toy task learnt to 100% (greedy and beam
agree with the answer), beam search against brute force, metrics against an independent computation, bad
input."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
import torch

from dltool.text.models.seq2seq import SEQ2SEQ_MODELS

FAST = ("--batch-size", "16", "--lr", "0.01", "--warmup", "0", "--device", "cpu", "--quiet")


def reverse_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Words of 2-6 letters of 'abcde' and the word reversed."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 6))) for _ in range(n)]
    return [(w, w[::-1]) for w in words]


def write_tsv(path: Path, pairs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """gru_tiny (Luong attention) trained to reverse words; held-out test pairs."""
    from dltool.cli import main
    from dltool.core.console import set_quiet

    base = tmp_path_factory.mktemp("s2s")
    data = write_tsv(base / "train.tsv", reverse_pairs(400, 0))
    test = write_tsv(base / "test.tsv", [p for p in reverse_pairs(50, 1) if p not in reverse_pairs(400, 0)])
    run = base / "run"
    try:
        main([str(a) for a in ("text", "seq2seq", "train", data, "--model", "gru_tiny", "--hidden", "64", "--epochs", "20",
                               "--out", run, *FAST)])
    except SystemExit as e:
        assert e.code in (0, None)
    finally:
        set_quiet(False)
    return {"data": data, "test": test, "run": run, "model": run / "model.pt"}


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_reversal_is_learnt_and_greedy_equals_beam(cli, trained):
    sources = [s for s, _ in (line.split("\t") for line in trained["test"].read_text().splitlines())]
    got = {}
    for beam in ("1", "5"):
        r = cli("text", "seq2seq", "predict", trained["model"], "--beam", beam, "--format", "text",
                input="".join(s + "\n" for s in sources))
        assert r.code == 0, r.stderr
        got[beam] = r.stdout.splitlines()
    assert got["1"] == got["5"] == [s[::-1] for s in sources]
    for beam in ("1", "5"):
        r = cli("text", "seq2seq", "eval", trained["model"], trained["test"], "--beam", beam, "--format", "json")
        assert r.code == 0, r.stderr
        m = json.loads(r.stdout)
        assert m["exact"] == 1.0 and m["wer"] == 0.0 and m["ter"] == 0.0 and m["bleu"] == pytest.approx(100)
        assert "by source length" in r.stderr


def test_the_epoch_kept_has_the_best_exact_match_and_of_those_the_lowest_loss(trained):
    """The rule on the reversal run's own rows (tests/core/test_engine_end_epoch.py checks a tie apart)."""
    rows = [json.loads(line) for line in (trained["run"] / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: (r["val_exact"], -r["val_loss"]))
    summary = json.loads((trained["run"] / "summary.json").read_text())
    assert summary["best_epoch"] == best["epoch"] and summary["monitor"] == "val_exact"


def test_several_targets_and_tables(cli, trained, tmp_path):
    """A JSON Lines target list and repeated CSV rows: right if equal to any; ter against the closest."""
    rows = [{"word": "abc", "out": ["xx", "cba"]}, {"word": "dde", "out": "edd"}, {"word": "ab", "out": "bb"}]
    jl = tmp_path / "multi.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv = tmp_path / "multi.csv"
    csv.write_text("word,out\nabc,xx\nabc,cba\ndde,edd\nab,bb\n")
    for path in (jl, csv):
        r = cli("text", "seq2seq", "eval", trained["model"], path, "--source", "word", "--target", "out",
                "--format", "json", "--quiet")
        assert r.code == 0, r.stderr
        m = json.loads(r.stdout)
        # predictions: cba (right), edd (right), ba (one substitution against bb, of 2 tokens)
        assert m["sources"] == 3 and m["pairs"] == 4
        assert m["exact"] == pytest.approx(2 / 3)
        assert m["ter"] == pytest.approx(1 / (3 + 3 + 2))


def test_nbest_scores_are_log_probabilities(cli, trained):
    r = cli("text", "seq2seq", "predict", trained["model"], "--beam", "4", "--nbest", "3", "--length-penalty", "0",
            input="abcd\n")
    assert r.code == 0, r.stderr
    rec = _records(r.stdout)[0]
    assert rec["prediction"] == "dcba" and len(rec["nbest"]) == 3
    scores = [h["score"] for h in rec["nbest"]]
    assert scores == sorted(scores, reverse=True) and rec["score"] == scores[0] <= 0
    assert math.exp(scores[0]) > 0.5  # a learnt answer is likely


def test_plot_attention(cli, trained, tmp_path):
    out = tmp_path / "att"
    r = cli("text", "seq2seq", "predict", trained["model"], "--plot-attention", out, "--quiet", input="abc\nbcde\n")
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png"]


# -- beam search is exact ----------------------------------------------------------------------------

def _random_model(path: Path, arch: str) -> tuple:
    """An untrained model file: source chars 'ab', target chars 'ab' (vocabulary of 4: <s>, <unk>, a, b)."""
    from dltool.core.modelfile import save_model
    from dltool.text.lm import LMVocab

    vocab = LMVocab("char", ["<s>", "<unk>", "a", "b"])
    kwargs = {"src_vocab": 4, "tgt_vocab": 4}
    torch.manual_seed(3)
    model = SEQ2SEQ_MODELS.create(arch, **kwargs).eval()
    with torch.no_grad():  # sharper distributions than the initial near-uniform ones
        for p in model.parameters():
            p.mul_(4.0)
    save_model(path, task="text-seq2seq", arch=arch, arch_kwargs=kwargs, state_dict=model.state_dict(),
               preprocess={"source_vocab": vocab.to_dict(), "target_vocab": vocab.to_dict(), "max_target": 2})
    return model, vocab


def _brute_force(model, source_ids: list[int], max_len: int) -> list[tuple[list[int], float]]:
    """Every output of at most max_len tokens (ids 1-3) and its log-probability with the end token, each
    scored by one teacher-forced forward pass."""
    out = []
    for n in range(max_len + 1):
        for seq in itertools.product((1, 2, 3), repeat=n):
            tgt_in = torch.tensor([[0, *seq]])
            with torch.no_grad():
                logp = model(torch.tensor([source_ids]), torch.tensor([len(source_ids)]), tgt_in)[0].log_softmax(-1)
            target = [*seq, 0]
            out.append((list(seq), float(sum(logp[i, t] for i, t in enumerate(target)))))
    return out


@pytest.mark.parametrize("arch", ["gru_tiny", "transformer_tiny"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_is_exact_against_brute_force(cli, tmp_path, arch, alpha):
    """With a beam as wide as the hypotheses (1 + 3 + 9 over 3 steps) the search keeps every one: its
    n-best list is the brute-force ranking, by log-probability / (length + 1) ** alpha."""
    model, vocab = _random_model(tmp_path / "m.pt", arch)
    r = cli("text", "seq2seq", "predict", tmp_path / "m.pt", "--beam", "13", "--nbest", "13", "--max-len", "2",
            "--length-penalty", str(alpha), "--device", "cpu", input="abba\nb\n")
    assert r.code == 0, r.stderr
    for rec, source in zip(_records(r.stdout), ("abba", "b")):
        truth = _brute_force(model, [*vocab.encode(source), 0], 2)
        truth.sort(key=lambda h: -h[1] / (len(h[0]) + 1) ** alpha)
        assert [h["prediction"] for h in rec["nbest"]] == [vocab.decode(ids) for ids, _ in truth]
        assert [h["score"] for h in rec["nbest"]] == pytest.approx([lp for _, lp in truth], abs=1e-4)
    # greedy: the likeliest token at each step, as an independent loop takes it
    r = cli("text", "seq2seq", "predict", tmp_path / "m.pt", "--beam", "1", "--max-len", "2", "--device", "cpu",
            "--format", "text", input="abba\n")
    seq = [0]
    with torch.no_grad():
        for _ in range(2):  # then the end token is forced
            nxt = int(model(torch.tensor([[2, 3, 3, 2, 0]]), torch.tensor([5]), torch.tensor([seq]))[0, -1].argmax())
            if nxt == 0:
                break
            seq.append(nxt)
    assert r.stdout == vocab.decode(seq[1:]) + "\n"


# -- models ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SEQ2SEQ_MODELS.names())
def test_model_trains_and_decodes_step_by_step(name):
    """Forward and backward with every parameter getting a gradient; feeding one token at a time with the
    state (the cache) gives the teacher-forced logits."""
    torch.manual_seed(0)
    kw = {"src_vocab": 7, "tgt_vocab": 9}
    recurrent = "attention" in SEQ2SEQ_MODELS.takes(name)
    attentions = (["none", "bahdanau", "luong"] if name.endswith("_tiny") else ["bahdanau"]) if recurrent else [None]
    for attention in attentions:
        model = SEQ2SEQ_MODELS.create(name, **kw, **({"attention": attention} if attention else {}))
        src, src_len = torch.randint(0, 7, (3, 5)), torch.tensor([5, 3, 1])
        tgt = torch.randint(0, 9, (3, 4))
        logits = model(src, src_len, tgt)
        assert logits.shape == (3, 4, 9) and torch.isfinite(logits).all()
        logits.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        model.eval()
        with torch.no_grad():
            full = model(src, src_len, tgt)
            memory, state = model.encode(src, src_len)
            steps = []
            for t in range(4):
                step, state, _ = model.decode(tgt[:, t:t + 1], memory, state)
                steps.append(step)
        assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)


def test_luong_scores_are_scaled_so_wide_states_do_not_saturate():
    """At initialisation, 256-wide states over 10 source positions: scaled scores spread the weights (the
    largest ~0.2); the unscaled s . W h put ~0.87 on one position, and that model trailed none on G2P."""
    from dltool.nn.seq2seq import LuongAttention

    torch.manual_seed(0)
    attention = LuongAttention(256, 256, "general")
    query, memory = torch.randn(64, 1, 256), torch.randn(64, 10, 256)
    context, weights = attention(query, memory)
    expected = torch.softmax(query @ attention.keys(memory).transpose(1, 2) / 16, -1)
    assert torch.allclose(weights, expected, atol=1e-6) and torch.allclose(context, expected @ memory, atol=1e-5)
    assert float(weights.max(-1).values.mean()) < 0.4


# -- bad input ------------------------------------------------------------------------------------

def _one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


@pytest.mark.parametrize("text, message", [
    ("abc\tcba\nno tab here\n", "line 2 has no TAB"),
    ("abc\tcba\nab\t\n", "line 2: the target is empty"),
    ("abc\tcba\nabcdefgh\tx\n", "line 2: the source has 8 tokens, more than --max-len 6"),
])
def test_bad_pairs_are_refused(cli, tmp_path, text, message):
    data = tmp_path / "bad.tsv"
    data.write_text(text)
    r = cli("text", "seq2seq", "train", data, "--model", "gru_tiny", "--max-len", "6", "--out", tmp_path / "run",
            *FAST)
    assert r.code == 1 and message in _one_error_line(r)
    assert not (tmp_path / "run").exists()


def test_bad_model_and_options(cli, trained, tmp_path):
    from dltool.core.modelfile import save_model

    other = tmp_path / "lm.pt"
    save_model(other, task="text-lm", arch="gpt_tiny", arch_kwargs={}, state_dict={}, preprocess={})
    r = cli("text", "seq2seq", "predict", other, input="abc\n")
    assert r.code == 1 and "text-lm" in _one_error_line(r)
    r = cli("text", "seq2seq", "predict", trained["model"], "--beam", "2", "--nbest", "3", input="abc\n")
    assert r.code == 1 and "--nbest 3 exceeds --beam 2" in _one_error_line(r)
    r = cli("text", "seq2seq", "train", trained["data"], "--model", "transformer_tiny", "--attention", "luong",
            "--out", tmp_path / "run", *FAST)
    assert r.code == 1 and "--attention" in _one_error_line(r)
    assert not (tmp_path / "run").exists()


def test_transformer_positions_bound_decoding(cli, tmp_path):
    _random_model(tmp_path / "m.pt", "transformer_tiny")
    r = cli("text", "seq2seq", "predict", tmp_path / "m.pt", "--max-len", "5000", input="ab\n")
    assert r.code == 1 and "--max-len 5000 exceeds the model's 1023 output positions" in _one_error_line(r)
    r = cli("text", "seq2seq", "predict", tmp_path / "m.pt", input="ab\n" + "a" * 1100 + "\n")
    assert r.code == 1 and "source 2 has 1100 tokens" in _one_error_line(r)
