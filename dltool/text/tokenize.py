"""Tokenizing documents: NLTK's tokenizers that need no downloaded data, then normalisation.

The settings are a frozen `TokenizerConfig` of plain data (`to_dict`/`from_dict`), so a model file
can carry them and tokenize new text exactly as its training text was (`portable()` first turns a
stop-word file into the words themselves). The steps, in order: split, `lower`, `strip_punct`
(tokens with no letter, digit or underscore: punctuation and symbols), `stopwords` (case-insensitive), lemmatize or stem,
and last the corpus-specific `corpus_stop_words` (the corpus's most frequent final tokens).

NLTK's stop-word lists and WordNet are downloadable data, which dltool never downloads: when they
are missing the error names the `python -m nltk.downloader` command. Without NLTK's stop words,
`--stopwords english` uses scikit-learn's English list instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.text.corpus import CorpusSpec, Document, read_documents, rereadable

TOKENIZERS = ("regex", "treebank", "wordpunct", "whitespace")
STEMMERS = ("porter", "snowball")
# words with inner apostrophes or hyphens ("don't", "well-known"), or a run of punctuation
REGEX_PATTERN = r"\w+(?:['’\-]\w+)*|[^\w\s]+"


@dataclass(frozen=True)
class TokenizerConfig:
    tokenizer: str = "regex"
    lower: bool = False
    strip_punct: bool = False
    stopwords: str | None = None                 # a language of NLTK's lists, or a file of words
    stop_words: tuple[str, ...] = ()             # explicit stop words (what `portable()` resolves to)
    stem: str | None = None
    language: str = "english"
    lemmatize: bool = False
    corpus_stop_words: tuple[str, ...] = ()      # dropped after stemming: the corpus's most frequent

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise unknown_name("--tokenizer", self.tokenizer, TOKENIZERS)
        if self.stem is not None and self.stem not in STEMMERS:
            raise unknown_name("--stem", self.stem, STEMMERS)
        if self.stem and self.lemmatize:
            raise OptionError("--stem and --lemmatize both reduce words to a base form", "choose one of them")
        if self.stem == "porter" and self.language != "english":
            raise OptionError(f"--stem porter is for English, not --language {self.language}",
                              "use --stem snowball for other languages")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> TokenizerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"tokenizer settings have unknown keys: {', '.join(sorted(unknown))}",
                             "the file was written by a newer dltool; upgrade dltool")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def portable(self) -> TokenizerConfig:
        """The same settings with `stopwords` resolved into `stop_words`: no file or NLTK data needed later."""
        if self.stopwords is None:
            return self
        words = sorted(set(load_stopwords(self.stopwords)) | set(self.stop_words))
        return dataclasses.replace(self, stopwords=None, stop_words=tuple(words))


def _nltk_data_missing(what: str, package: str) -> OptionError:
    return OptionError(f"{what} needs NLTK's '{package}' data, which is not installed",
                       f"run `python -m nltk.downloader {package}` (or pass a file of stop words)"
                       if package == "stopwords" else f"run `python -m nltk.downloader {package}`")


def load_stopwords(name: str) -> list[str]:
    """A stop-word list: a file (one word a line), NLTK's list for a language, or scikit-learn's English."""
    path = Path(name)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"--stopwords {name}: the file is not UTF-8 text", "save it as UTF-8") from None
        return [w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#")]
    if any(sep in name for sep in "/\\") or path.suffix:
        raise InputError(f"--stopwords file '{name}' does not exist", "check the path, or name a language")
    from nltk.corpus import stopwords

    language = name.lower()
    try:
        languages = stopwords.fileids()
    except LookupError:
        if language == "english":
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            return sorted(ENGLISH_STOP_WORDS)
        raise _nltk_data_missing(f"--stopwords {name}", "stopwords") from None
    if language not in languages:
        raise unknown_name("--stopwords language", name, languages)
    return stopwords.words(language)


def _splitter(name: str) -> Callable[[str], list[str]]:
    if name == "whitespace":
        # NLTK's WhitespaceTokenizer splits on runs of whitespace, which is str.split(); this saves
        # the commands that read tokenized text (the default) the second NLTK takes to import
        return str.split
    if name == "regex":
        # what NLTK's RegexpTokenizer(REGEX_PATTERN) does (3.10 compiles it with the `regex` engine, whose \w
        # keeps a word's combining marks: Devanagari stays whole, where `re` splits it), without the 1.3 s
        # of importing NLTK that every text command paid, nor the per-match timeout NLTK wraps around
        # patterns users give (3.5 times slower; this one cannot backtrack badly)
        import regex

        return regex.compile(REGEX_PATTERN, regex.UNICODE | regex.MULTILINE | regex.DOTALL).findall
    from nltk.tokenize import TreebankWordTokenizer, WordPunctTokenizer

    return {"treebank": TreebankWordTokenizer, "wordpunct": WordPunctTokenizer}[name]().tokenize


_PUNCT = re.compile(r"[^\w\s]+")  # no letter, digit or underscore: punctuation and symbols


def _is_punct(token: str) -> bool:
    return _PUNCT.fullmatch(token) is not None


def _base_form(config: TokenizerConfig) -> Callable[[str], str] | None:
    if config.lemmatize:
        from nltk.corpus import wordnet
        from nltk.stem import WordNetLemmatizer

        try:
            wordnet.ensure_loaded()
        except LookupError:
            raise _nltk_data_missing("--lemmatize", "wordnet") from None
        return WordNetLemmatizer().lemmatize
    if config.stem == "porter":
        from nltk.stem import PorterStemmer

        return PorterStemmer().stem
    if config.stem == "snowball":
        from nltk.stem import SnowballStemmer

        if config.language not in SnowballStemmer.languages:
            raise unknown_name("--language", config.language, SnowballStemmer.languages)
        return SnowballStemmer(config.language).stem
    return None


class Tokenizer:
    """Callable: a Document (or a string) -> its list of tokens, following a TokenizerConfig."""

    def __init__(self, config: TokenizerConfig):
        self.config = config
        self._split = _splitter(config.tokenizer)
        self._stop = frozenset(w.lower() for w in (load_stopwords(config.stopwords) if config.stopwords else ())) \
            | frozenset(w.lower() for w in config.stop_words)
        self._base = _base_form(config)
        self._drop = frozenset(config.corpus_stop_words)

    def __call__(self, doc: Document | str) -> list[str]:
        if isinstance(doc, str):
            tokens = self._split(doc)
        elif doc.tokens is not None:  # already tokenized upstream: only normalise
            tokens = list(doc.tokens)
        else:
            tokens = self._split(doc.text)
        c = self.config
        if c.lower:
            tokens = [t.lower() for t in tokens]
        if c.strip_punct:
            tokens = [t for t in tokens if not _is_punct(t)]
        if self._stop:
            tokens = [t for t in tokens if t.lower() not in self._stop]
        if self._base is not None:
            tokens = [self._base(t) for t in tokens]
        if self._drop:
            tokens = [t for t in tokens if t not in self._drop]
        return tokens


def tokenized(spec: CorpusSpec, tokenizer: Tokenizer) -> Iterator[tuple[Document, list[str]]]:
    """(document, tokens) for every document, streamed."""
    for doc in read_documents(spec):
        yield doc, tokenizer(doc)


@dataclass
class FrequencyCounter:
    """Token counts and document frequencies, for --stats and --corpus-stopwords."""

    count: Counter = field(default_factory=Counter)
    doc_freq: Counter = field(default_factory=Counter)
    documents: int = 0

    def add(self, tokens: list[str]) -> None:
        self.count.update(tokens)
        self.doc_freq.update(set(tokens))
        self.documents += 1

    def records(self) -> Iterator[dict]:
        """Most frequent first; ties in token order, so the table is the same on every run."""
        for token, n in sorted(self.count.items(), key=lambda kv: (-kv[1], kv[0])):
            yield {"token": token, "count": n, "document_frequency": self.doc_freq[token]}


@dataclass(frozen=True)
class TokenizeConfig:
    corpus: CorpusSpec
    tokenizer: TokenizerConfig
    corpus_stopwords: int = 0       # drop the corpus's N most frequent tokens (a first pass counts them)
    output_format: str = "text"     # text: space-joined tokens a line (fastText labels kept); jsonl
    with_stats: bool = False

    def __post_init__(self):
        if self.corpus_stopwords < 0:
            raise OptionError(f"--corpus-stopwords {self.corpus_stopwords} is negative",
                              "give how many of the most frequent words to drop (0: none)")
        if self.output_format not in ("text", "jsonl"):
            raise unknown_name("--format", self.output_format, ("text", "jsonl"))


def most_frequent(spec: CorpusSpec, tokenizer: Tokenizer, n: int) -> tuple[str, ...]:
    counts = FrequencyCounter()
    for _, tokens in tokenized(spec, tokenizer):
        counts.add(tokens)
    return tuple(r["token"] for _, r in zip(range(n), counts.records()))


def format_document(doc: Document, tokens: list[str], output_format: str) -> str:
    if output_format == "jsonl":
        return json.dumps({"id": doc.id, **doc.fields, "tokens": tokens}, ensure_ascii=False)
    label = doc.fields.get("label")
    prefix = "".join(f"__label__{x} " for x in str(label).split()) if label not in (None, "") else ""
    return prefix + " ".join(tokens)


def tokenize(config: TokenizeConfig, write_line: Callable[[str], None]) -> FrequencyCounter | None:
    """Stream every document's tokens to `write_line`; return the frequency table when asked for.

    Only the vocabulary is held in memory (for --stats and --corpus-stopwords), never the documents.
    """
    settings = config.tokenizer
    # two passes need input that can be read twice; one pass streams stdin as it comes
    reread = rereadable(config.corpus) if config.corpus_stopwords else contextlib.nullcontext(config.corpus)
    with reread as spec:
        if config.corpus_stopwords:
            dropped = most_frequent(spec, Tokenizer(settings), config.corpus_stopwords)
            settings = dataclasses.replace(settings, corpus_stop_words=dropped)
        tokenizer = Tokenizer(settings)
        stats = FrequencyCounter() if config.with_stats else None
        for doc, tokens in tokenized(spec, tokenizer):
            if stats is not None:
                stats.add(tokens)
            write_line(format_document(doc, tokens, config.output_format))
    return stats


def stats_table(counts: FrequencyCounter):
    """The frequency table as a feature table (token passes through; count, document_frequency numeric)."""
    import numpy as np

    from dltool.core.tables import Table

    records = list(counts.records())
    return Table({"token": np.array([r["token"] for r in records], dtype=object),
                  "count": np.array([r["count"] for r in records], dtype=np.int64),
                  "document_frequency": np.array([r["document_frequency"] for r in records], dtype=np.int64)})
