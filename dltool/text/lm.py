"""Language models that write: train (GPT, RNN/LSTM/GRU, bigram counts), eval (nats per token,
perplexity, bits per character), sample and score (nanoGPT's and makemore's pipelines, as commands).

Data (dltool.text.corpus reads it: text files, stdin, CSV/JSONL with --column) is used one of two ways:
- `lines` (makemore's): each line is one sequence, framed by the boundary token at both ends, so the model
  learns where items start and end; sampling writes whole new lines. Validation: the last lines. The model
  saved is the network and how often new lines repeat training lines (dltool.text.lm_repeats).
- `stream` (nanoGPT's): the corpus is one sequence (a boundary token where each line ends); training
  windows of --context tokens start at random offsets, drawn per epoch from (seed, epoch) so a resumed
  run sees the same windows. Validation: the tail of the token stream, in windows that do not overlap.

Tokens (`LMVocab`, saved in the model file): `char` (every character of the training text; a character it
lacks is refused in a prompt, and read as the unknown token by eval and score), `word` (dltool.text.vocab's
word vocabulary and tokenizer; decoded with spaces between words), `bpe` (a byte-level BPE trained on the
training text with Hugging Face's `tokenizers`, as GPT-2's), or a --pretrained folder's own tokenizer.

Bits per character = the nats of every predicted token / ln 2 / the characters those tokens spell (a word
counts the space after it, the boundary token its newline), so figures compare across vocabularies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from dltool.core import run as runs
from dltool.core.applies import Applies, check_range, given_fields
from dltool.core.console import info, warn
from dltool.core.data import EpochBatches
from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name
from dltool.core.modelfile import LoadedModel, load_model, save_model
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, check_batch_size
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.text.corpus import CorpusSpec, read_documents
from dltool.text.lm_repeats import Repeats, complete_lines, line_logprobs
from dltool.text.models.lm import LM_MODELS
from dltool.text.vocab import drop_words

TASK = "text-lm"
MODES = ("lines", "stream")
VOCABS = ("char", "word", "bpe")
MODEL_NAMES = tuple(LM_MODELS.names())
ARCH_OPTIONS = ("dim", "heads", "layers", "hidden", "dropout")
#: what a --pretrained folder brings itself: refused when given
FOLDER_SETS = ("vocab", "vocab_size", "init", "word_dropout", *ARCH_OPTIONS)
BOUNDARY, UNKNOWN = "<s>", "<unk>"
#: the vocabularies with an unknown token (id 1), which --word-dropout puts in place of a token
UNKNOWN_VOCABS = ("char", "word")
#: --context in stream mode when not given; in lines mode the longest line sets it
STREAM_CONTEXT = 128

# what --model bigram (counting, no gradient) uses of the engine's and the run's options: the rest would do
# nothing, so giving one is refused
_BIGRAM_USES = ("val_split", "val", "out", "force", "device")
_TRAINED_ONLY = (*(f.name for f in fields(EngineConfig) if f.compare and f.name not in _BIGRAM_USES),
                 "batch_size", "word_dropout", *ARCH_OPTIONS)
MODEL_OPTIONS = Applies("model", takes={"bigram": ()}, otherwise=_TRAINED_ONLY)


# -- tokens ---------------------------------------------------------------------------------------

class LMVocab:
    """Text <-> token ids for a language model. `boundary` is the id that starts and ends a line (a newline
    in a stream). `char` and `word`: the boundary is 0 and id 1 the unknown token; `char` is one token per
    character, `word` the word vocabulary of dltool.text.vocab (its tokenizer and counts), its own specials
    left out of the model. `bpe`: a byte-level BPE trained on the training text with Hugging Face's
    `tokenizers` (GPT-2's kind: every text encodes, none is unknown); `hf`: a pretrained folder's, its
    end-of-text token the boundary."""

    def __init__(self, kind: str, tokens: list[str], words: dict | None = None, hf_json: str | None = None,
                 boundary: int = 0):
        self.kind, self.tokens, self.boundary = kind, list(tokens), boundary
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self._words = self._hf = None
        if kind == "word":
            from dltool.text.vocab import Vocab

            self._words = Vocab.from_dict(words)
        self.words_dict, self.hf_json = words, hf_json
        if hf_json is not None:
            from tokenizers import Tokenizer

            self._hf = Tokenizer.from_str(hf_json)
            self._hf.no_truncation()
            self._hf.no_padding()
            chars = [len(self._hf.decode([i], skip_special_tokens=False)) for i in range(len(self.tokens))]
            chars[boundary] = 1
            self.token_chars = chars
        else:  # characters each token spells: a word and its space, the boundary its newline
            self.token_chars = [1, 1, *(len(t) + (kind == "word") for t in self.tokens[2:])]

    @classmethod
    def from_hf(cls, tokenizer_json: str, eos: int, kind: str = "hf") -> LMVocab:
        from tokenizers import Tokenizer

        vocab = Tokenizer.from_str(tokenizer_json).get_vocab(with_added_tokens=True)
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        return cls(kind, tokens, hf_json=tokenizer_json, boundary=eos)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, kind: str, texts: list[str], size: int) -> LMVocab:
        if kind == "char":
            chars = sorted({c for t in texts for c in t})
            return cls("char", [BOUNDARY, UNKNOWN, *chars])
        if kind == "bpe":  # GPT-2's kind: byte-level, so every text encodes and decodes exactly
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            tok.train_from_iterator(texts, trainers.BpeTrainer(
                vocab_size=size, special_tokens=[BOUNDARY], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False))
            return cls.from_hf(tok.to_str(), tok.token_to_id(BOUNDARY), kind="bpe")
        from dltool.text.tokenize import TokenizerConfig
        from dltool.text.vocab import SPECIALS, Vocab, VocabConfig

        words = Vocab.build(texts, TokenizerConfig(), VocabConfig(kind="word", size=size + len(SPECIALS) - 2,
                                                                   max_len=10**9))
        return cls("word", [BOUNDARY, UNKNOWN, *words.tokens[len(SPECIALS):]], words.to_dict())

    def split(self, text: str) -> list[str]:
        if self._hf is not None:
            return self._hf.encode(text, add_special_tokens=False).tokens
        return list(text) if self.kind == "char" else self._words.words(text)

    def encode(self, text: str) -> list[int]:
        if self._hf is not None:
            return self._hf.encode(text, add_special_tokens=False).ids
        return [self.index.get(t, 1) for t in self.split(text)]

    def unknown(self, text: str) -> list[str]:
        """The tokens of `text` the vocabulary lacks, each once, in order."""
        if self._hf is not None:
            return []
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.index))

    def decode(self, ids: list[int], boundary: str = "\n") -> str:
        if self._hf is not None:
            pieces, run = [], []
            for i in [*ids, None]:
                if i is None or i == self.boundary:
                    pieces.append(self._hf.decode(run))
                    run = []
                else:
                    run.append(i)
            return boundary.join(pieces)
        parts = [boundary if i == self.boundary else self.tokens[i] for i in ids]
        return "".join(parts) if self.kind == "char" else " ".join(parts)

    def piece(self, i: int, lines: bool) -> str:
        """Token `i` as streamed text (the boundary: a newline in a stream, nothing in lines mode)."""
        if i == self.boundary:
            return "" if lines else "\n"
        if self._hf is not None:
            return self._hf.decode([i])
        return self.tokens[i] if self.kind == "char" else " " + self.tokens[i]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens, "words": self.words_dict, "hf_json": self.hf_json,
                "boundary": self.boundary}

    @classmethod
    def from_dict(cls, data: dict) -> LMVocab:
        try:
            return cls(data["kind"], data["tokens"], data.get("words"), data.get("hf_json"), data.get("boundary", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"the model file's vocabulary is incomplete ({e})") from None


# -- data -----------------------------------------------------------------------------------------

def read_texts(inputs, column: str | None, encoding: str) -> list[str]:
    """The documents of the inputs (one a line, or a table's --column), in order."""
    return [d.text if d.text is not None else " ".join(d.tokens)
            for d in read_documents(CorpusSpec(inputs=tuple(str(i) for i in inputs), column=column, encoding=encoding))]


def line_tensors(vocab: LMVocab, texts: list[str], context: int):
    """`lines` mode: inputs (N, context) = boundary + tokens, targets = tokens + boundary, padded with -1 (no
    loss); a line longer than the context is cut (the count is returned)."""
    x = torch.zeros(len(texts), context, dtype=torch.long)
    y = torch.full((len(texts), context), -1, dtype=torch.long)
    cut = 0
    for i, t in enumerate(texts):
        ids = vocab.encode(t)
        seq = [vocab.boundary, *ids, vocab.boundary]
        if len(seq) - 1 > context:
            seq, cut = seq[:context + 1], cut + 1
        x[i, : len(seq) - 1] = torch.tensor(seq[:-1])
        y[i, : len(seq) - 1] = torch.tensor(seq[1:])
    return x, y, cut


def stream_ids(vocab: LMVocab, texts: list[str]) -> torch.Tensor:
    """`stream` mode: the corpus as one sequence, the boundary token after each line."""
    ids = []
    for t in texts:
        ids += vocab.encode(t)
        ids.append(vocab.boundary)
    return torch.tensor(ids, dtype=torch.long)


def stream_windows(ids: torch.Tensor, context: int):
    """Non-overlapping windows over a token stream (validation, eval): every token after the first is
    predicted once; the last window is padded with -1 targets."""
    n = (len(ids) - 1 + context - 1) // context
    x = torch.zeros(n, context, dtype=torch.long)
    y = torch.full((n, context), -1, dtype=torch.long)
    for i in range(n):
        chunk = ids[i * context: (i + 1) * context + 1]
        x[i, : len(chunk) - 1], y[i, : len(chunk) - 1] = chunk[:-1], chunk[1:]
    return x, y


class WindowBatches(EpochBatches):
    """`stream` mode training batches: each epoch, (len(ids) - 1) // context windows at random offsets drawn
    from (seed, epoch) alone, so a resumed run sees the same windows (nanoGPT's get_batch, made exact)."""

    def __init__(self, ids: torch.Tensor, context: int, batch_size: int, *, seed: int = 0):
        super().__init__(max(1, (len(ids) - 1) // context), batch_size, shuffle=False, seed=seed)
        self.ids, self.context = ids, context
        self._span = torch.arange(context + 1, device=ids.device)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        starts = torch.randint(0, len(self.ids) - self.context, (self.n,), generator=g).to(self.ids.device)
        order = self._order().to(self.ids.device)
        for at in range(self.start_batch * self.batch_size, len(order), self.batch_size):
            windows = self.ids[starts[order[at:at + self.batch_size], None] + self._span]
            yield windows[:, :-1], windows[:, 1:]


class LengthBatches(EpochBatches):
    """`lines` mode training batches of lines of similar length (trimmed to the longest, so little padding is
    computed): each epoch the lines are shuffled from (seed, epoch), sorted by length within pools of 50
    batches, cut into batches, and the batches shuffled. The order depends on (seed, epoch) alone, so a
    resumed run skips exactly the batches it has trained on."""

    POOL = 50

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int = 0):
        super().__init__(len(x), batch_size, shuffle=True, seed=seed)
        self.x, self.y = x, y
        self.lengths = (y >= 0).sum(1).cpu()

    def __iter__(self):
        order = self._order()
        bs, pool = self.batch_size, self.batch_size * self.POOL
        batches = []
        for at in range(0, len(order), pool):
            chunk = order[at:at + pool]
            chunk = chunk[self.lengths[chunk].argsort(stable=True)]
            batches += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 1)
        for k in torch.randperm(len(batches), generator=g)[self.start_batch:].tolist():
            idx = batches[k].to(self.x.device)
            yield self.x[idx], self.y[idx]


# -- the task -------------------------------------------------------------------------------------

class LMTask(TaskHooks):
    """Next-token cross-entropy; validation in nats per token, perplexity and bits per character."""

    monitor, monitor_mode, channels_last = "loss", "min", False

    def __init__(self, arch: str, arch_kwargs: dict, vocab: LMVocab, mode: str, context: int, device,
                 line_tokens: float | None = None, word_dropout: float = 0.0):
        self.arch, self.arch_kwargs, self.vocab, self.mode, self.context = arch, arch_kwargs, vocab, mode, context
        self.line_tokens = line_tokens  # lines mode: the training lines' mean tokens (their end markers included)
        self.word_dropout = word_dropout
        self.repeats: Repeats | None = None  # lines mode: the repeat mixture (dltool.text.lm_repeats), once fitted
        self.chars = torch.tensor(vocab.token_chars, dtype=torch.float64, device=device)
        self._tokens, self._t0 = 0, None

    def loss(self, model, batch):
        import time

        import torch.nn.functional as F

        x, y = _trimmed(batch)
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._tokens += x.numel()
        if self.word_dropout and model.training:  # the unknown token is id 1 (LMVocab); a boundary stays
            x = drop_words(x, self.word_dropout, x != self.vocab.boundary, 1)
        logits, _ = model(x)
        nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), ignore_index=-1,
                               reduction="sum")
        if self.line_tokens is None:  # stream windows: every batch holds the same number of tokens
            return nats / y.numel()
        # Over a fixed number per line, not the batch's own tokens: LengthBatches groups lines of one length,
        # and a per-batch mean weighs a token of a batch of short lines more than one of long lines, so the
        # model learnt to end lines early (names: 16% of the lstm's samples had 3-4 letters, the data 11%).
        return nats / (len(y) * self.line_tokens)

    def evaluate(self, model, batches) -> dict:
        return sequence_metrics(model, batches, self.chars)

    def end_epoch(self, model) -> None:
        import time

        from dltool.core import distributed as dist

        if self._t0 is not None and dist.is_main():
            seconds = time.perf_counter() - self._t0
            info(f"{self._tokens * dist.world_size() / max(seconds, 1e-9):,.0f} tokens/s in training")
        self._tokens, self._t0 = 0, None
        return None

    def payload(self, model) -> dict:
        pre = {"vocab": self.vocab.to_dict(), "mode": self.mode, "context": self.context}
        if self.repeats is not None:
            pre["repeats"] = self.repeats.to_dict()
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "preprocess": pre}


def _trimmed(batch):
    """A lines batch without the padding columns no line of it reaches."""
    x, y = batch
    width = int((y >= 0).sum(1).max()) if len(y) else 0
    return (x[:, :width], y[:, :width]) if 0 < width < x.shape[1] else (x, y)


def sequence_metrics(model, batches, chars: torch.Tensor, extra_nats: float = 0.0) -> dict:
    """loss (nats per predicted token), ppl and bpc (bits per character) over (x, y) batches; `extra_nats`
    joins the batches' own (the repeat mixture's weights)."""
    import torch.nn.functional as F

    nats, tokens, spelled = extra_nats, 0, 0.0
    for batch in batches:
        x, y = _trimmed(batch)
        logits, _ = model(x)
        keep = y >= 0
        nats += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1,
                                reduction="sum").item()
        tokens += int(keep.sum())
        spelled += float(chars[y[keep]].sum())
    loss = nats / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "bpc": nats / math.log(2) / max(spelled, 1.0),
            "tokens": tokens}


# -- train ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    inputs: tuple[str, ...]
    engine: EngineConfig
    model: str = "lstm"                # names: 1.89 nats a character in 10 CPU minutes, gpt 1.98 (README)
    mode: str = "lines"
    vocab: str = "char"
    vocab_size: int = 20_000
    column: str | None = None
    encoding: str = "utf-8"
    context: int | None = None         # None: the longest line (lines), STREAM_CONTEXT (stream)
    dim: int | None = None
    heads: int | None = None
    layers: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    word_dropout: float = 0.0          # training input tokens replaced by the unknown one with this probability
    repeat_rate: str = "auto"          # lines mode: auto (measured on validation) | off | a share in (0, 1)
    pretrained: Path | None = None     # a local Hugging Face GPT-2 folder
    run: RunConfig = RunConfig()
    given: frozenset[str] | None = None
    options: dict = field(default_factory=dict)

    def recipe(self) -> dict:
        """What config.toml saves and --resume compares (TOML has lists, not tuples)."""
        return {**self.options, "inputs": list(self.inputs)}

    def validate(self) -> None:
        if self.model not in MODEL_NAMES:
            raise unknown_name("model", self.model, MODEL_NAMES)
        if self.mode not in MODES:
            raise unknown_name("--mode", self.mode, MODES)
        if self.vocab not in VOCABS:
            raise unknown_name("--vocab", self.vocab, VOCABS)
        values = {f.name: getattr(part, f.name) for part in (self.engine, self.run, self) for f in fields(part)}
        MODEL_OPTIONS.check_values(given_fields(self), values)
        check_range("--context", self.context, low=2)
        check_range("--vocab-size", self.vocab_size, low=3)
        if "vocab_size" in given_fields(self) and self.vocab == "char":
            raise OptionError(f"--vocab-size applies to --vocab word, not --vocab {self.vocab}", "drop it")
        for flag, v in (("--dim", self.dim), ("--heads", self.heads), ("--layers", self.layers), ("--hidden", self.hidden)):
            check_range(flag, v, low=1)
        check_range("--dropout", self.dropout, low=0, high=1, high_open=True)
        check_range("--word-dropout", self.word_dropout, low=0, high=1, high_open=True)
        self.fixed_repeat_rate()
        if self.word_dropout and self.vocab not in UNKNOWN_VOCABS and self.pretrained is None:
            raise OptionError(f"--word-dropout replaces tokens by the unknown one, and --vocab {self.vocab} has none",
                              f"use --vocab {' or '.join(UNKNOWN_VOCABS)}, or drop --word-dropout")
        if self.pretrained is not None:
            refused = [f"--{o.replace('_', '-')}" for o in FOLDER_SETS if o in given_fields(self)]
            if self.model != "gpt":
                refused.insert(0, f"--model {self.model}")
            if refused:
                raise OptionError(f"--pretrained brings its own network and tokenizer: {', '.join(refused)} would "
                                  "not apply", "drop them")
        if self.model != "bigram":
            self.engine.validate()
            arch_options(self, LM_MODELS, ARCH_OPTIONS)

    def fixed_repeat_rate(self) -> float | None:
        """--repeat-rate as a number, None for auto and off (checked)."""
        if self.repeat_rate in ("auto", "off"):
            return None
        try:
            rate = float(self.repeat_rate)
        except ValueError:
            raise OptionError(f"--repeat-rate {self.repeat_rate!r} is not auto, off or a number",
                              "e.g. --repeat-rate auto") from None
        check_range("--repeat-rate", rate, low=0, high=1, low_open=True, high_open=True,
                    hint="the share of sampled lines that repeat a training line")
        if self.mode != "lines":
            raise OptionError("--repeat-rate applies to --mode lines", "drop it")
        return rate


def _split_lines(cfg: TrainConfig, texts: list[str]):
    """(train, validation or None): --val, or the last --val-split of the lines (the tail: no leak)."""
    if cfg.run.val is not None:
        return texts, read_texts([cfg.run.val], cfg.column, cfg.encoding)
    n_val = round(len(texts) * cfg.run.val_split)
    if n_val == 0:
        return texts, None
    if n_val >= len(texts):
        raise InputError(f"{len(texts)} line(s) cannot be split into training and validation",
                         "give more text, or --val-split 0")
    return texts[:-n_val], texts[-n_val:]


def prepare(cfg: TrainConfig, vocab: LMVocab | None = None, positions: int | None = None):
    """Read and tokenize the data (with `vocab`, or one built on the training part), check it against --context
    (and a pretrained model's `positions`): (vocab, context, train part, val part), where a part is the lines'
    (x, y) tensors or the stream's ids (train) / windows (val)."""
    texts = read_texts(cfg.inputs, cfg.column, cfg.encoding)
    if not any(t.strip() for t in texts):
        raise InputError(f"{', '.join(cfg.inputs)} has no text", "give a corpus with at least one non-empty line")
    if cfg.mode == "lines":
        tr, va = _split_lines(cfg, texts)
        vocab = vocab or LMVocab.build(cfg.vocab, tr, cfg.vocab_size)
        context = _context(cfg, max(len(vocab.encode(t)) for t in tr) + 1, positions)
        x, y, cut = line_tensors(vocab, tr, context)
        if cut:
            warn(f"{cut} training line(s) are longer than --context {context} tokens: they are cut")
        val = line_tensors(vocab, va, context)[:2] if va else None
        return vocab, context, (x, y), val
    context = _context(cfg, STREAM_CONTEXT, positions)
    if cfg.run.val is not None:
        vocab = vocab or LMVocab.build(cfg.vocab, texts, cfg.vocab_size)
        ids, val_ids = stream_ids(vocab, texts), stream_ids(vocab, read_texts([cfg.run.val], cfg.column, cfg.encoding))
    else:
        n_val = round(sum(len(t) + 1 for t in texts) * cfg.run.val_split)  # the tail, by characters
        head, tail, seen = [], [], 0
        total = sum(len(t) + 1 for t in texts)
        for t in texts:  # whole lines to each side; the vocabulary is built on the training side only
            (head if seen < total - n_val or not head else tail).append(t)
            seen += len(t) + 1
        vocab = vocab or LMVocab.build(cfg.vocab, head, cfg.vocab_size)
        ids = stream_ids(vocab, head)
        val_ids = stream_ids(vocab, tail) if tail else None
    if len(ids) <= context:
        raise InputError(f"the training text is {len(ids)} tokens, not more than --context {context}",
                         f"give more text, or a smaller --context (at most {max(2, len(ids) - 1)})")
    val = stream_windows(val_ids, context) if val_ids is not None and len(val_ids) > 1 else None
    return vocab, context, ids, val


def _context(cfg: TrainConfig, default: int, positions: int | None) -> int:
    if positions is not None and cfg.context is not None and cfg.context > positions:
        raise OptionError(f"--context {cfg.context} exceeds the {positions} positions of --pretrained {cfg.pretrained}",
                          f"use --context {positions} or less")
    context = cfg.context or default
    return min(context, positions) if positions is not None else context


def _arch_kwargs(cfg: TrainConfig, vocab_size: int, context: int) -> dict:
    kw = {o: v for o, v in arch_options(cfg, LM_MODELS, ARCH_OPTIONS).items() if v is not None}
    if "context" in LM_MODELS.takes(cfg.model):
        kw["context"] = context
    return {"vocab_size": vocab_size, **kw}


def train(cfg: TrainConfig) -> dict:
    from dltool.core.data import TensorBatches

    cfg.validate()
    if cfg.model == "bigram":
        return _train_bigram(cfg)
    plan = None
    if cfg.pretrained is None:  # the data is read first: the plan is made from it (dltool.text.plan)
        vocab, context, tr, va = prepare(cfg)
        cfg, plan = _planned(cfg, vocab, context, tr)
    device, run_dir = runs.start(cfg, TASK, cfg.recipe())
    if cfg.pretrained is not None:
        from dltool.text.models.lm_hf import FOLDER_MODELS, read_folder

        folder = read_folder(cfg.pretrained)
        arch, arch_kwargs = "gpt2_hf", {"config": folder.config}
        model = FOLDER_MODELS.create(arch, **arch_kwargs)
        model.lm.load_state_dict(folder.state_dict)
        vocab, context, tr, va = prepare(cfg, LMVocab.from_hf(folder.tokenizer_json, folder.eos), model.context)
        info(f"pretrained: {arch} from {cfg.pretrained}")
    else:
        arch, arch_kwargs = cfg.model, _arch_kwargs(cfg, len(vocab), context)
        model = LM_MODELS.create(arch, **arch_kwargs)
    if plan is not None:
        info(plan.line())
    bs = cfg.run.batch_size
    if cfg.mode == "lines":
        train_batches = LengthBatches(tr[0].to(device), tr[1].to(device), bs, seed=cfg.engine.seed)
        n_train = f"{len(tr[0])} lines"
    else:
        train_batches = WindowBatches(tr.to(device), context, bs, seed=cfg.engine.seed)
        n_train = f"{len(tr)} tokens"
    val_batches = TensorBatches(tuple(t.to(device) for t in va), max(bs, 64), shuffle=False) if va else None
    params = sum(p.numel() for p in model.parameters())
    info(f"data: {n_train} ({cfg.mode}), {len(va[0]) if va else 0} validation sequences, {vocab.kind} vocabulary of "
         f"{len(vocab)}, context {context}; {arch} of {params:,} parameters on {device.type}")
    tokens = float((tr[1] >= 0).sum(1).float().mean()) if cfg.mode == "lines" else context
    task = LMTask(arch, arch_kwargs, vocab, cfg.mode, context, device, tokens if cfg.mode == "lines" else None,
                  cfg.word_dropout)
    with small_work_on_one_thread(model, device, int(bs * tokens)):
        engine = Engine(task, model, cfg.engine, run_dir, device, cfg.recipe())
        summary = engine.fit(train_batches, val_batches)
    from dltool.core import distributed as dist

    if cfg.mode == "lines" and dist.is_main() and not engine.finished:  # a finished run resumed is left as it was
        summary = _fit_repeats(cfg, task, model, tr, va, run_dir, summary)
    return summary


def _fit_repeats(cfg: TrainConfig, task: LMTask, model, tr, va, run_dir: Path, summary: dict) -> dict:
    """Lines mode, after training: model.pt becomes the repeat mixture of the network (dltool.text.lm_repeats),
    unless --repeat-rate off, no validation lines to measure the rate on, or a mixture too slow to sample.
    Its figures join summary.json."""
    from dltool.core.io import write_json
    from dltool.core.modelfile import load_checkpoint, save_model
    from dltool.text import lm_repeats

    rate = cfg.fixed_repeat_rate()
    if cfg.repeat_rate == "off":
        return summary
    if va is None and rate is None:
        info("repeats: no validation lines to measure how often new lines repeat training lines; the model is "
             "the network alone (give --val, or --repeat-rate)")
        return summary
    model.eval()
    repeats, figures = lm_repeats.fit(model, tr, va, task.vocab.boundary, rate)
    share = f"{figures['repeat_network_share']:.1%} of its probability on the training lines"
    if repeats.draws > lm_repeats.MAX_DRAWS:
        info(f"repeats: the network puts {share}, so a repeat rate of {repeats.rate:.1%} would take "
             f"{repeats.draws:.0f} draws a sampled line; the model is the network alone")
        return summary
    task.repeats = repeats
    ckpt = load_checkpoint(run_dir / "model.pt")  # the engine's: its metrics row and any other record
    ckpt["preprocess"] = task.payload(model)["preprocess"]
    save_model(run_dir / "model.pt", **ckpt)
    summary = {**summary, **figures}
    write_json(run_dir / "summary.json", summary)
    measured = "" if rate is not None else f" ({figures['val_repeats']:.1%} of the validation lines)"
    loss = "" if va is None else (f"; validation loss {summary['val_loss']:.4f} -> "
                                  f"{figures['val_loss_repeats']:.4f} nats a token")
    info(f"repeats: the network puts {share}, new lines repeat them at {repeats.rate:.1%}{measured}{loss}")
    return summary


def _planned(cfg: TrainConfig, vocab: LMVocab, context: int, tr):
    """(cfg with the options the user did not set planned from the training data, the Plan or None)."""
    from dltool.core.plan import plan_run
    from dltool.text.plan import fingerprint_lm, plan_lm

    cfg, plan = plan_run(cfg, plan_lm, lambda: fingerprint_lm(cfg.mode, tr, len(vocab), context))
    return cfg, plan


def small_work_on_one_thread(model, device, tokens: int):
    """One torch thread on a CPU when a step is small (dltool.core.threads' policy): tokens per step x the
    dense weights. makemore's GPT on names (64 x 16 tokens): 65 ms a step on one thread, 960 ms on two, on
    the busy 2-core machine."""
    from dltool.core.threads import single_thread_below

    dense = sum(p.numel() for name, p in model.named_parameters() if p.dim() > 1 and not name.startswith(("tok", "pos", "embedding")))
    return single_thread_below(device, tokens * dense)


def _train_bigram(cfg: TrainConfig) -> dict:
    """Count bigrams of the training part; the validation figures as the trained models report them."""
    import time

    import tomli_w

    from dltool.core.data import TensorBatches
    from dltool.core.device import placed_on
    from dltool.core.io import atomic_open, prepare_run_dir, write_json
    from dltool.core.train import toml_ready

    placed_on(cfg.run.device, "bigram counting")
    run_dir = prepare_run_dir(cfg.run.out, TASK, force=cfg.run.force, resume=False)
    vocab, context, tr, va = prepare(cfg)
    t0 = time.perf_counter()
    model = LM_MODELS.create("bigram", vocab_size=len(vocab))
    if cfg.mode == "lines":
        x, y = tr
        keep = y >= 0
        model.fit(torch.stack([x[keep], y[keep]], 1))
    else:
        model.fit(torch.stack([tr[:-1], tr[1:]], 1))
    task = LMTask("bigram", {"vocab_size": len(vocab)}, vocab, cfg.mode, context, torch.device("cpu"))
    metrics = {}
    if va is not None:
        with torch.inference_mode():
            m = task.evaluate(model, TensorBatches(va, 256, shuffle=False))
        metrics = {f"val_{k}": v for k, v in m.items()}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(run_dir / "model.pt", **task.payload(model), metrics=metrics)
    with atomic_open(run_dir / "config.toml") as f:
        f.write(tomli_w.dumps(toml_ready(cfg.recipe())))
    summary = {"run_dir": str(run_dir), "model": str(run_dir / "model.pt"), **metrics,
               "train_time_s": round(time.perf_counter() - t0, 3)}
    write_json(run_dir / "summary.json", summary)
    if cfg.mode == "lines":
        summary = _fit_repeats(cfg, task, model, tr, va, run_dir, summary)
    return summary


# -- inference ------------------------------------------------------------------------------------

def load(path, device="auto") -> LoadedModel:
    def make_task(ckpt, dev):
        pre = ckpt["preprocess"]
        task = LMTask(ckpt["arch"], ckpt["arch_kwargs"], LMVocab.from_dict(pre["vocab"]), pre["mode"], pre["context"], dev)
        task.repeats = Repeats.from_dict(pre.get("repeats"))
        return task

    return load_model(path, task=TASK, registry=_AnyLM(), device=device, make_task=make_task)


class _AnyLM:
    """The registries a model file's arch may come from: by name, or from a pretrained folder."""

    def create(self, name: str, **kwargs):
        if name in LM_MODELS:
            return LM_MODELS.create(name, **kwargs)
        from dltool.text.models.lm_hf import FOLDER_MODELS

        return FOLDER_MODELS.create(name, **kwargs)


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    inputs: tuple[str, ...]
    column: str | None = None
    encoding: str = "utf-8"
    batch_size: int = 64
    device: str = "auto"


def _unknown_note(vocab: LMVocab, texts: list[str], what: str) -> None:
    missing = list(dict.fromkeys(t for text in texts for t in vocab.unknown(text)))
    if missing:
        shown = ", ".join(repr(t) for t in missing[:10])
        warn(f"{what}: {len(missing)} token(s) the model's vocabulary lacks ({shown}) are read as {UNKNOWN}")


def evaluate(cfg: EvalConfig) -> dict:
    """The model's figures on new text, read in the model's own mode."""
    from dltool.core.data import TensorBatches

    check_batch_size(cfg.batch_size)
    lm = load(cfg.model, cfg.device)
    task = lm.task
    texts = read_texts(cfg.inputs, cfg.column, cfg.encoding)
    _unknown_note(task.vocab, texts, "eval")
    extra = 0.0
    if task.mode == "lines":
        x, y, cut = line_tensors(task.vocab, texts, task.context)
        if cut:
            warn(f"eval: {cut} line(s) are longer than the model's context of {task.context} tokens: only their "
                 "start is scored (text lm score reads them whole)")
        if task.repeats is not None:
            extra = -sum(task.repeats.log_weight(ids) for ids in complete_lines(y, task.vocab.boundary))
    else:
        x, y = stream_windows(stream_ids(task.vocab, texts), task.context)
    with torch.inference_mode():
        m = sequence_metrics(lm.model, TensorBatches((x.to(lm.device), y.to(lm.device)), cfg.batch_size, shuffle=False),
                             task.chars, extra)
    return {"loss": m["loss"], "ppl": m["ppl"], "bpc": m["bpc"], "tokens": m["tokens"], "mode": task.mode,
            "vocab": task.vocab.kind, "repeat_rate": task.repeats.rate if task.repeats is not None else None}


@dataclass(frozen=True)
class SampleConfig:
    model: Path
    prompts: tuple[str, ...] = ("",)
    n: int = 1
    max_tokens: int | None = None      # None: the model's context (lines), 256 (stream)
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    stop: str | None = None
    seed: int = 0
    cache: bool = True
    device: str = "auto"

    def validate(self) -> None:
        check_range("-n", self.n, low=1)
        check_range("--max-tokens", self.max_tokens, low=1)
        check_range("--temperature", self.temperature, low=0, hint="0 picks the likeliest token; 1 samples as trained")
        check_range("--top-k", self.top_k, low=1)
        check_range("--top-p", self.top_p, low=0, high=1, low_open=True, hint="e.g. --top-p 0.9")
        if self.stop == "":
            raise OptionError("--stop '' would stop at once", "give the text to stop at")


def _pick(logits: torch.Tensor, cfg: SampleConfig, generator) -> torch.Tensor:
    """The next token of each row: greedy at temperature 0, else sampled within --top-k and --top-p."""
    if cfg.temperature == 0:
        return logits.argmax(-1)
    logits = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.shape[-1]:
        kth = logits.topk(cfg.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if cfg.top_p is not None and cfg.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)  # mass above each token
        drop = (before >= cfg.top_p).scatter(-1, order, before >= cfg.top_p)
        logits = logits.masked_fill(drop, -float("inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]


@torch.inference_mode()
def generate(model, prefix: list[int], n: int, max_tokens: int, cfg: SampleConfig, generator, *,
             stop_at_boundary: bool, boundary: int = 0, cache: bool = True, on_token=None,
             halt=None) -> list[list[int]]:
    """`n` continuations of `prefix` (token ids), at most `max_tokens` each, ending at the boundary token
    when `stop_at_boundary` (excluded). With `cache` each step feeds only the new token and the model's
    state (a GPT's keys and values): linear in the length; without it, every step reruns the sequence (up
    to the context). A GPT whose cache fills its context restarts it from the last half of the context.
    `halt(ids)`, given, ends a single sample early once it is true of the ids written so far."""
    device = next(model.parameters()).device
    context = getattr(model, "context", None)
    seq = torch.tensor([prefix] * n, dtype=torch.long, device=device)
    start = seq.shape[1]
    done = torch.zeros(n, dtype=torch.bool, device=device)
    state, feed, past = None, seq if context is None else seq[:, -context:], 0
    for _ in range(max_tokens):
        if cache:
            if context is not None and past + feed.shape[1] > context:
                state, feed, past = None, seq[:, -(context // 2):], 0
            logits, state = model(feed, state)
            past += feed.shape[1]
        else:
            logits, _ = model(seq if context is None else seq[:, -context:])
        nxt = _pick(logits[:, -1].float(), cfg, generator)
        if stop_at_boundary:
            nxt = nxt.masked_fill(done, boundary)
            done |= nxt == boundary
        seq = torch.cat([seq, nxt[:, None]], 1)
        feed = nxt[:, None]
        if on_token is not None:
            on_token(int(nxt[0]))
        if stop_at_boundary and bool(done.all()):
            break
        if halt is not None and n == 1 and halt(seq[0, start:].tolist()):
            break
    out = []
    for row in seq[:, start:].tolist():
        out.append(row[: row.index(boundary)] if stop_at_boundary and boundary in row else row)
    return out


def sample(cfg: SampleConfig, stream=None):
    """One record {prompt, text, tokens} per sample (text: the prompt and what the model wrote after it),
    `cfg.n` per prompt, written one after the other. `stream(piece)`, given, receives the text as it is
    written."""
    cfg.validate()
    lm = load(cfg.model, cfg.device)
    task = lm.task
    vocab, lines = task.vocab, task.mode == "lines"
    max_tokens = cfg.max_tokens or (task.context if lines else 256)
    generator = torch.Generator(device=lm.device).manual_seed(cfg.seed)
    for prompt in cfg.prompts:
        missing = vocab.unknown(prompt)
        if missing:
            raise InputError(f"the prompt {prompt!r} has {'characters' if vocab.kind == 'char' else 'words'} the "
                             f"model's vocabulary lacks: {', '.join(repr(t) for t in missing)}",
                             "use only what the training text had")
    # lines mode with a repeat mixture: a line drawn from the network is kept with its mixture weight's share
    # (dltool.text.lm_repeats), so a line is shown only once kept; greedy (--temperature 0) writes the
    # likeliest line of the network as it is
    repeats = task.repeats if lines and cfg.temperature > 0 else None
    pieces: list[str] = []  # a line's text until it is kept
    show = stream if repeats is None else pieces.append
    records = []
    for prompt in cfg.prompts:
        prompt_ids = vocab.encode(prompt)
        for _ in range(cfg.n):  # one at a time, streamed or not: the same seed writes the same text either way
            while True:
                pieces.clear()
                if stream is not None and repeats is None:
                    stream(prompt)
                row = generate(lm.model, [vocab.boundary, *prompt_ids], 1, max_tokens, cfg, generator,
                               stop_at_boundary=lines, boundary=vocab.boundary, cache=cfg.cache,
                               on_token=(lambda i: show(vocab.piece(i, lines))) if stream is not None else None,
                               halt=(lambda ids: cfg.stop in vocab.decode(ids)) if cfg.stop is not None else None)[0]
                text = _joined(vocab, prompt, vocab.decode(row))
                stopped = cfg.stop is not None and cfg.stop in text[len(prompt):]
                if stopped:
                    text = text[: len(prompt) + text[len(prompt):].index(cfg.stop)]
                if repeats is None:
                    break
                whole = None if stopped or len(row) >= max_tokens else [*prompt_ids, *row]  # ended at the boundary
                keep = repeats.keep_probability(whole)
                if keep >= 1 or float(torch.rand((), generator=generator, device=generator.device)) < keep:
                    break
            if stream is not None:
                if repeats is not None:
                    stream(prompt + "".join(pieces))
                stream("\n")
            records.append({"prompt": prompt, "text": text, "tokens": len(row)})
    return records


def _joined(vocab: LMVocab, prompt: str, written: str) -> str:
    if vocab.kind != "word" or not prompt or not written:
        return prompt + written
    return prompt + " " + written


@dataclass(frozen=True)
class ScoreConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    column: str | None = None
    encoding: str = "utf-8"
    batch_size: int = 64
    device: str = "auto"


@torch.inference_mode()
def score(cfg: ScoreConfig):
    """{text, logprob, tokens, ppl} per input line: the log-probability (nats) of the line's tokens and its
    end marker after the start marker, as the model read them in training (a line longer than a GPT's
    context is read in windows of the context, each starting fresh)."""
    check_batch_size(cfg.batch_size)
    lm = load(cfg.model, cfg.device)
    vocab, context = lm.task.vocab, getattr(lm.model, "context", None)
    texts = read_texts(cfg.inputs, cfg.column, cfg.encoding)
    _unknown_note(vocab, texts, "score")
    seqs = [[vocab.boundary, *vocab.encode(t), vocab.boundary] for t in texts]
    width = context or max(len(s) - 1 for s in seqs)
    windows, owner = [], []  # (inputs, targets) pieces of at most `width`, and the line each belongs to
    for i, s in enumerate(seqs):
        for at in range(0, len(s) - 1, width):
            windows.append((s[at:at + width], s[at + 1:at + width + 1]))
            owner.append(i)
    logprob = [0.0] * len(texts)
    order = sorted(range(len(windows)), key=lambda j: len(windows[j][0]))  # similar lengths batch together
    for b in range(0, len(order), cfg.batch_size):
        idx = order[b:b + cfg.batch_size]
        size = max(len(windows[j][0]) for j in idx)
        x = torch.zeros(len(idx), size, dtype=torch.long)
        y = torch.full((len(idx), size), -1, dtype=torch.long)
        for r, j in enumerate(idx):
            xi, yi = windows[j]
            x[r, : len(xi)], y[r, : len(yi)] = torch.tensor(xi), torch.tensor(yi)
        for j, lp in zip(idx, line_logprobs(lm.model, x, y, len(idx)).tolist()):
            logprob[owner[j]] += lp
    repeats = lm.task.repeats
    for t, s, lp in zip(texts, seqs, logprob):
        n = len(s) - 1
        if repeats is not None:
            lp += repeats.log_weight(s[1:-1] if n <= lm.task.context else None)
        yield {"text": t, "logprob": round(lp, 6), "tokens": n, "ppl": round(math.exp(-lp / n), 6)}
