"""LDA topic models with gensim's LdaMulticore, scored by topic coherence (c_v and u_mass).

The documents' tokens are held in memory (coherence needs them), the vocabulary is filtered with
gensim's `Dictionary.filter_extremes`, and the result is each topic's top words, the per-document
topic distribution as a feature table (`topic_0..topic_{k-1}`) and the coherence scores.

`--seed` guarantee: LdaMulticore is seeded with `random_state`; with `--workers 1` the same seed
and corpus give the same topics on the same machine. More workers update the model in whatever
order their chunks finish, so runs differ slightly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dltool.core.errors import InputError, OptionError
from dltool.core.tables import Table
from dltool.text.corpus import CorpusSpec, document_table, read_documents
from dltool.text.tokenize import Tokenizer, TokenizerConfig


@dataclass(frozen=True)
class TopicsConfig:
    corpus: CorpusSpec
    tokenizer: TokenizerConfig = TokenizerConfig(tokenizer="whitespace")
    k: int = 10
    passes: int = 10
    iterations: int = 50
    no_below: int = 5            # drop words in fewer documents than this
    no_above: float = 0.5        # ... or in more than this share of the documents
    top_words: int = 10
    workers: int = 1
    seed: int = 0

    def __post_init__(self):
        for name in ("k", "passes", "iterations", "no_below", "top_words", "workers"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if not 0 < self.no_above <= 1:
            raise OptionError(f"--no-above {self.no_above} must be in (0, 1]", "a share of the documents, e.g. 0.5")


@dataclass
class TopicsResult:
    topics: list[dict]           # {"topic": i, "words": [...], "weights": [...]}
    coherence: dict              # {"c_v": ..., "u_mass": ...}
    table: Table                 # id, pass-through fields, topic_0..topic_{k-1}
    vocabulary: int
    documents: int

    def summary(self) -> dict:
        return {"k": len(self.topics), "documents": self.documents, "vocabulary": self.vocabulary,
                "coherence_c_v": self.coherence["c_v"], "coherence_u_mass": self.coherence["u_mass"],
                "topics": [{"topic": t["topic"], "words": t["words"]} for t in self.topics]}


def fit(config: TopicsConfig) -> TopicsResult:
    from gensim.corpora import Dictionary
    from gensim.models import CoherenceModel, LdaMulticore

    tokenizer = Tokenizer(config.tokenizer)
    docs = list(read_documents(config.corpus))
    texts = [tokenizer(d) for d in docs]
    dictionary = Dictionary(texts)
    dictionary.filter_extremes(no_below=config.no_below, no_above=config.no_above, keep_n=None)
    if len(dictionary) == 0:
        raise InputError(f"no word is left after --no-below {config.no_below} and --no-above {config.no_above} "
                         f"({len(docs)} documents)", "lower --no-below, raise --no-above, or give more documents")
    if len(dictionary) < config.k:
        raise OptionError(f"-k {config.k} is more than the {len(dictionary)} words left in the vocabulary",
                          f"use -k <= {len(dictionary)}, or loosen --no-below/--no-above")
    bow = [dictionary.doc2bow(t) for t in texts]
    if not any(bow):
        raise InputError("no document has a word of the filtered vocabulary", "loosen --no-below/--no-above")
    lda = LdaMulticore(bow, num_topics=config.k, id2word=dictionary, passes=config.passes,
                       iterations=config.iterations, workers=config.workers, random_state=config.seed)
    topics = []
    for i in range(config.k):
        pairs = lda.show_topic(i, topn=config.top_words)
        topics.append({"topic": i, "words": [w for w, _ in pairs], "weights": [float(p) for _, p in pairs]})
    # c_v slides a window over the texts; u_mass counts document co-occurrence in the corpus
    kept = [[w for w in t if w in dictionary.token2id] for t in texts]
    coherence = {
        "c_v": CoherenceModel(model=lda, texts=kept, dictionary=dictionary, coherence="c_v",
                              topn=config.top_words, processes=1).get_coherence(),
        "u_mass": CoherenceModel(model=lda, corpus=bow, dictionary=dictionary, coherence="u_mass",
                                 topn=config.top_words).get_coherence(),
    }
    theta = np.zeros((len(docs), config.k))
    for row, dist in enumerate(lda.get_document_topics(bow, minimum_probability=0.0)):
        for topic, p in dist:
            theta[row, topic] = p
    table = document_table(docs, {f"topic_{i}": theta[:, i] for i in range(config.k)})
    return TopicsResult(topics, {k: float(v) for k, v in coherence.items()}, table, len(dictionary), len(docs))


def plot_topics(result: TopicsResult, path) -> None:
    """One horizontal bar chart of top-word weights per topic, five to a row."""
    from dltool.core.plots import figure, save_figure

    k = len(result.topics)
    cols = min(k, 5)
    rows = -(-k // cols)
    n_words = len(result.topics[0]["words"])
    fig, axes = figure(rows, cols, figsize=(3.2 * cols, 0.28 * n_words * rows + 1.2 * rows), squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    for t, ax in zip(result.topics, axes.ravel()):
        ax.barh(range(len(t["words"]))[::-1], t["weights"], color="tab:blue")
        ax.set_yticks(range(len(t["words"]))[::-1], t["words"], fontsize=8)
        ax.set_title(f"topic {t['topic']}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.locator_params(axis="x", nbins=3)
    fig.suptitle(f"LDA, k = {k}: top words (c_v {result.coherence['c_v']:.3f})")
    save_figure(fig, path)
