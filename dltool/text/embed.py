"""Documents -> a feature table, so text pipes into `reduce` and `cluster` like images and audio.

Methods:
- `tfidf`: scikit-learn's TF-IDF on the tokens (sparse), reduced to `n` dimensions with truncated SVD
  (latent semantic analysis); rows are then L2-normalised, as scikit-learn's LSA example does, so
  k-means on them compares directions (cosine), not document lengths. `--seed` seeds the SVD.
- `model`: a trained `text classify` network's pooled representation (`predict --embed`'s), from the raw
  text with the model's own vocabulary and tokenizer settings (so the tokenizer options do not apply).
- `word2vec`: the mean of the documents' word vectors from a `word2vec train` file; with
  `tfidf_weight`, each word counts with its TF-IDF weight instead of its count. Words without a
  vector are skipped (fastText vectors have one for every word); a document with none gets zeros.

Output columns: `id`, every pass-through field (label, path, ...), `text`, then `e0..e{n-1}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.core.console import warn
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.tables import Table
from dltool.text.corpus import CorpusSpec, document_table, read_documents
from dltool.text.tokenize import Tokenizer, TokenizerConfig

METHODS = ("tfidf", "word2vec", "model")


@dataclass(frozen=True)
class EmbedConfig:
    corpus: CorpusSpec
    tokenizer: TokenizerConfig = TokenizerConfig(tokenizer="whitespace")
    method: str = "tfidf"
    n_components: int = 100
    min_df: int = 1
    normalize: bool = True
    vectors: Path | None = None
    tfidf_weight: bool = False
    model: Path | None = None
    device: str = "auto"
    seed: int = 0
    shard: tuple[int, int] | None = None  # --shard I/N: only the I-th of N contiguous blocks of the documents

    def __post_init__(self):
        if self.method not in METHODS:
            raise unknown_name("--method", self.method, METHODS)
        if self.method == "word2vec" and self.vectors is None:
            raise OptionError("--method word2vec needs --vectors FILE", "train them with 'dltool text word2vec train'")
        if self.method == "tfidf" and self.vectors is not None:
            raise OptionError("--vectors is for --method word2vec", "leave it out, or use --method word2vec")
        if (self.method == "model") != (self.model is not None):
            raise OptionError("--method model and --model FILE go together",
                              "pass a 'text classify train' model file with --method model")
        if self.method == "model" and self.tokenizer != TokenizerConfig(tokenizer="whitespace"):
            raise OptionError("--method model tokenizes as its model was trained", "drop the tokenizer options")
        if self.method == "tfidf" and self.tfidf_weight:
            raise OptionError("--tfidf-weight is for --method word2vec (tfidf is TF-IDF already)")
        if self.n_components < 1 or self.min_df < 1:
            raise OptionError("-n and --min-df must be at least 1")

    def check_shardable(self) -> None:
        """TF-IDF (and --tfidf-weight) learns from the whole corpus: a block of it would give other numbers."""
        from dltool.core import distributed as dist

        if (self.shard is not None or dist.world_size() > 1) and (self.method == "tfidf" or self.tfidf_weight):
            raise OptionError("--shard/--nproc split the documents, but TF-IDF is fitted on the whole corpus",
                              "use --method model or word2vec (without --tfidf-weight), or one process")


def _identity(tokens):
    return tokens


def embed(config: EmbedConfig) -> Table | None:
    """The documents' feature table; under torchrun / --nproc each rank embeds a block and rank 0 returns the
    whole table in input order (None on the others)."""
    from dltool.core import distributed as dist
    from dltool.core.device import resolve_device
    from dltool.core.inputs import gathered_table, shard

    config.check_shardable()
    if dist.world_size() > 1:
        dist.setup(resolve_device(config.device))
    docs = shard(list(read_documents(config.corpus)), config.shard)
    return gathered_table(_embed(docs, config) if docs else None, config.shard)


def _embed(docs: list, config: EmbedConfig) -> Table:
    if config.method == "model":
        from dltool.text.classify import load, pooled

        lm = load(config.model, config.device)
        Z = pooled(lm, [d.text if d.text is not None else " ".join(d.tokens) for d in docs]).astype(np.float64)
        if config.normalize:
            from sklearn.preprocessing import normalize

            Z = normalize(Z)
        return document_table(docs, {f"e{i}": Z[:, i] for i in range(Z.shape[1])})
    tokenizer = Tokenizer(config.tokenizer)
    tokens = [tokenizer(d) for d in docs]
    if config.method == "tfidf":
        Z = _tfidf_lsa(tokens, config)
    else:
        Z = _mean_vectors(tokens, config)
    if config.normalize:
        from sklearn.preprocessing import normalize

        Z = normalize(Z)
    return document_table(docs, {f"e{i}": Z[:, i] for i in range(Z.shape[1])})


def _tfidf_lsa(tokens: list[list[str]], config: EmbedConfig) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        X = TfidfVectorizer(analyzer=_identity, min_df=config.min_df).fit_transform(tokens)
    except ValueError:  # scikit-learn: "empty vocabulary" or min_df leaves no terms
        raise InputError(f"no term is left for TF-IDF (--min-df {config.min_df}, {len(tokens)} documents)",
                         "lower --min-df or check the tokenizer options") from None
    if config.n_components >= X.shape[1]:
        raise OptionError(f"-n {config.n_components} must be less than the {X.shape[1]} terms of the vocabulary",
                          f"use -n <= {X.shape[1] - 1}")
    return TruncatedSVD(n_components=config.n_components, random_state=config.seed).fit_transform(X)


def _mean_vectors(tokens: list[list[str]], config: EmbedConfig) -> np.ndarray:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    from dltool.text.word2vec import is_fasttext, load_vectors

    kv = load_vectors(config.vectors)
    words = sorted({t for doc in tokens for t in doc})
    vocabulary = words if is_fasttext(kv) else [w for w in words if w in kv.key_to_index]
    if not vocabulary:
        raise InputError(f"no word of the documents has a vector in {config.vectors}",
                         "tokenize the documents as the vectors' training corpus was (e.g. --lower)")
    # a document's vector is its weight row times the word vectors, divided by the weights' sum
    weighter = (TfidfVectorizer(analyzer=_identity, vocabulary=vocabulary, norm=None) if config.tfidf_weight
                else CountVectorizer(analyzer=_identity, vocabulary=vocabulary))
    W = weighter.fit_transform(tokens)
    E = np.stack([kv[w] for w in vocabulary]).astype(np.float64)
    totals = np.asarray(W.sum(axis=1)).ravel()
    empty = totals == 0
    if empty.any():
        warn(f"{int(empty.sum())} of {len(tokens)} documents have no word with a vector; their rows are zeros")
    return np.asarray(W @ E) / np.where(empty, 1.0, totals)[:, None]
