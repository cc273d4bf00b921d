"""Token ids for the neural text models: a word vocabulary, or a subword one (WordPiece or BPE, trained
with Hugging Face's `tokenizers` on the training texts).

Either way the text first goes through dltool's own tokenizer (`dltool.text.tokenize`: its split,
lower-casing, stop words, stemming...); a subword vocabulary then splits those words further. The
`Vocab` is plain data (`to_dict`/`from_dict`: the token list, the tokenizer settings and, for subwords,
the `tokenizers` JSON), so a model file carries it and `predict` encodes raw text exactly as training did.

Ids 0-3 are the special tokens PAD, UNK, CLS (prefixed to every sequence: BERT pools it) and MASK
(masked-language-model pretraining).

A third kind, `hf`, is a pretrained model's own tokenizer (a Hugging Face folder's tokenizer.json, see
`Vocab.from_hf`): it takes the raw text whole (its normalizer lower-cases or not, as the folder says), so
dltool's tokenizer settings do not apply, and its ids are the folder's ([CLS] text [SEP], its own ids).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name
from dltool.text.tokenize import Tokenizer, TokenizerConfig

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[MASK]")
PAD, UNK, CLS, MASK = range(4)
KINDS = ("word", "wordpiece", "bpe")


def drop_words(ids, p: float, droppable, unknown: int):
    """Word dropout (Iyyer et al. 2015; Bowman et al. 2016): `ids` (a tensor) with each token where `droppable`
    is true replaced by the `unknown` id with probability p. The classifiers and the language models train so."""
    import torch

    drop = (torch.rand(ids.shape, device=ids.device) < p) & droppable
    return ids.masked_fill(drop, unknown)


@dataclass(frozen=True)
class VocabConfig:
    kind: str = "word"                 # word | wordpiece | bpe
    size: int = 20_000                 # most tokens kept (subwords: the trained vocabulary's size)
    min_count: int = 1                 # words: drop rarer ones (they become UNK)
    max_len: int = 128                 # tokens per text, CLS included; longer texts are cut

    def __post_init__(self):
        if self.kind not in KINDS:
            raise unknown_name("--vocab", self.kind, KINDS)
        if self.size <= len(SPECIALS):
            raise OptionError(f"vocabulary size {self.size} must be more than the {len(SPECIALS)} special tokens")
        if self.min_count < 1:
            raise OptionError(f"--min-count {self.min_count} must be at least 1")
        if self.max_len < 2:
            raise OptionError(f"--max-len {self.max_len} must be at least 2 (CLS and one token)")


class Vocab:
    """Text -> ids with the settings it was built with; build with `Vocab.build`, restore with `from_dict`."""

    def __init__(self, kind: str, tokens: list[str], tokenizer: TokenizerConfig | None, max_len: int,
                 subword_json: str | None = None):
        self.kind, self.tokens, self.tokenizer_config, self.max_len = kind, list(tokens), tokenizer, max_len
        self.subword_json = subword_json
        self._split = Tokenizer(tokenizer) if tokenizer is not None else None  # None: the `hf` kind
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self._subword = None
        if subword_json is not None:
            from tokenizers import Tokenizer as HFTokenizer

            self._subword = HFTokenizer.from_str(subword_json)
            if kind == "hf":  # the folder's [CLS] ... [SEP] template, cut to max_len with both kept
                self._subword.no_padding()
                self._subword.enable_truncation(max_len)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, texts: list[str], tokenizer: TokenizerConfig, cfg: VocabConfig) -> Vocab:
        tokenizer = tokenizer.portable()  # stop words as words: the model file needs no file or NLTK data
        split = Tokenizer(tokenizer)
        words = [split(t) for t in texts]
        if cfg.kind == "word":
            counts = Counter(w for doc in words for w in doc)
            # most frequent first, ties alphabetical: the same vocabulary on every run
            kept = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= cfg.min_count]
            tokens = list(SPECIALS) + kept[: cfg.size - len(SPECIALS)]
            if len(tokens) == len(SPECIALS):
                raise InputError("the training texts have no token to build a vocabulary from",
                                 "check the text column and the tokenizer options")
            return cls("word", tokens, tokenizer, cfg.max_len)
        hf = _train_subwords(cfg, (" ".join(doc) for doc in words))
        vocab = hf.get_vocab()
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        return cls(cfg.kind, tokens, tokenizer, cfg.max_len, hf.to_str())

    @classmethod
    def from_hf(cls, tokenizer_json: str, max_len: int) -> Vocab:
        """A pretrained model's own tokenizer, from its `tokenizers` JSON (a Hugging Face folder's)."""
        from tokenizers import Tokenizer as HFTokenizer

        vocab = HFTokenizer.from_str(tokenizer_json).get_vocab()
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        return cls("hf", tokens, None, max_len, tokenizer_json)

    def words(self, text: str) -> list[str]:
        """The tokens of one text (dltool's tokenizer, then the subword split)."""
        if self._split is None:
            return self._subword.encode(text).tokens
        words = self._split(text)
        if self._subword is None:
            return words
        return self._subword.encode(words, is_pretokenized=True).tokens if words else []

    def encode(self, text: str) -> list[int]:
        """CLS, then the text's token ids (UNK for unknown ones), cut to max_len."""
        if self._split is None:
            return self._subword.encode(text).ids
        if self._subword is not None:
            words = self._split(text)
            ids = self._subword.encode(words, is_pretokenized=True).ids if words else []
        else:
            ids = [self._index.get(w, UNK) for w in self._split(text)]
        return [CLS] + ids[: self.max_len - 1]

    def encode_batch(self, texts: Iterable[str]):
        """(ids (N, L) long padded with PAD, lengths (N,) long), L the longest encoded text. (The `hf`
        kind's padding id may differ from PAD; no model reads padding: the lengths mask it out.)"""
        import torch

        seqs = [self.encode(t) for t in texts]
        width = max((len(s) for s in seqs), default=1)
        ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return ids, torch.tensor([len(s) for s in seqs], dtype=torch.long)

    def to_dict(self) -> dict:
        tokenizer = self.tokenizer_config.to_dict() if self.tokenizer_config is not None else None
        return {"kind": self.kind, "tokens": self.tokens, "tokenizer": tokenizer,
                "max_len": self.max_len, "subword_json": self.subword_json}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        try:
            tokenizer = TokenizerConfig.from_dict(data["tokenizer"]) if data["tokenizer"] is not None else None
            return cls(data["kind"], data["tokens"], tokenizer, data["max_len"], data.get("subword_json"))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"the model file's vocabulary is incomplete ({e})",
                                 "retrain the model with this dltool") from None


def _train_subwords(cfg: VocabConfig, texts):
    """A WordPiece or BPE tokenizer trained on the (already word-tokenized, space-joined) texts."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if cfg.kind == "wordpiece":
        hf = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.size, special_tokens=list(SPECIALS), show_progress=False)
        hf.decoder = decoders.WordPiece()
    else:
        hf = HFTokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=cfg.size, special_tokens=list(SPECIALS), show_progress=False)
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # words come from dltool's tokenizer
    hf.train_from_iterator(texts, trainer=trainer)
    return hf
