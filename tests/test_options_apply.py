"""Every option applies or is refused (issue 21 §2).

Walks every command whose method, kind or model decides which options it takes: each option declared for
some other choice is refused when given, even at its default value, with exit 1, one line naming the
option and the choice, and no output or run folder left. Refusals come before any data is read, so
nothing here trains or reads a table. Options that belong to another command are click's own usage error.
"""

from __future__ import annotations

import functools

import pytest

from tests.conftest import command_tree

#: values to type for options whose default is None (any value must be refused the same way)
SAMPLES = {"backbone": "cnn", "strides": "8,16,32"}
TYPE_SAMPLES = {"int": "2", "float": "0.5", "str": "x", "Path": "x"}
OTHER = "any other value"  # a rule's `otherwise`: the choosing option set to a sample value


def _declarations():
    """(command words, its input kind, the rule) for every command with choice-dependent options."""
    from dltool.audio import classify as audio_classify
    from dltool.audio.models import MODELS as AUDIO_MODELS
    from dltool.cluster.methods import METHODS
    from dltool.core.registry import arch_rule
    from dltool.generate import gan
    from dltool.reduce import autoencoder, select
    from dltool.reduce.base import REDUCERS
    from dltool.reduce.reduction import load_methods
    from dltool.series import forecast
    from dltool.series.models import MODELS as SERIES_MODELS
    from dltool.text import classify as text_classify
    from dltool.text import lm as text_lm
    from dltool.text import seq2seq as text_seq2seq
    from dltool.text import tag as text_tag
    from dltool.text.models.lm import LM_MODELS
    from dltool.text.models.seq2seq import SEQ2SEQ_MODELS
    from dltool.text.models.tagger import TAGGERS
    from dltool.vision import classify as vision_classify
    from dltool.vision import detect, metric, segment
    from dltool.vision.models import DETECTORS, MODELS, SEGMENTERS

    found = [
        (("reduce", "select"), "table", select.METHOD_OPTIONS),
        (("reduce", "autoencoder"), "table run", autoencoder.KIND_OPTIONS),
        (("generate", "gan", "train"), "run", gan.KIND_OPTIONS),
        (("vision", "classify", "train"), "run", arch_rule(MODELS, vision_classify.ARCH_OPTIONS)),
        (("vision", "segment", "train"), "run", arch_rule(SEGMENTERS, segment.ARCH_OPTIONS)),
        (("vision", "detect", "train"), "run", arch_rule(DETECTORS, detect.ARCH_OPTIONS)),
        (("audio", "classify", "train"), "run", arch_rule(AUDIO_MODELS, audio_classify.ARCH_OPTIONS)),
        (("text", "classify", "train"), "text run", text_classify.MODEL_OPTIONS),
        (("text", "lm", "train"), "text run", text_lm.MODEL_OPTIONS),
        (("text", "lm", "train"), "text run", arch_rule(LM_MODELS, text_lm.ARCH_OPTIONS)),
        (("text", "tag", "train"), "text run", arch_rule(TAGGERS, text_tag.ARCH_OPTIONS)),
        (("text", "tag", "train"), "text run", text_tag.MODEL_OPTIONS),
        (("text", "seq2seq", "train"), "text run", arch_rule(SEQ2SEQ_MODELS, text_seq2seq.ARCH_OPTIONS)),
        (("series", "forecast", "train"), "run", arch_rule(SERIES_MODELS, forecast.ARCH_OPTIONS)),
        (("series", "forecast", "train"), "run", forecast.LOSS_OPTIONS),
        (("vision", "classify", "train"), "run", metric.LOSS_OPTIONS),
        (("vision", "classify", "pretrain"), "run", arch_rule(MODELS, vision_classify.ARCH_OPTIONS)),
    ]
    load_methods()
    for group, registry in (("reduce", REDUCERS), ("cluster", METHODS)):
        for name in registry.names():
            found += [((group, name), "table", rule) for rule in getattr(registry.get(name).builder, "option_rules", ())]
    return found


def _cases():
    for words, inputs, rule in _declarations():
        choices = [*rule.takes.items(), *([(OTHER, rule.otherwise)] if rule.otherwise is not None else [])]
        offered = {p.name for p in _command(words).params}
        for value, takes in choices:
            for option in rule.options:
                if option not in takes and option in offered:
                    yield pytest.param(words, inputs, rule, value, option,
                                       id=f"{' '.join(words)} --{rule.choice} {value} {rule.flag(option)}")


@functools.lru_cache(maxsize=1)
def _tree():
    return command_tree()  # every domain loaded: once, not per case


def _command(words):
    cmd = _tree()
    for word in words:
        cmd = cmd.get_command(None, word)
    return cmd


def _param(command, name):
    return next(p for p in command.params if p.name == name)


def _typed(command, name) -> list[str]:
    """The option as a user types it, at its default value where it has one."""
    param = _param(command, name)
    if param.is_flag:
        return [param.opts[0]]
    value = param.default if param.default is not None else SAMPLES.get(name, TYPE_SAMPLES[param.bare_type()])
    return [param.opts[0], str(value)]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "t.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{i},{i % 3},{i * i % 5},{i % 2}\n" for i in range(8)))
    return path


@pytest.mark.parametrize("words,inputs,rule,value,option", list(_cases()))
def test_an_option_that_does_not_apply_is_refused(cli, table, tmp_path, words, inputs, rule, value, option):
    command = _command(words)
    choice = _param(command, rule.choice)
    typed = _typed(command, option)
    out, run = tmp_path / "out.csv", tmp_path / "run"
    args = [*words, table if "table" in inputs or "text" in inputs else tmp_path]
    args += ["--target", "label"] if words == ("reduce", "select") else []
    args += ["-o", out] if "table" in inputs else []
    args += ["--out", run] if "run" in inputs else []
    chosen = _typed(command, rule.choice) if value == OTHER else [choice.opts[0], value]
    r = cli(*args, *chosen, *typed)
    assert r.code == 1, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    flag = rule.flag(option, True if _param(command, option).is_flag else None)
    shown = _as_held(chosen[1]) if value == OTHER else value  # an open choice as the config holds it
    assert lines[0].startswith(f"error: {flag} does not apply to {choice.opts[0]} {shown} — "), lines[0]
    assert not out.exists() and not run.exists()


def _as_held(typed: str):
    try:
        return float(typed)
    except ValueError:
        return typed


def test_every_rule_is_walked():
    """Each rule names real options of its command (or engine options the command does not offer, which a
    config built in Python may still set), and each choice is a value the command accepts."""
    from dataclasses import fields

    from dltool.core.train import EngineConfig

    engine = {f.name for f in fields(EngineConfig)}
    for words, _, rule in _declarations():
        command = _command(words)
        names = {p.name for p in command.params}
        assert rule.choice in names and set(rule.options) - names <= engine, (words, set(rule.options) - names)


def test_the_brief_cases(cli, table, tmp_path):
    out = tmp_path / "out.csv"
    r = cli("reduce", "select", table, "--target", "label", "--method", "anova", "--population", 1, "--alpha", -5,
            "--n-repeats", 0, "--estimator", "knn", "--pre-k", 3, "--filter", "mi", "-o", out)
    assert r.code == 1 and r.stderr.startswith(
        "error: --estimator, --n-repeats, --population, --alpha, --pre-k, --filter do not apply to --method anova")
    r = cli("reduce", "select", table, "--target", "label", "--method", "l1", "--alpha", -5, "-o", out)
    assert r.code == 1 and "--alpha -5.0 must be > 0" in r.stderr
    r = cli("reduce", "select", table, "--target", "label", "--method", "genetic", "--population", 1, "-o", out)
    assert r.code == 1 and "--population 1 must be >= 2" in r.stderr
    r = cli("generate", "gan", "train", tmp_path, "--kind", "wgan-gp", "--loss", "nonsaturating", "--out", tmp_path / "g")
    assert r.code == 1 and r.stderr.startswith("error: --loss does not apply to --kind wgan-gp")
    assert not out.exists() and not (tmp_path / "g").exists()


def test_a_config_file_sets_an_option_when_it_differs_from_the_default(cli, tmp_path):
    """dltool's own config.toml lists every option, defaults too: repeating a wgan-gp run from it must work,
    while a config that changes an option that does not apply is refused like the command line."""
    images = tmp_path / "images"
    images.mkdir()
    saved = tmp_path / "saved.toml"
    saved.write_text('kind = "wgan-gp"\nloss = "nonsaturating"\n')
    r = cli("generate", "gan", "train", images, "--config", saved, "--out", tmp_path / "a")
    assert r.code == 1 and "does not apply" not in r.stderr  # it goes on to the (empty) data
    changed = tmp_path / "changed.toml"
    changed.write_text('kind = "wgan-gp"\nloss = "minimax"\n')
    r = cli("generate", "gan", "train", images, "--config", changed, "--out", tmp_path / "b")
    assert r.code == 1 and "error: --loss does not apply to --kind wgan-gp" in r.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("group", ["cluster", "reduce"])
def test_a_method_option_on_another_method_is_a_usage_error(cli, table, group):
    """cluster and reduce have a command per method: --eps exists on dbscan alone, so every other method's
    command refuses it."""
    from dltool.cli.options import TABLE_OPTIONS
    from dltool.cli.train_options import ENGINE_OPTIONS
    from dltool.cluster.methods import METHODS
    from dltool.reduce.base import REDUCERS
    from dltool.reduce.reduction import load_methods

    load_methods()
    shared = {name for name, _, _ in TABLE_OPTIONS + ENGINE_OPTIONS}
    root = _command((group,))
    methods = (METHODS if group == "cluster" else REDUCERS).names()
    commands = {name: root.get_command(None, name) for name in methods}
    flags = {name: {o for p in c.params if p.name not in shared for o in p.opts + p.secondary_opts if o.startswith("--")}
             for name, c in commands.items()}
    tried = 0
    for name, command in commands.items():
        offered = {o for p in command.params for o in p.opts + p.secondary_opts}
        for flag in sorted(set().union(*flags.values()) - offered):
            r = cli(group, name, table, flag)
            assert r.code == 2 and "No such option" in r.stderr, (group, name, flag, r.stderr)
            tried += 1
    assert tried > 20
