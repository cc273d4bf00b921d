"""Planned defaults (dltool.core.plan, dltool.text.plan) through `text classify train`: the plan is printed
in one line and saved in config.toml, the same data gives the same plan, a flag the user sets wins over
it (even typed at the command's default), and --resume keeps the plan the run saved."""

from __future__ import annotations

import itertools
import json

import pytest
import tomllib
import torch

from tests.text.conftest import write_two_topic_csv

FAST = ("--model", "cnn_tiny", "--device", "cpu", "--format", "json")


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return write_two_topic_csv(tmp_path_factory.mktemp("plan") / "train.csv", n_per_topic=40, seed=0)


def _planned_run(cli, out, *args):
    """Train with `args` into `out`: (the one plan line printed, the run's config.toml)."""
    r = cli(*args, "--out", out)
    assert r.code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("plan")]
    assert len(lines) == 1, r.stderr  # one line
    return lines[0], tomllib.loads((out / "config.toml").read_text())


def _train(cli, texts, out, *args):
    return _planned_run(cli, out, "text", "classify", "train", texts, *FAST, *args)


def test_plan_is_printed_saved_and_deterministic(cli, texts, tmp_path):
    line, config = _train(cli, texts, tmp_path / "a", "--epochs", "1")
    again, config_again = _train(cli, texts, tmp_path / "b", "--epochs", "1")
    assert (line, config["plan"]) == (again, config_again["plan"])  # the same data, the same plan
    plan = config["plan"]
    assert plan["fingerprint"]["texts"] == 80 and plan["fingerprint"]["classes"] == 2
    assert set(plan["values"]) == {"batch_size", "max_len"}  # epochs was set; a *_tiny model keeps its dropout
    for name, value in plan["values"].items():  # the run used every planned value, and the line shows it
        assert config[name] == value and f"{name}={value}" in line
    assert line.endswith("set by you: epochs")
    vocab = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["preprocess"]["vocab"]
    assert vocab["max_len"] == plan["values"]["max_len"]  # predict cuts texts as the plan said


def test_a_flag_the_user_sets_wins_over_the_plan(cli, texts, tmp_path):
    _, planned = _train(cli, texts, tmp_path / "planned", "--epochs", "1")
    assert planned["batch_size"] == 32 != 64  # 80 texts: the plan halves the command's default
    # --batch-size typed at the command's default still wins: what counts is that the user set it
    line, config = _train(cli, texts, tmp_path / "mine", "--epochs", "1", "--batch-size", "64", "--max-len", "20")
    assert (config["batch_size"], config["max_len"], config["epochs"]) == (64, 20, 1)
    assert config["plan"]["values"] == {}
    assert line.endswith("set by you: batch_size, epochs, max_len")
    # a run repeated from its config.toml repeats the plan's values
    r = cli("text", "classify", "train", "--config", tmp_path / "planned" / "config.toml", "--out", tmp_path / "again",
            "--format", "json")
    assert r.code == 0, r.stderr
    again = tomllib.loads((tmp_path / "again" / "config.toml").read_text())
    assert {k: again[k] for k in planned["plan"]["values"]} == planned["plan"]["values"]


def test_resume_keeps_the_plan_it_saved(cli, texts, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _, before = _train(cli, texts, run, "--epochs", "1", "--scheduler", "none")
    from dltool.text import plan as text_plan

    # a planner that now plans otherwise (a newer version): the resumed run must not change course
    monkeypatch.setattr(text_plan, "plan_classify", lambda fp, cfg: {"batch_size": 8, "max_len": 16})
    line, after = _train(cli, texts, run, "--epochs", "2", "--scheduler", "none", "--resume")
    assert line.startswith("plan (saved with the run):")
    assert after["plan"] == before["plan"] and after["batch_size"] == before["batch_size"]
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    _, fresh = _train(cli, texts, tmp_path / "fresh", "--epochs", "1")
    assert fresh["plan"]["values"] == {"batch_size": 8, "max_len": 16}  # a new run plans anew


def test_apply_keeps_what_a_python_config_changed():
    """A config built in Python has no record of flags: a field off its default counts as set."""
    from dltool.core.plan import apply
    from dltool.core.run import RunConfig
    from dltool.core.train import EngineConfig
    from dltool.text.classify import TrainConfig

    cfg = TrainConfig(data="x.csv", engine=EngineConfig(epochs=3), run=RunConfig(), max_len=40)
    planned, plan = apply(cfg, {"epochs": 20, "batch_size": 16, "max_len": 99, "dropout": 0.5}, {"texts": 5})
    assert (planned.engine.epochs, planned.run.batch_size, planned.max_len, planned.dropout) == (3, 16, 40, 0.5)
    assert plan.values == {"batch_size": 16, "dropout": 0.5} and plan.user_set == ("epochs", "max_len")
    assert planned.options["plan"] == {"values": plan.values, "fingerprint": {"texts": 5}}


def test_word_dropout_hides_training_words_only():
    """--word-dropout p: each real token of a training batch becomes UNK with probability p; the specials
    (PAD, CLS) stay, and validation or inference sees the text whole."""
    from dltool.text.classify import TextClassifyTask
    from dltool.text.tokenize import TokenizerConfig
    from dltool.text.vocab import CLS, PAD, UNK, Vocab, VocabConfig

    class Echo(torch.nn.Module):
        def forward(self, ids, lengths):
            return ids

    torch.manual_seed(0)
    ids = torch.full((64, 50), 7)
    ids[:, 0], ids[:, 40:] = CLS, PAD
    lengths = torch.full((64,), 40)
    vocab = Vocab.build(["a b c"], TokenizerConfig(), VocabConfig(kind="word", size=10, min_count=1, max_len=64))
    task = TextClassifyTask("lstm", {}, ["a", "b"], vocab, "cpu", word_dropout=0.25)
    seen, _ = task.forward(Echo(), (ids, lengths, None), train=True)
    hidden = (seen == UNK).float()
    assert abs(hidden[:, 1:40].mean().item() - 0.25) < 0.03 and hidden[:, 0].sum() == 0
    assert (seen[:, 0] == CLS).all() and seen.shape[1] == 40  # padding columns trimmed, never dropped
    assert torch.equal(task.forward(Echo(), (ids, lengths, None))[0], ids[:, :40])


def test_planned_epochs_follow_the_batch_size_the_user_set():
    from dltool.core.run import RunConfig
    from dltool.core.train import EngineConfig
    from dltool.text.classify import TrainConfig
    from dltool.text.plan import plan_classify

    fp = {"texts": 2000, "tokens_p95": 30}
    planned = plan_classify(fp, TrainConfig(data="x", engine=EngineConfig(), model="cnn"))
    assert planned == {"batch_size": 32, "epochs": 18, "max_len": 32, "word_dropout": 0.2, "dropout": 0.5}
    mine = TrainConfig(data="x", engine=EngineConfig(), run=RunConfig(batch_size=8), model="transformer")
    assert plan_classify(fp, mine)["epochs"] == 8  # 225 steps an epoch: the fewest epochs; no word dropout
    assert "word_dropout" not in plan_classify(fp, mine)


# -- text lm train ----------------------------------------------------------------------------------

def _lm_train(cli, data, out, *args):
    return _planned_run(cli, out, "text", "lm", "train", data, "--dim", "8", "--layers", "1", "--heads", "1",
                        "--batch-size", "16", "--device", "cpu", "--format", "json", *args)


def test_lm_plan_is_printed_saved_and_the_user_wins(cli, tmp_path):
    data = tmp_path / "names.txt"
    data.write_text("".join(f"{w}\n" for w in ("anna", "bob", "carla", "dave", "emma", "fred") * 10))
    line, config = _lm_train(cli, data, tmp_path / "a", "--model", "gpt", "--epochs", "1")
    again, config_again = _lm_train(cli, data, tmp_path / "b", "--model", "gpt", "--epochs", "1")
    assert (line, config["plan"]) == (again, config_again["plan"])  # the same data, the same plan
    assert config["plan"]["values"] == {"dropout": 0.1} and config["dropout"] == 0.1
    assert config["plan"]["fingerprint"]["sequences"] == 54  # the last 10% of the lines validate
    assert line.startswith("plan: dropout=0.1 (from mode lines") and line.endswith("set by you: batch_size, epochs")
    # --dropout typed as the plan's own value's opposite, and the epochs left to the plan
    line, mine = _lm_train(cli, data, tmp_path / "c", "--model", "gpt", "--dropout", "0", "--time-limit", "0.02")
    assert mine["dropout"] == 0 and mine["plan"]["values"] == {} and line.endswith("set by you: batch_size, dropout")


def test_lm_planned_epochs_and_batch_follow_the_corpus():
    from dltool.core.train import EngineConfig
    from dltool.text.lm import TrainConfig
    from dltool.text.plan import LM_STEP_TOKENS, LM_TOKENS, plan_lm

    cfg = TrainConfig(inputs=("x",), engine=EngineConfig())  # the default model, lstm
    names = {"mode": "lines", "sequences": 28_830, "tokens": 205_243}
    # names: 7 tokens a line, so 64 lines (the most) are about 500 tokens a step
    assert plan_lm(names, cfg) == {"batch_size": 64, "epochs": round(LM_TOKENS / 205_243), "dropout": 0.5}
    assert plan_lm(names, TrainConfig(inputs=("x",), engine=EngineConfig(), model="gpt"))["dropout"] == 0.1
    large = plan_lm({**names, "tokens": 10**8}, cfg)  # a large corpus: the fewest epochs, no dropout
    assert (large["epochs"], large["dropout"]) == (10, 0.0)
    assert plan_lm({**names, "tokens": 100}, cfg)["epochs"] == 200  # a tiny one: the most
    # a stream of 128-token windows: 8 windows make LM_STEP_TOKENS
    lee = {"mode": "stream", "sequences": 2_533, "tokens": 324_267}
    assert plan_lm(lee, cfg)["batch_size"] == LM_STEP_TOKENS // 128 == 8
    assert plan_lm(lee, cfg)["dropout"] == 0.1  # windows at random offsets are not learnt by heart as lines are
    budget = TrainConfig(inputs=("x",), engine=EngineConfig(time_limit=5), model="lstm_tiny")
    assert plan_lm(names, budget) == {"batch_size": 64}  # the budget sets the epochs; a *_tiny keeps its dropout


# -- text seq2seq train -----------------------------------------------------------------------------

def _s2s_train(cli, data, out, *args):
    return _planned_run(cli, out, "text", "seq2seq", "train", data, "--model", "gru_tiny", "--epochs", "1",
                        "--device", "cpu", "--format", "json", *args)


def test_seq2seq_plan_is_printed_saved_and_the_user_wins(cli, tmp_path):
    from dltool.core.device import native_cpu_bfloat16

    data = tmp_path / "pairs.tsv"
    words = ["".join(w) for w in itertools.product("abcde", repeat=3)][:100]
    data.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words))
    line, config = _s2s_train(cli, data, tmp_path / "a")
    assert config["plan"]["values"] == {"batch_size": 64, "lr": 0.002} and (config["batch_size"], config["lr"]) == (64, 0.002)
    assert config["plan"]["fingerprint"] == {"pairs": 90, "source_tokens": 4.0, "target_tokens": 4.0,  # ends in
                                             "cpu_bfloat16": native_cpu_bfloat16()}
    assert line.startswith("plan: batch_size=64 lr=0.002 (from pairs 90, source_tokens 4, target_tokens 4, cpu_bfloat16 ")
    # a batch the user set gets its learning rate; a learning rate the user set is kept
    line, mine = _s2s_train(cli, data, tmp_path / "b", "--batch-size", "256")
    assert mine["plan"]["values"] == {"lr": 0.004} and line.endswith("set by you: batch_size")
    _, mine = _s2s_train(cli, data, tmp_path / "c", "--lr", "0.01")
    assert (mine["batch_size"], mine["lr"]) == (64, 0.01) and mine["plan"]["values"] == {"batch_size": 64}


def test_seq2seq_planned_batch_follows_the_pairs():
    from dltool.core.train import EngineConfig
    from dltool.text.plan import SEQ2SEQ_LARGE, fingerprint_seq2seq, plan_seq2seq
    from dltool.text.seq2seq import TrainConfig

    cfg = TrainConfig(inputs=("x",), engine=EngineConfig())  # the default model, lstm
    g2p = {"pairs": 118_680, "cpu_bfloat16": False}  # G2P's full dictionary
    assert plan_seq2seq(g2p, cfg) == {"batch_size": 256, "lr": 0.004, "dropout": 0.1}
    assert plan_seq2seq({**g2p, "cpu_bfloat16": True}, cfg) == {"batch_size": 256, "lr": 0.004, "amp": True,
                                                                "dropout": 0.1}
    # below SEQ2SEQ_LARGE pairs the model's own dropout (0.2) stays
    assert plan_seq2seq({**g2p, "pairs": SEQ2SEQ_LARGE - 1, "cpu_bfloat16": True}, cfg) == {"batch_size": 64, "lr": 0.002}
    transformer = TrainConfig(inputs=("x",), engine=EngineConfig(), model="transformer")
    assert plan_seq2seq(g2p, transformer) == {"batch_size": 256, "lr": 0.002}  # half the recurrent models' rate
    tiny = TrainConfig(inputs=("x",), engine=EngineConfig(), model="gru_tiny")
    assert plan_seq2seq(g2p, tiny) == {"batch_size": 256, "lr": 0.004}  # the test models have no dropout
    # bfloat16 is planned for a run on the CPU only (on CUDA --amp is on by default)
    pairs = (torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 2]), None, torch.zeros(2, 4, dtype=torch.long))
    assert fingerprint_seq2seq(pairs, "cuda")["cpu_bfloat16"] is False
