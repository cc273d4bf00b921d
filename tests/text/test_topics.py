"""dltool text topics: LDA on a corpus with known topics, coherence, the per-document table, --seed."""

from __future__ import annotations

import csv
import json

import numpy as np
from sklearn.metrics import adjusted_rand_score

from tests.text.conftest import TOPIC_WORDS, two_topic_corpus


def test_two_known_topics_are_found(cli, tmp_path):
    docs = two_topic_corpus(n_per_topic=25)
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(f"__label__{label} {text}\n" for label, text in docs))
    table, png = tmp_path / "doc-topics.csv", tmp_path / "topics.png"
    r = cli("text", "topics", corpus, "-k", "2", "--passes", "5", "--no-below", "2", "--no-above", "0.9",
            "--top-words", "5", "-o", table, "--plot", png)
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["k"] == 2 and summary["documents"] == 50 and summary["vocabulary"] == 24
    vocabularies = [set(v) for v in TOPIC_WORDS.values()]
    for topic in summary["topics"]:
        assert len(topic["words"]) == 5
        assert any(set(topic["words"]) <= vocab for vocab in vocabularies)  # each topic is one vocabulary
    rows = list(csv.DictReader(open(table)))
    assert [r["label"] for r in rows] == [label for label, _ in docs]
    theta = np.array([[float(r["topic_0"]), float(r["topic_1"])] for r in rows])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, atol=1e-5)
    assert adjusted_rand_score([label for label, _ in docs], theta.argmax(axis=1)) == 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_coherence_is_that_of_the_printed_topics(cli, lee_tokens):
    """The reported c_v and u_mass equal gensim's CoherenceModel scored on the printed top words."""
    from gensim.corpora import Dictionary
    from gensim.models import CoherenceModel

    r = cli("text", "topics", lee_tokens, "-k", "3", "--passes", "1", "--iterations", "20", "--top-words", "8")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    texts = [line.split() for line in lee_tokens.read_text().splitlines()]
    dictionary = Dictionary(texts)
    dictionary.filter_extremes(no_below=5, no_above=0.5, keep_n=None)
    assert summary["vocabulary"] == len(dictionary)
    kept = [[w for w in t if w in dictionary.token2id] for t in texts]
    words = [t["words"] for t in summary["topics"]]
    c_v = CoherenceModel(topics=words, texts=kept, dictionary=dictionary, coherence="c_v", processes=1)
    u_mass = CoherenceModel(topics=words, corpus=[dictionary.doc2bow(t) for t in texts], dictionary=dictionary,
                            coherence="u_mass")
    assert summary["coherence_c_v"] == np.float64(c_v.get_coherence()).item()
    assert abs(summary["coherence_u_mass"] - u_mass.get_coherence()) < 1e-9
    assert 0 < summary["coherence_c_v"] < 1 and summary["coherence_u_mass"] < 0


def test_same_seed_same_topics(cli, tmp_path):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(text + "\n" for _, text in two_topic_corpus(n_per_topic=15, seed=3)))
    runs = [cli("text", "topics", corpus, "-k", "3", "--passes", "2", "--no-below", "1", "--seed", seed,
                "-o", tmp_path / f"t{i}.csv", "-q") for i, seed in enumerate((5, 5, 6))]
    assert all(r.code == 0 for r in runs)
    tables = [(tmp_path / f"t{i}.csv").read_text() for i in range(3)]
    assert runs[0].stdout == runs[1].stdout and tables[0] == tables[1]
    assert tables[0] != tables[2]
