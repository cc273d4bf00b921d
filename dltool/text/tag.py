"""Sequence tagging (`text tag train|eval|predict`): a tag for every token (part of speech, named
entities, chunks), on the shared engine.

Data: CoNLL-U, CoNLL columns or JSON Lines (dltool.text.conll). The networks (dltool.text.models.tagger)
read word ids from a vocabulary of the training words (words seen fewer than `min_count` times become
UNK, so UNK is trained for the words test data brings) and the characters of each word; both, and the
tag set, travel in the model file as plain data.

eval: token accuracy (tags the model never saw count as errors, and are listed), accuracy on words
outside the vocabulary, a per-tag table and confusion matrix (sklearn.metrics), and for BIO/BIOES tags
entity precision/recall/F1, overall and per type, by seqeval (conlleval's chunking).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dltool.core import run as runs
from dltool.core.applies import Applies
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.modelfile import LoadedModel, load_model
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, check_batch_size, recipe
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.text.conll import (
    Sentences,
    check_column,
    entity_spans,
    file_format,
    is_bio,
    read_raw,
    read_tagged,
)
from dltool.text.models.tagger import PAD, TAGGERS

TASK = "text-tag"
UNK = 1
SPECIALS = ("[PAD]", "[UNK]")
MAX_WORD_CHARS = 20  # characters of a word the character CNN reads (longer words: their first 20)
ARCH_OPTIONS = ("embed_dim", "hidden", "layers", "heads", "char_dim", "dropout")
# a BERT folder brings its own tokenizer: the word-vocabulary options are refused with it, and --pretrained
# with any other model
MODEL_OPTIONS = Applies("model", takes={"bert": ("pretrained",)}, otherwise=("lower", "min_count"))
PREDICT_FORMATS = ("text", "conllu", "conll", "jsonl")


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    engine: EngineConfig
    model: str = "bilstm-crf"
    input_format: str = "auto"
    column: str | None = None
    encoding: str = "utf-8"
    lower: bool = True                  # words looked up lower-cased (the characters keep their case)
    min_count: int = 2                  # rarer training words become UNK
    embed_dim: int | None = None
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    char_dim: int | None = None         # 0: no character features
    dropout: float | None = None
    pretrained: Path | None = None      # --model bert: a local Hugging Face BERT folder
    run: RunConfig = RunConfig()
    given: frozenset[str] | None = None
    options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.model not in TAGGERS:
            raise unknown_name("model", self.model, TAGGERS.names())
        MODEL_OPTIONS.check(self)
        fmt = file_format(self.data, self.input_format)
        check_column(fmt, self.column)
        if self.run.val is not None:
            check_column(file_format(self.run.val, self.input_format), self.column)
        if self.min_count < 1:
            raise OptionError(f"--min-count {self.min_count} must be at least 1")
        self.engine.validate()
        arch_options(self, TAGGERS, ARCH_OPTIONS)
        for name in ("embed_dim", "hidden", "layers", "heads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if self.char_dim is not None and self.char_dim < 0:
            raise OptionError(f"--char-dim {self.char_dim} must be >= 0 (0: no character features)")
        if self.model == "bert" and self.pretrained is None:
            raise OptionError("--model bert fine-tunes a Hugging Face BERT folder: it needs --pretrained DIR",
                              "pass --pretrained DIR (config.json, weights, vocab.txt), or use bilstm-crf")


# -- vocabulary ---------------------------------------------------------------------------------

class WordVocab:
    """Words and characters -> ids (PAD 0, UNK 1); plain data in the model file (`to_dict`)."""

    def __init__(self, words: list[str], chars: list[str], lower: bool):
        self.words, self.chars, self.lower = list(words), list(chars), lower
        self._w = {w: i for i, w in enumerate(self.words)}
        self._c = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def build(cls, sentences: list[list[str]], lower: bool, min_count: int) -> WordVocab:
        counts = Counter(w.lower() if lower else w for s in sentences for w in s)
        words = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        chars = sorted({c for s in sentences for w in s for c in w[:MAX_WORD_CHARS]})
        return cls([*SPECIALS, *words], [*SPECIALS, *chars], lower)

    def word_id(self, word: str) -> int:
        return self._w.get(word.lower() if self.lower else word, UNK)

    def encode(self, sentences: list[list[str]]):
        """(word ids (S, L), lengths (S,), character ids (S, L, C)) padded with PAD."""
        lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        n_tok = int(lengths.max()) if len(sentences) else 1
        n_chr = max((min(len(w), MAX_WORD_CHARS) for s in sentences for w in s), default=1)
        words = torch.zeros(len(sentences), n_tok, dtype=torch.long)
        chars = torch.zeros(len(sentences), n_tok, n_chr, dtype=torch.long)
        for i, s in enumerate(sentences):
            words[i, :len(s)] = torch.tensor([self.word_id(w) for w in s])
            for j, w in enumerate(s):
                ids = [self._c.get(c, UNK) for c in w[:MAX_WORD_CHARS]] or [UNK]
                chars[i, j, :len(ids)] = torch.tensor(ids)
        return words, lengths, chars

    def to_dict(self) -> dict:
        return {"kind": "word", "words": self.words, "chars": self.chars, "lower": self.lower}

    @classmethod
    def from_dict(cls, d: dict) -> WordVocab:
        return cls(d["words"], d["chars"], d["lower"])


class PieceVocab:
    """A BERT folder's word-piece tokenizer over pre-split words: (piece ids (S, P) with [CLS] ... [SEP],
    word counts (S,), each word's first piece position (S, L)); plain data in the model file."""

    def __init__(self, tokenizer_json: str, max_len: int):
        from tokenizers import Tokenizer

        self.tokenizer_json, self.max_len = tokenizer_json, max_len
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_padding()
        self._tok.no_truncation()
        self._unk = self._tok.token_to_id("[UNK]")

    def word_id(self, word: str) -> int:
        """UNK for a word the folder's vocabulary holds no single piece for."""
        ids = self._tok.encode([word], is_pretokenized=True, add_special_tokens=False).ids
        return ids[0] if len(ids) == 1 and ids[0] != self._unk else UNK

    def encode(self, sentences: list[list[str]]):
        encoded = [self._tok.encode(s, is_pretokenized=True) for s in sentences]
        longest = max((len(e.ids) for e in encoded), default=1)
        if longest > self.max_len:
            i = next(i for i, e in enumerate(encoded) if len(e.ids) == longest)
            raise InputError(f"sentence {i + 1} has {longest} word pieces, more than the model's {self.max_len} "
                             "positions", "split long sentences")
        lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        pieces = torch.zeros(len(sentences), longest, dtype=torch.long)  # [PAD] is id 0 in BERT vocabularies
        first = torch.zeros(len(sentences), max(1, int(lengths.max()) if len(sentences) else 1), dtype=torch.long)
        for i, e in enumerate(encoded):
            pieces[i, :len(e.ids)] = torch.tensor(e.ids)
            seen = {}
            for pos, w in enumerate(e.word_ids):
                if w is not None and w not in seen:
                    seen[w] = pos
            # a word the normaliser emptied has no piece: it reads [CLS]'s state (position 0)
            first[i, :len(sentences[i])] = torch.tensor([seen.get(j, 0) for j in range(len(sentences[i]))])
        return pieces, lengths, first

    def to_dict(self) -> dict:
        return {"kind": "hf", "tokenizer_json": self.tokenizer_json, "max_len": self.max_len}


def vocab_from_dict(d: dict):
    return PieceVocab(d["tokenizer_json"], d["max_len"]) if d.get("kind") == "hf" else WordVocab.from_dict(d)


# -- the task the engine trains -------------------------------------------------------------------

def _trim(batch):
    """Drop the padding columns no sentence of this batch reaches: of the ids (words, or a BERT's word pieces,
    PAD only after the end) and of the per-word tensors (characters or first pieces, tags)."""
    ids, lengths, per_word, *rest = batch
    n, width = int(lengths.max()), int((ids != PAD).sum(1).max())
    return (ids[:, :width], lengths, per_word[:, :n], *(t[:, :n] for t in rest))


class TagTask(TaskHooks):
    name = TASK
    monitor = "accuracy"
    monitor_mode = "max"
    channels_last = False

    def __init__(self, arch: str, arch_kwargs: dict, tags: list[str], vocab: WordVocab, preprocess: dict, device):
        self.arch, self.arch_kwargs, self.tags, self.vocab = arch, arch_kwargs, list(tags), vocab
        self.preprocess, self.device = preprocess, device

    def loss(self, model, batch):
        words, lengths, chars, tags = _trim(batch)
        return model(words, lengths, chars, tags)

    def evaluate(self, model, batches) -> dict:
        loss_sum, correct, n = 0.0, 0, 0
        for batch in batches:
            words, lengths, chars, tags = _trim(batch)
            emissions = model(words, lengths, chars)
            k = int(lengths.sum())
            loss_sum += float(model.loss(emissions, tags, lengths)) * k
            for row, best, m in zip(tags.tolist(), model.decode(emissions, lengths), lengths.tolist()):
                correct += sum(a == b for a, b in zip(row[:m], best))
            n += k
        return {"loss": loss_sum / n, "accuracy": correct / n, "tokens": n}

    def combine_metrics(self, parts: list[tuple[dict, int]]) -> dict:
        """Means over tokens, not sentences: each rank's figures weighted by its token count."""
        total = sum(m["tokens"] for m, _ in parts)
        return {"loss": sum(m["loss"] * m["tokens"] for m, _ in parts) / total,
                "accuracy": sum(m["accuracy"] * m["tokens"] for m, _ in parts) / total, "tokens": total}

    def payload(self, model) -> dict:
        return {"task": self.name, "arch": self.arch, "arch_kwargs": self.arch_kwargs,
                "state_dict": model.state_dict(), "classes": self.tags, "preprocess": self.preprocess}


def _tensors(vocab, data: Sentences, tags: list[str], device):
    words, lengths, chars = vocab.encode(data.tokens)
    index = {t: i for i, t in enumerate(tags)}
    y = torch.zeros(len(data), int(lengths.max()), dtype=torch.long)
    for i, sent in enumerate(data.tags):
        y[i, :len(sent)] = torch.tensor([index[t] for t in sent])
    return tuple(t.to(device) for t in (words, lengths, chars, y))


def _split(cfg: TrainConfig, data: Sentences):
    if cfg.run.val is not None:
        return data, read_tagged(cfg.run.val, cfg.input_format, cfg.column, encoding=cfg.encoding)
    if cfg.run.val_split == 0:
        return data, None
    n_val = max(1, round(len(data) * cfg.run.val_split))
    if n_val >= len(data):
        raise InputError(f"'{cfg.data}' has {len(data)} sentence(s): too few to hold {n_val} out for validation",
                         "add sentences, or pass --val-split 0")
    order = np.random.default_rng(cfg.engine.seed).permutation(len(data))
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def train(cfg: TrainConfig) -> dict:
    from dltool.core.data import TensorBatches

    cfg.validate()
    data = read_tagged(cfg.data, cfg.input_format, cfg.column, encoding=cfg.encoding)
    device, run_dir = runs.start(cfg, TASK)
    tr, va = _split(cfg, data)
    # the tags of the validation data too: a rare tag held out by the split is still a tag the model has
    tags = sorted({t for part in (tr, va) if part is not None for s in part.tags for t in s})
    engine_cfg = cfg.engine
    if cfg.pretrained is not None:
        from dataclasses import replace

        from dltool.core.train import init_weights
        from dltool.text.models.bert_hf import read_folder

        folder = read_folder(cfg.pretrained)
        vocab = PieceVocab(folder.tokenizer_json, folder.config["max_position_embeddings"])
        arch_kwargs = {"config": folder.config, "num_tags": len(tags)}
        model = TAGGERS.create(cfg.model, **arch_kwargs)
        init_weights(model, cfg.engine.init)  # --init for the fresh head, then the folder's weights
        model.bert.load_state_dict({k: v for k, v in folder.state_dict.items() if not k.startswith("pooler.")})
        engine_cfg = replace(cfg.engine, init="default")  # applied already: the engine must not redo it
        info(f"pretrained: BERT of width {folder.config['hidden_size']} from {cfg.pretrained}")
    else:
        vocab = WordVocab.build(tr.tokens, cfg.lower, cfg.min_count)
        arch_kwargs = {"vocab_size": len(vocab.words), "num_tags": len(tags), "n_chars": len(vocab.chars),
                       **{o: getattr(cfg, o) for o in ARCH_OPTIONS if getattr(cfg, o) is not None}}
        model = TAGGERS.create(cfg.model, **arch_kwargs)
    fmt = file_format(cfg.data, cfg.input_format)
    preprocess = {"vocab": vocab.to_dict(), "format": fmt, "column": cfg.column,
                  "bio": is_bio(tags)}
    n_tokens = sum(len(s) for s in tr.tokens)
    sizes = (f"{len(vocab.words) - 2} words, {len(vocab.chars) - 2} characters" if isinstance(vocab, WordVocab)
             else "the folder's word pieces")
    info(f"data: {len(tr)} training sentences ({n_tokens} tokens), {0 if va is None else len(va)} validation, "
         f"{len(tags)} tags, {sizes}, on {device.type}")
    batch_size = cfg.run.batch_size
    train_batches = TensorBatches(_tensors(vocab, tr, tags, device), batch_size, shuffle=True, seed=cfg.engine.seed)
    val_batches = (TensorBatches(_tensors(vocab, va, tags, device), max(256, batch_size), shuffle=False)
                   if va is not None else None)
    task = TagTask(cfg.model, arch_kwargs, tags, vocab, preprocess, device)
    from dltool.core.threads import single_thread_below

    dense = sum(p.numel() for name, p in model.named_parameters() if p.dim() > 1 and "embedding" not in name)
    with single_thread_below(device, int(batch_size * n_tokens / max(1, len(tr)) * dense)):
        return Engine(task, model, engine_cfg, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)



# -- inference ----------------------------------------------------------------------------------

def load(path, device="auto") -> LoadedModel:
    def make_task(ck, dev):
        return TagTask(ck["arch"], ck["arch_kwargs"], ck["classes"], vocab_from_dict(ck["preprocess"]["vocab"]),
                       ck["preprocess"], dev)

    return load_model(path, task=TASK, registry=TAGGERS, device=device, make_task=make_task)


def tag_sentences(lm: LoadedModel, sentences: list[list[str]], batch_size: int, scores: bool = False):
    """The best tag sequence of every sentence (tag names), and with `scores` each chosen tag's probability
    (the CRF's marginal, or the softmax)."""
    task, model = lm.task, lm.model
    out_tags, out_scores = [], []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            words, lengths, chars = (t.to(lm.device) for t in task.vocab.encode(sentences[start:start + batch_size]))
            emissions = model(words, lengths, chars)
            best = model.decode(emissions, lengths)
            out_tags += [[task.tags[i] for i in row] for row in best]
            if scores:
                probs = model.marginals(emissions, lengths).cpu()
                out_scores += [[round(float(probs[i, j, k]), 6) for j, k in enumerate(row)]
                               for i, row in enumerate(best)]
    return out_tags, out_scores


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    data: Path
    input_format: str = "auto"
    column: str | None = None           # None: the column the model was trained on
    encoding: str = "utf-8"
    out: Path | None = None
    batch_size: int = 256
    device: str = "auto"


def evaluate(cfg: EvalConfig) -> dict:
    from dltool.core.classification import (
        classification_metrics,
        evaluation_title,
        report_evaluation,
    )

    check_batch_size(cfg.batch_size)
    fmt = file_format(cfg.data, cfg.input_format)
    check_column(fmt, cfg.column)
    lm = load(cfg.model, cfg.device)
    trained = lm.preprocess
    column = cfg.column if cfg.column is not None or fmt != trained.get("format") else trained.get("column")
    data = read_tagged(cfg.data, fmt, column, encoding=cfg.encoding)
    predicted, _ = tag_sentences(lm, data.tokens, cfg.batch_size)
    true = [t for s in data.tags for t in s]
    pred = [t for s in predicted for t in s]
    known = set(lm.classes)
    unseen = Counter(t for t in true if t not in known)
    names = lm.classes + sorted(unseen)  # a tag never seen in training: a row of its own, never predicted
    index = {t: i for i, t in enumerate(names)}
    metrics = classification_metrics([index[t] for t in true], [index[t] for t in pred], names)
    oov = [a == b for s, ts, ps in zip(data.tokens, data.tags, predicted) for w, a, b in zip(s, ts, ps)
           if lm.task.vocab.word_id(w) == UNK]
    metrics.update(n=len(true), sentences=len(data), unseen_tags=dict(sorted(unseen.items())),
                   oov_tokens=len(oov), oov_accuracy=float(np.mean(oov)) if oov else None)
    if lm.preprocess.get("bio") or is_bio(set(true)):
        metrics["entities"] = entity_metrics(data.tags, predicted)
    if unseen:
        info(f"{sum(unseen.values())} tokens carry tags the model was never trained on "
             f"({', '.join(sorted(unseen)[:5])}): counted as errors")
    report_evaluation(metrics, cfg.out, title=evaluation_title(lm, cfg.model, cfg.data, metrics))
    return metrics


def entity_metrics(true: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (micro over entities) and per type, by seqeval."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    report = classification_report(true, pred, output_dict=True, zero_division=0)
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])} for k, v in report.items() if not k.endswith(" avg")}
    return {"precision": float(precision_score(true, pred, zero_division=0)),
            "recall": float(recall_score(true, pred, zero_division=0)),
            "f1": float(f1_score(true, pred, zero_division=0)), "per_type": per_type}


@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    input_format: str = "auto"          # auto: .conllu, .jsonl, .conll/.tsv/.iob/.bio by suffix, else raw text
    tokenizer: str = "regex"            # raw text: dltool text tokenize's tokenizer
    encoding: str = "utf-8"
    entities: bool = False
    batch_size: int = 256
    device: str = "auto"

    def validate(self) -> None:
        check_batch_size(self.batch_size)
        if self.input_format not in ("auto", *PREDICT_FORMATS):
            raise unknown_name("--input-format", self.input_format, ("auto", *PREDICT_FORMATS))


COLUMN_SUFFIXES = (".conll", ".tsv", ".iob", ".bio", ".bioes")


def _predict_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in COLUMN_SUFFIXES:
        return "conll"
    return {".conllu": "conllu", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "text")


def predict(cfg: PredictConfig) -> list[dict]:
    """One record a sentence, in input order: {id, (path,) tokens, tags, scores (, entities)}."""
    from dltool.text.tokenize import Tokenizer, TokenizerConfig

    cfg.validate()
    lm = load(cfg.model, cfg.device)
    if cfg.entities and not lm.preprocess.get("bio"):
        raise OptionError("--entities needs a model trained on BIO/BIOES tags (B-PER, I-PER, O, ...)",
                          f"this model's tags are {', '.join(lm.classes[:8])}")
    split = Tokenizer(TokenizerConfig(tokenizer=cfg.tokenizer))
    records = []
    for path in cfg.inputs:
        fmt = _predict_format(path, cfg.input_format)
        sents = (read_raw(path, split, cfg.encoding) if fmt == "text"
                 else read_tagged(path, fmt, tagged=False, encoding=cfg.encoding))
        tags, scores = tag_sentences(lm, sents.tokens, cfg.batch_size, scores=True)
        for sid, tokens, t, s in zip(sents.ids, sents.tokens, tags, scores):
            rec = {"id": sid, **({"path": path} if len(cfg.inputs) > 1 else {}), "tokens": tokens, "tags": t,
                   "scores": s}
            if cfg.entities:
                rec["entities"] = entity_spans(tokens, t)
            records.append(rec)
    return records
