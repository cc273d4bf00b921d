"""dltool text word2vec train|similar|analogy|vectors|evaluate on gensim's real lee corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.text.conftest import gensim_file, jsonl, run_main

TRAIN = ("--dim", "16", "--epochs", "2", "--min-count", "3", "-q")


def kv_of(path):
    from dltool.text.word2vec import load_vectors

    return load_vectors(path)


def unit(v):
    return v / np.linalg.norm(v)


def test_tokenize_pipes_into_train(cli, tmp_path):
    """dltool text tokenize corpus --lower | dltool text word2vec train - -o vec.bin"""
    tokens = cli("text", "tokenize", gensim_file("lee_background.cor"), "--lower", "--strip-punct").stdout
    out = tmp_path / "vec.bin"
    r = cli("text", "word2vec", "train", "-", "-o", out, *TRAIN, input=tokens)
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    kv = kv_of(out)
    assert summary["words"] == len(kv) > 1000 and summary["documents"] == 300 and kv.vector_size == 16
    assert "the" in kv.key_to_index and "The" not in kv.key_to_index  # lower-cased upstream


def test_same_seed_same_vectors_other_seed_other_vectors(cli, tmp_path, lee_tokens):
    paths = [tmp_path / f"{name}.txt" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (7, 7, 8)):
        assert cli("text", "word2vec", "train", lee_tokens, "-o", path, "--seed", seed, *TRAIN).code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_text_and_binary_formats_hold_the_same_vectors_for_other_tools(cli, tmp_path, lee_tokens):
    from gensim.models import KeyedVectors

    for name in ("v.bin", "v.vec"):
        assert cli("text", "word2vec", "train", lee_tokens, "-o", tmp_path / name, *TRAIN).code == 0
    assert (tmp_path / "v.vec").read_text().split("\n", 1)[0].split() == [
        str(len(kv_of(tmp_path / "v.bin"))), "16"]  # the C tool's text header: words dims
    binary = KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    text = KeyedVectors.load_word2vec_format(str(tmp_path / "v.vec"), binary=False)
    assert binary.index_to_key == text.index_to_key
    np.testing.assert_allclose(binary.vectors, text.vectors, atol=1e-5)


@pytest.fixture(scope="module")
def base_vectors(lee_tokens, tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.bin"
    assert run_main("text", "word2vec", "train", lee_tokens, "-o", path, *TRAIN)[0] == 0
    return kv_of(path)


@pytest.mark.parametrize("flags", [["--sg"], ["--hs"], ["--window", "2"]])
def test_training_options_change_the_vectors(cli, tmp_path, lee_tokens, base_vectors, flags):
    other = tmp_path / "other.bin"
    assert cli("text", "word2vec", "train", lee_tokens, "-o", other, *TRAIN, *flags).code == 0
    b = kv_of(other)
    assert base_vectors.index_to_key == b.index_to_key and not np.allclose(base_vectors.vectors, b.vectors)


def test_fasttext_bin_has_vectors_for_unseen_words(cli, tmp_path, lee_tokens):
    from gensim.models.fasttext import load_facebook_model

    out = tmp_path / "ft.bin"
    r = cli("text", "word2vec", "train", lee_tokens, "-o", out, "--fasttext", "--bucket", "2000", *TRAIN)
    assert r.code == 0, r.stderr
    model = load_facebook_model(str(out))  # Facebook's format, as fastText itself reads it
    assert model.wv.bucket == 2000 and "bushfirez" not in model.wv.key_to_index
    got = jsonl(cli("text", "word2vec", "similar", out, "bushfirez", "-n", "3").stdout)
    assert len(got) == 3
    expected = model.wv.most_similar("bushfirez", topn=3)
    assert [g["word"] for g in got] == [w for w, _ in expected]


def test_similar_is_cosine_nearest(cli, lee_vectors):
    kv = kv_of(lee_vectors)
    got = jsonl(cli("text", "word2vec", "similar", lee_vectors, "fire", "police", "-n", "4").stdout)
    assert [(g["query"], g["rank"]) for g in got] == [(q, i) for q in ("fire", "police") for i in range(1, 5)]
    V = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    for query in ("fire", "police"):
        sims = V @ V[kv.key_to_index[query]]
        sims[kv.key_to_index[query]] = -np.inf
        best = [kv.index_to_key[i] for i in np.argsort(-sims)[:4]]
        rows = [g for g in got if g["query"] == query]
        assert [g["word"] for g in rows] == best
        np.testing.assert_allclose([g["similarity"] for g in rows], np.sort(sims)[::-1][:4], atol=1e-5)


def test_analogy_is_b_minus_a_plus_c(cli, lee_vectors):
    kv = kv_of(lee_vectors)
    got = jsonl(cli("text", "word2vec", "analogy", lee_vectors, "israel", "israeli", "palestinian", "-n", "3").stdout)
    V = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    a, b, c = (V[kv.key_to_index[w]] for w in ("israel", "israeli", "palestinian"))
    sims = V @ unit(b - a + c)
    for w in ("israel", "israeli", "palestinian"):
        sims[kv.key_to_index[w]] = -np.inf
    assert [g["word"] for g in got] == [kv.index_to_key[i] for i in np.argsort(-sims)[:3]]


def test_vectors_table_pipes_into_cluster(cli, lee_vectors):
    kv = kv_of(lee_vectors)
    table = cli("text", "word2vec", "vectors", lee_vectors, "--limit", "200").stdout
    rows = jsonl(table)
    assert len(rows) == 200 and [r["word"] for r in rows] == kv.index_to_key[:200]
    np.testing.assert_allclose([rows[5][f"e{i}"] for i in range(32)], kv.vectors[5], rtol=1e-6)
    r = cli("cluster", "kmeans", "-", "-k", "4", "-q", input=table)
    assert r.code == 0, r.stderr
    clustered = jsonl(r.stdout)
    assert [c["word"] for c in clustered] == [w["word"] for w in rows]
    assert {c["cluster"] for c in clustered} == {0, 1, 2, 3}


def test_evaluate_on_questions_words_and_wordsim353(cli, lee_vectors):
    """The issue's bar, end to end: accuracy, Spearman and OOV rates against an independent count."""
    from scipy.stats import spearmanr

    analogies, wordsim = gensim_file("questions-words.txt"), gensim_file("wordsim353.tsv")
    r = cli("text", "word2vec", "evaluate", lee_vectors, "--analogies", analogies, "--similarity", wordsim)
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    kv = kv_of(lee_vectors)
    vocab = {w.upper() for w in kv.index_to_key}
    questions = [line.split() for line in analogies.read_text().splitlines() if not line.startswith(":")]
    known = [q for q in questions if all(w.upper() in vocab for w in q)]
    assert m["analogy_questions"] == len(questions) == 19544
    assert m["analogy_answered"] == len(known)
    assert m["analogy_oov_rate"] == pytest.approx(1 - len(known) / len(questions))
    sections = {k: v for k, v in m.items() if k.startswith("analogy_accuracy:")}
    assert len(sections) == 14 and "analogy_accuracy:family" in sections
    assert 0 <= m["analogy_accuracy"] <= 1
    pairs = [line.split("\t") for line in wordsim.read_text().splitlines() if not line.startswith("#")]
    scored = [(a, b, float(s)) for a, b, s in pairs if a.lower() in kv.key_to_index and b.lower() in kv.key_to_index]
    cos = [float(unit(kv[a.lower()]) @ unit(kv[b.lower()])) for a, b, _ in scored]
    assert m["wordsim353_spearman"] == pytest.approx(spearmanr(cos, [s for *_, s in scored]).statistic, abs=1e-6)
    assert m["wordsim353_oov_rate"] == pytest.approx(1 - len(scored) / len(pairs), abs=1e-6)
