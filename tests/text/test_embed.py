"""dltool text embed: documents as feature tables that pipe into reduce and cluster."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.text.conftest import SMS, jsonl, write_two_topic_csv


def test_tfidf_of_two_topics_clusters_perfectly(cli, tmp_path):
    docs = write_two_topic_csv(tmp_path / "docs.csv")
    table = cli("text", "embed", docs, "--method", "tfidf", "-n", "5").stdout
    rows = jsonl(table)
    assert len(rows) == 60 and list(rows[0])[:3] == ["id", "label", "text"]
    assert [f"e{i}" for i in range(5)] == list(rows[0])[3:]
    clustered = cli("cluster", "kmeans", "-", "-k", "2", "-q", input=table).stdout
    metrics = json.loads(cli("cluster", "evaluate", "-", "--truth", "label", "-q", input=clustered).stdout)
    assert metrics["adjusted_rand"] == 1.0


def test_sms_tfidf_pipes_into_kmeans_and_evaluate(cli):
    """The issue's test: text embed | cluster kmeans -k 2 | cluster evaluate --truth label on the SMS set."""
    table = cli("text", "embed", SMS / "test.csv", "--method", "tfidf", "--tokenizer", "regex", "--lower",
                "-n", "30").stdout
    clustered = cli("cluster", "kmeans", "-", "-k", "2", "-q", input=table).stdout
    r = cli("cluster", "evaluate", "-", "--truth", "label", "-q", input=clustered)
    assert r.code == 0, r.stderr
    rows = jsonl(clustered)
    truth = [row["label"] for row in csv.DictReader(open(SMS / "test.csv", encoding="utf-8"))]
    assert [row["label"] for row in rows] == truth and len(rows) == 1115
    assert json.loads(r.stdout)["adjusted_rand"] == pytest.approx(
        adjusted_rand_score(truth, [row["cluster"] for row in rows]))


def test_tfidf_is_scikit_learns_lsa(cli, tmp_path):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    docs = write_two_topic_csv(tmp_path / "docs.csv", n_per_topic=10)
    rows = jsonl(cli("text", "embed", docs, "-n", "4", "--min-df", "2", "--seed", "3").stdout)
    texts = [row["text"].split() for row in csv.DictReader(open(docs))]
    X = TfidfVectorizer(analyzer=lambda d: d, min_df=2).fit_transform(texts)
    expected = normalize(TruncatedSVD(4, random_state=3).fit_transform(X))
    np.testing.assert_allclose([[r[f"e{i}"] for i in range(4)] for r in rows], expected, atol=1e-8)


@pytest.mark.parametrize("weighted", [False, True])
def test_word2vec_mean_of_known_word_vectors(cli, tmp_path, lee_vectors, weighted):
    from dltool.text.word2vec import load_vectors

    kv = load_vectors(lee_vectors)
    docs = ["fire police fire unknownword", "the government said", "zzzz"]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(docs) + "\n")
    r = cli("text", "embed", path, "--method", "word2vec", "--vectors", lee_vectors, "--no-normalize",
            *(["--tfidf-weight"] if weighted else []))
    assert r.code == 0, r.stderr
    assert "1 of 3 documents have no word with a vector" in r.stderr
    got = np.array([[row[f"e{i}"] for i in range(kv.vector_size)] for row in jsonl(r.stdout)])
    tokens = [[w for w in d.split() if w in kv.key_to_index] for d in docs]
    df = {w: sum(w in t for t in tokens) for t in tokens for w in t}
    idf = {w: np.log((1 + len(docs)) / (1 + n)) + 1 for w, n in df.items()}  # scikit-learn's smooth idf
    for row, words in zip(got[:2], tokens[:2]):
        weights = np.array([idf[w] if weighted else 1.0 for w in words])
        expected = (weights[:, None] * np.stack([kv[w] for w in words])).sum(0) / weights.sum()
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
    assert not got[2].any()
