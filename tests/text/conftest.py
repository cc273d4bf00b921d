"""Text test data: gensim's shipped files, the SMS sample, tiny generated corpora, and helpers."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import sys
from pathlib import Path

import pytest

from dltool.cli import main

SMS = Path(__file__).resolve().parents[2] / "sample_data" / "text" / "sms"

# two vocabularies that never meet: a corpus any sensible method splits in two
TOPIC_WORDS = {
    "sport": "goal match team player score league coach stadium referee season win ball".split(),
    "food": "recipe oven flour sugar butter bake dough salt pepper simmer kitchen taste".split(),
}


def gensim_file(name: str) -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(name))


def two_topic_corpus(n_per_topic: int = 30, words: int = 12, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) documents drawn from one of two disjoint vocabularies, shuffled."""
    rng = random.Random(seed)
    docs = [(label, " ".join(rng.choice(vocab) for _ in range(words)))
            for label, vocab in TOPIC_WORDS.items() for _ in range(n_per_topic)]
    rng.shuffle(docs)
    return docs


def write_two_topic_csv(path: Path, **kw) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "label", "text"])
        for i, (label, text) in enumerate(two_topic_corpus(**kw), 1):
            w.writerow([f"d{i}", label, text])
    return path


def run_main(*args, input: str = "") -> tuple[int, str, str]:
    """The real CLI outside the function-scoped `cli` fixture (for module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO(input)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.stdin = stdin
    return code, out.getvalue(), err.getvalue()


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_error(r, *fragments, output: Path | None = None):
    """Exit 1, one `error: ...` line naming every fragment, and no output file left behind."""
    assert r.code == 1, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    if output is not None:
        assert not output.exists()
        assert not list(output.parent.glob(f".{output.name}.*"))  # no temporary file either


@pytest.fixture(scope="session")
def lee_tokens(tmp_path_factory) -> Path:
    """lee_background.cor tokenized by dltool (lower-cased, punctuation dropped): 300 news stories."""
    path = tmp_path_factory.mktemp("lee") / "lee.tok"
    code, _, err = run_main("text", "tokenize", gensim_file("lee_background.cor"), "--lower", "--strip-punct",
                            "-o", path)
    assert code == 0, err
    return path


@pytest.fixture(scope="session")
def lee_vectors(lee_tokens, tmp_path_factory) -> Path:
    """Small skip-gram vectors trained on lee: 32 dims, 5 epochs, words seen at least 3 times."""
    path = tmp_path_factory.mktemp("vec") / "lee.bin"
    code, _, err = run_main("text", "word2vec", "train", lee_tokens, "-o", path, "--sg", "--dim", "32",
                            "--epochs", "5", "--min-count", "3", "-q")
    assert code == 0, err
    return path


@pytest.fixture
def nltk_data_missing(monkeypatch, tmp_path):
    """NLTK looks for its data only in an empty folder: the state of a fresh install."""
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])


def sms_subset(path: Path, source: Path, n_ham: int, n_spam: int) -> Path:
    """The first n_ham ham and n_spam spam rows of an SMS split, as a CSV at `path`."""
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if r["label"] == "ham"][:n_ham] + [r for r in rows if r["label"] == "spam"][:n_spam]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["id", "label", "text"], lineterminator="\n")
        w.writeheader()
        w.writerows(keep)
    return path
