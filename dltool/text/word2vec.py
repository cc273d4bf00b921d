"""Word vectors with gensim: word2vec (skip-gram or CBOW) and fastText, and what to do with them.

Training tokenizes the corpus once into a temporary file in gensim's LineSentence format and trains
from it with `corpus_file`, gensim's fastest path (no Python in the inner loop, one shard per
worker); memory stays flat whatever the corpus size.

Files, all readable by other tools and loaded without unpickling anything:
- word2vec vectors: `.bin` is the C tool's binary format, any other suffix (`.txt`, `.vec`) its text format;
- fastText models (`--fasttext`): Facebook's `.bin`, which keeps the subword buckets, so words never
  seen in training still get vectors. A `.bin` is told apart by fastText's magic number.

`--seed` guarantee: with `--workers 1`, the same seed and corpus give bit-identical vectors on the
same machine. gensim seeds each word's initial vector from Python's `hash()`, which changes per
process unless PYTHONHASHSEED is fixed, so dltool passes a stable hash (CRC-32) instead. With more
workers the threads' interleaving makes every run differ slightly.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dltool.core.errors import InputError, OptionError, suggest
from dltool.core.io import atomic_path, input_path
from dltool.text.corpus import CorpusSpec
from dltool.text.tokenize import Tokenizer, TokenizerConfig, tokenized

FASTTEXT_MAGIC = 793712314  # the first int32 of Facebook's .bin files
SUGGEST_FROM = 50_000       # look for "did you mean" among this many of the most frequent words


def stable_hash(text: str) -> int:
    """Per-word seed for gensim's initial vectors that, unlike hash(), is the same in every process."""
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class TrainConfig:
    corpus: CorpusSpec
    output: str
    tokenizer: TokenizerConfig = TokenizerConfig(tokenizer="whitespace")
    fasttext: bool = False
    sg: bool = False                 # skip-gram; CBOW otherwise
    hs: bool = False                 # hierarchical softmax instead of negative sampling
    negative: int = 5
    dim: int = 100
    window: int = 5
    min_count: int = 5
    epochs: int = 5
    workers: int = 1
    seed: int = 0
    bucket: int = 2_000_000          # fastText: hash buckets for character n-grams
    min_n: int = 3
    max_n: int = 6

    def __post_init__(self):
        for name in ("dim", "window", "min_count", "epochs", "workers"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if self.negative < 0 or (self.negative == 0 and not self.hs):
            raise OptionError(f"--negative {self.negative}: negative sampling needs at least 1 noise word",
                              "use --negative 5, or --hs for hierarchical softmax")
        if self.fasttext:
            if Path(self.output).suffix.lower() != ".bin":
                raise OptionError(f"-o {self.output}: a fastText model is saved in Facebook's .bin format",
                                  "name the output FILE.bin")
            if self.bucket < 1 or not 1 <= self.min_n <= self.max_n:
                raise OptionError("fastText needs --bucket >= 1 and 1 <= --min-n <= --max-n")
        if self.output == "-":
            raise OptionError("-o -: vectors are a binary or text file, not a stream", "name the output file")

    @property
    def binary(self) -> bool:
        return Path(self.output).suffix.lower() == ".bin"

    def gensim_params(self) -> dict:
        params = dict(vector_size=self.dim, window=self.window, min_count=self.min_count, epochs=self.epochs,
                      workers=self.workers, seed=self.seed, sg=int(self.sg), hs=int(self.hs),
                      negative=0 if self.hs else self.negative, hashfxn=stable_hash)
        if self.fasttext:
            params.update(bucket=self.bucket, min_n=self.min_n, max_n=self.max_n)
        return params


@contextlib.contextmanager
def line_sentence_file(corpus: CorpusSpec, tokenizer: Tokenizer) -> Iterator[tuple[str, int]]:
    """(path, documents): the corpus tokenized into gensim's LineSentence format, removed afterwards."""
    fd, tmp = tempfile.mkstemp(prefix="dltool-corpus-", suffix=".txt")
    try:
        n = 0
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for _, tokens in tokenized(corpus, tokenizer):
                if tokens:
                    f.write(" ".join(tokens) + "\n")
                    n += 1
        yield tmp, n
    finally:
        Path(tmp).unlink(missing_ok=True)


def train(config: TrainConfig) -> dict:
    """Train, save to config.output atomically, and return a summary."""
    from gensim.models import FastText, Word2Vec

    model_class = FastText if config.fasttext else Word2Vec
    with line_sentence_file(config.corpus, Tokenizer(config.tokenizer)) as (path, documents):
        if documents == 0:
            raise InputError("every document is empty after tokenizing", "check the input and the tokenizer options")
        model = model_class(**config.gensim_params())
        model.build_vocab(corpus_file=path)
        if len(model.wv) == 0:
            raise InputError(f"no word occurs --min-count {config.min_count} times in the corpus",
                             "lower --min-count or give a larger corpus")
        start = time.perf_counter()
        model.train(corpus_file=path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                    epochs=model.epochs)
        seconds = time.perf_counter() - start
    save(model, config)
    return {"output": config.output, "format": output_format(config), "words": len(model.wv),
            "dim": config.dim, "documents": documents, "tokens": int(model.corpus_total_words),
            "train_seconds": round(seconds, 3)}


def output_format(config: TrainConfig) -> str:
    if config.fasttext:
        return "fasttext-bin"
    return "word2vec-bin" if config.binary else "word2vec-text"


def save(model, config: TrainConfig) -> None:
    with atomic_path(config.output) as tmp:
        if config.fasttext:
            from gensim.models.fasttext import save_facebook_model

            save_facebook_model(model, str(tmp))
        else:
            model.wv.save_word2vec_format(str(tmp), binary=config.binary)


def load_vectors(path: str | Path):
    """KeyedVectors from a word2vec binary/text file, or FastTextKeyedVectors from a Facebook .bin."""
    p = input_path(path, "vectors")
    if p.is_dir():
        raise InputError(f"vectors '{path}' is a folder", "give the file written by 'dltool text word2vec train'")
    with open(p, "rb") as f:
        head = f.read(4)
    try:
        if len(head) == 4 and struct.unpack("<i", head)[0] == FASTTEXT_MAGIC:
            from gensim.models.fasttext import load_facebook_vectors

            return load_facebook_vectors(str(p))
        from gensim.models import KeyedVectors

        return KeyedVectors.load_word2vec_format(str(p), binary=p.suffix.lower() == ".bin")
    except (ValueError, UnicodeDecodeError, EOFError, struct.error, OSError) as e:
        kind = "binary" if p.suffix.lower() == ".bin" else "text"
        raise InputError(f"{path}: not a word2vec {kind} file nor a fastText .bin ({type(e).__name__}: {e})",
                         "give the file written by 'dltool text word2vec train' (.bin binary, .txt text)") from None


def is_fasttext(kv) -> bool:
    from gensim.models.fasttext import FastTextKeyedVectors

    return isinstance(kv, FastTextKeyedVectors)


def check_known(kv, words) -> None:
    """Every word must have a vector: word2vec only knows its vocabulary; fastText builds any word from n-grams."""
    if is_fasttext(kv):
        return
    for word in words:
        if word not in kv.key_to_index:
            hint = suggest(word, kv.index_to_key[:SUGGEST_FROM])
            raise InputError(f"'{word}' is not in the vocabulary of {len(kv):,} words",
                             hint or "check the spelling and the case (train with the same tokenizer options), "
                                     "or train with --fasttext, which has vectors for unseen words")


def similar(kv, words: list[str], topn: int) -> list[dict]:
    """The topn nearest words (cosine) of each query word."""
    check_topn(topn)
    check_known(kv, words)
    return [{"query": w, "rank": rank, "word": other, "similarity": score}
            for w in words for rank, (other, score) in enumerate(kv.most_similar(w, topn=topn), 1)]


def analogy(kv, a: str, b: str, c: str, topn: int) -> list[dict]:
    """A is to B as C is to ?: the words nearest to B - A + C (3CosAdd), the three inputs left out."""
    check_topn(topn)
    check_known(kv, [a, b, c])
    return [{"rank": rank, "word": word, "similarity": score}
            for rank, (word, score) in enumerate(kv.most_similar(positive=[b, c], negative=[a], topn=topn), 1)]


def check_topn(topn: int) -> None:
    if topn < 1:
        raise OptionError(f"--topn {topn} must be at least 1")


def vectors_table(kv, limit: int | None = None):
    """A feature table: `word`, then one numeric column per dimension (e0, e1, ...), most frequent words first."""
    import numpy as np

    from dltool.core.tables import Table

    if limit is not None and limit < 1:
        raise OptionError(f"--limit {limit} must be at least 1", "leave it out for every word")
    n = len(kv) if limit is None else min(limit, len(kv))
    if n == 0:
        raise InputError("the vectors file has no words")
    words = np.array(kv.index_to_key[:n], dtype=object)
    V = np.asarray(kv.vectors[:n], dtype=np.float64)
    return Table({"word": words, **{f"e{i}": V[:, i] for i in range(V.shape[1])}})


def _analogy_questions(path: Path) -> dict[str, int]:
    """Questions per section, counted as gensim reads them (4 words a line under ': section')."""
    counts: dict[str, int] = {}
    section = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(": "):
                section = line[2:].strip()
                counts[section] = 0
            elif section is not None and len(line.split()) == 4:
                counts[section] += 1
    if section is None:
        raise InputError(f"--analogies {path}: no ': section' header line",
                         "give a file in the questions-words.txt format")
    return counts


def evaluate(kv, analogies: Path | None, similarity: list[Path], restrict_vocab: int = 300_000) -> dict:
    """Analogy accuracy (overall and per section), Spearman/Pearson on word-pair sets, and OOV rates.

    Questions and pairs with a word outside the first `restrict_vocab` words are skipped (gensim's rule)
    and counted in the out-of-vocabulary rate; words are compared case-insensitively.
    """
    if analogies is None and not similarity:
        raise OptionError("nothing to evaluate", "give --analogies FILE and/or --similarity FILE")
    result: dict = {"words": len(kv)}
    if analogies is not None:
        questions = _analogy_questions(input_path(analogies, "--analogies file"))
        overall, sections = kv.evaluate_word_analogies(str(analogies), restrict_vocab=restrict_vocab)
        total = sum(questions.values())
        answered = sum(len(s["correct"]) + len(s["incorrect"]) for s in sections[:-1])
        result.update({"analogy_file": Path(analogies).name, "analogy_questions": total,
                       "analogy_answered": answered, "analogy_oov_rate": 1 - answered / total if total else None,
                       "analogy_accuracy": overall if answered else None})
        for s in sections[:-1]:
            n = len(s["correct"]) + len(s["incorrect"])
            result[f"analogy_accuracy:{s['section']}"] = len(s["correct"]) / n if n else None
    for path in similarity:
        input_path(path, "--similarity file")
        name = Path(path).stem
        try:
            pearson, spearman, oov_percent = kv.evaluate_word_pairs(str(path), restrict_vocab=restrict_vocab)
        except (ValueError, ZeroDivisionError) as e:
            raise InputError(f"--similarity {path}: cannot score it ({e})",
                             "give tab-separated 'word1 word2 score' lines (WordSim-353/SimLex-999 format)") from None
        result.update({f"{name}_spearman": float(spearman.statistic), f"{name}_pearson": float(pearson.statistic),
                       f"{name}_oov_rate": oov_percent / 100})
    return result
