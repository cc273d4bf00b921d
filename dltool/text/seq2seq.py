"""Sequence to sequence: train an encoder-decoder on (source, target) pairs (spelling -> pronunciation,
dates -> ISO dates), evaluate it (exact match, token error rate, BLEU, chrF) and predict with greedy or beam
search.

Data: `source<TAB>target` lines (plain text, .tsv, stdin), or CSV/JSON Lines (and TSV with a header) whose
`--source`/`--target` columns (default `source`/`target`) hold the pair; a JSON Lines target may be a list.
A source may come several times with different targets: every one is a training pair, and evaluation
counts a prediction right when it equals any of them. `--val-split` holds out a share of the distinct
sources (seeded), so no source is on both sides.

Tokens: each side has its own vocabulary (dltool.text.lm's `LMVocab`: char, word or bpe), saved in the
model file. Id 0 is the boundary: it ends a source, starts and ends a target; id 1 the unknown token.

Decoding (`beam_search`): batched over inputs and beams; `--beam 1` is greedy. Finished hypotheses keep
their slot (extended by the boundary at no cost) so the search stays one tensor; the beams are ranked by
log-probability / length ** --length-penalty (fairseq's normalisation; length counts the end token). After
`--max-len` tokens the end token is forced, so every hypothesis is a complete sequence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dltool.core import run as runs
from dltool.core.applies import check_range, given_fields
from dltool.core.console import info
from dltool.core.data import EpochBatches
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.modelfile import LoadedModel, load_model
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, check_batch_size
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.text.corpus import TABLE_SUFFIXES, CorpusSpec, read_documents
from dltool.text.lm import UNKNOWN, LMVocab
from dltool.text.models.seq2seq import SEQ2SEQ_MODELS

TASK = "text-seq2seq"
VOCABS = ("char", "word", "bpe")
MODEL_NAMES = tuple(SEQ2SEQ_MODELS.names())
ARCH_OPTIONS = ("dim", "heads", "layers", "hidden", "dropout", "attention", "bidirectional")
BOUNDARY = 0


# -- data -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    where: str  # "file: line 3", for messages


def _is_table(path: str, source_column: str | None) -> bool:
    kind = None if path == "-" else TABLE_SUFFIXES.get(Path(path).suffix.lower())
    return kind in ("csv", "jsonl") or (source_column is not None and kind in ("tsv", None))


def read_pairs(inputs, source_column: str | None = None, target_column: str | None = None,
               encoding: str = "utf-8") -> list[Pair]:
    """Every (source, target) pair of the inputs, in order; an empty side or a line without a TAB is an
    error naming its place."""
    pairs = []
    for path in inputs:
        path = str(path)
        name = "stdin" if path == "-" else path
        if _is_table(path, source_column):
            src_col, tgt_col = source_column or "source", target_column or "target"
            for doc in read_documents(CorpusSpec(inputs=(path,), column=src_col, encoding=encoding)):
                where = f"{name}: row {doc.id}"
                if tgt_col not in doc.fields:
                    raise InputError(f"{where}: no target column '{tgt_col}' (columns: {', '.join(doc.fields)})",
                                     "name it with --target")
                value = doc.fields[tgt_col]
                targets = value if isinstance(value, list) else [value]
                pairs += [Pair(doc.text if doc.text is not None else " ".join(doc.tokens), str(t), where)
                          for t in targets]
            continue
        if target_column is not None:
            raise OptionError(f"--target names a column of a CSV, TSV or JSON Lines table; '{name}' is "
                              "source<TAB>target lines", "leave out --target, or give --source too for a TSV table")
        pairs += _tab_pairs(path, name, encoding)
    for p in pairs:
        for side, text in (("source", p.source), ("target", p.target)):
            if not text.strip():
                raise InputError(f"{p.where}: the {side} is empty", "every pair needs a source and a target")
    return pairs


def _tab_pairs(path: str, name: str, encoding: str) -> list[Pair]:
    """source<TAB>target lines (blank lines skipped); the target is all after the first TAB."""
    from dltool.text.corpus import decoded_lines, open_binary

    CorpusSpec(inputs=(path,), encoding=encoding)  # checks the encoding's name
    stream, owned = open_binary(path)
    pairs = []
    try:
        for lineno, line in decoded_lines(stream, name, encoding):
            if not line.strip():
                continue
            where = f"{name}: line {lineno}"
            if "\t" not in line:
                raise InputError(f"{where} has no TAB between source and target ({line[:40]!r})",
                                 "write one pair a line: source<TAB>target")
            source, target = line.split("\t", 1)
            pairs.append(Pair(source, target, where))
    finally:
        if owned:
            stream.close()
    if not pairs:
        raise InputError(f"no pairs in {name} (the input is empty)", "give one source<TAB>target pair a line")
    return pairs


def references(pairs: list[Pair]) -> dict[str, list[str]]:
    """Each distinct source (in order of first appearance) -> its targets, each once."""
    refs: dict[str, list[str]] = {}
    for p in pairs:
        targets = refs.setdefault(p.source, [])
        if p.target not in targets:
            targets.append(p.target)
    return refs


def split_by_source(pairs: list[Pair], share: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, validation): a seeded `share` of the distinct sources and all their pairs held out."""
    sources = list(references(pairs))
    n_val = round(len(sources) * share)
    if n_val == 0:
        return pairs, []
    if n_val >= len(sources):
        raise InputError(f"{len(sources)} distinct source(s) cannot be split into training and validation",
                         "give more pairs, or --val-split 0")
    order = torch.randperm(len(sources), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {sources[i] for i in order[:n_val]}
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]


def source_ids(vocab: LMVocab, text: str) -> list[int]:
    return [*vocab.encode(text), BOUNDARY]


def pair_tensors(src_vocab: LMVocab, tgt_vocab: LMVocab, pairs: list[Pair], max_len: int | None = None):
    """(src (N, S) padded with 0, src_len (N,), tgt_in (N, T + 1) = boundary + target, tgt_out (N, T + 1) =
    target + boundary, padded with -1). A side of more than `max_len` tokens is an error naming its line."""
    srcs, tgts = [], []
    for p in pairs:
        s, t = source_ids(src_vocab, p.source), tgt_vocab.encode(p.target)
        if max_len is not None:
            for side, n in (("source", len(s) - 1), ("target", len(t))):
                if n > max_len:
                    raise InputError(f"{p.where}: the {side} has {n} tokens, more than --max-len {max_len}",
                                     f"raise --max-len to {n} or more, or leave the pair out")
        srcs.append(s)
        tgts.append(t)
    n = len(pairs)
    src = torch.zeros(n, max(map(len, srcs)), dtype=torch.long)
    tgt_in = torch.zeros(n, max(map(len, tgts)) + 1, dtype=torch.long)
    tgt_out = torch.full_like(tgt_in, -1)
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        src[i, :len(s)] = torch.tensor(s)
        tgt_in[i, :len(t) + 1] = torch.tensor([BOUNDARY, *t])
        tgt_out[i, :len(t) + 1] = torch.tensor([*t, BOUNDARY])
    return src, torch.tensor([len(s) for s in srcs]), tgt_in, tgt_out


class PairBatches(EpochBatches):
    """Training batches of pairs of similar length (dltool.text.lm's LengthBatches for two sides): each
    epoch the pairs are shuffled from (seed, epoch), sorted by length within pools of 50 batches, cut into
    batches, and the batches shuffled; the order depends on (seed, epoch) alone, so resume is exact."""

    POOL = 50

    def __init__(self, tensors: tuple, batch_size: int, *, seed: int = 0):
        super().__init__(len(tensors[0]), batch_size, shuffle=True, seed=seed)
        self.tensors = tensors
        self.lengths = (tensors[1] + (tensors[3] >= 0).sum(1)).cpu()

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
            idx = batches[k].to(self.tensors[0].device)
            yield tuple(t[idx] for t in self.tensors)


def _trimmed(batch):
    """A batch cut to its longest source and target (the rest is padding)."""
    src, src_len, tgt_in, tgt_out = batch
    s, t = int(src_len.max()), int((tgt_out >= 0).sum(1).max())
    return src[:, :s], src_len, tgt_in[:, :t], tgt_out[:, :t]


# -- the task -------------------------------------------------------------------------------------

class Seq2SeqTask(TaskHooks):
    """Teacher forcing: cross-entropy of each target token given the source and the target before it
    (label smoothing in training only). Validation: loss per token, token accuracy, and `exact`: the share
    of pairs whose every token is the model's first choice, which is exactly the share greedy decoding
    gets right. `exact` picks the epoch kept: the loss can rise while it still improves (G2P, dropout 0.1:
    the lowest validation loss at epoch 10 of 13, exact match 0.686 there and 0.698 at the end); on a tie
    (a small validation set, or none right yet) the lower loss wins."""

    monitor, monitor_mode, channels_last = "exact", "max", False
    monitor_ties = "loss"

    def __init__(self, arch: str, arch_kwargs: dict, source_vocab: LMVocab, target_vocab: LMVocab,
                 max_target: int, label_smoothing: float = 0.0, target_tokens: float | None = None):
        self.arch, self.arch_kwargs = arch, arch_kwargs
        self.source_vocab, self.target_vocab, self.max_target = source_vocab, target_vocab, max_target
        self.label_smoothing = label_smoothing
        self.target_tokens = target_tokens  # the training pairs' mean target tokens (their end markers included)

    def loss(self, model, batch):
        import torch.nn.functional as F

        src, src_len, tgt_in, tgt_out = _trimmed(batch)
        logits = model(src, src_len, tgt_in)
        nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt_out.reshape(-1), ignore_index=-1,
                               label_smoothing=self.label_smoothing, reduction="sum")
        # over a fixed number per pair, not the batch's own tokens: PairBatches groups pairs of one length, and
        # a per-batch mean weighs a token of short pairs more (dltool.text.lm.LMTask.loss: names ended early)
        return nats / (len(tgt_out) * self.target_tokens)

    def evaluate(self, model, batches) -> dict:
        import torch.nn.functional as F

        nats, tokens, right, exact, pairs = 0.0, 0, 0, 0, 0
        for batch in batches:
            src, src_len, tgt_in, tgt_out = _trimmed(batch)
            logits = model(src, src_len, tgt_in).float()
            keep = tgt_out >= 0
            nats += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=-1,
                                    reduction="sum").item()
            hit = (logits.argmax(-1) == tgt_out) | ~keep
            tokens, right = tokens + int(keep.sum()), right + int((hit & keep).sum())
            exact, pairs = exact + int(hit.all(1).sum()), pairs + len(src)
        return {"loss": nats / max(tokens, 1), "token_acc": right / max(tokens, 1), "exact": exact / max(pairs, 1)}

    def payload(self, model) -> dict:
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "preprocess": {"source_vocab": self.source_vocab.to_dict(), "target_vocab": self.target_vocab.to_dict(),
                               "max_target": self.max_target}}


# -- train ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    inputs: tuple[str, ...]
    engine: EngineConfig
    model: str = "lstm"
    source: str | None = None          # column names of a table input
    target: str | None = None
    source_vocab: str = "char"
    target_vocab: str = "char"
    vocab_size: int = 8000
    encoding: str = "utf-8"
    max_len: int = 256
    label_smoothing: float = 0.0
    dim: int | None = None
    heads: int | None = None
    layers: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    attention: str | None = None
    bidirectional: bool | None = None
    run: RunConfig = RunConfig()
    given: frozenset[str] | None = None
    options: dict = field(default_factory=dict)

    def recipe(self) -> dict:
        return {**self.options, "inputs": list(self.inputs)}

    def validate(self) -> None:
        from dltool.text.models.seq2seq_rnn import ATTENTIONS

        if self.model not in MODEL_NAMES:
            raise unknown_name("model", self.model, MODEL_NAMES)
        for flag, v in (("--source-vocab", self.source_vocab), ("--target-vocab", self.target_vocab)):
            if v not in VOCABS:
                raise unknown_name(flag, v, VOCABS)
        check_range("--vocab-size", self.vocab_size, low=3)
        if "vocab_size" in given_fields(self) and self.source_vocab == self.target_vocab == "char":
            raise OptionError("--vocab-size applies to --source-vocab/--target-vocab word or bpe, not char", "drop it")
        check_range("--max-len", self.max_len, low=1)
        check_range("--label-smoothing", self.label_smoothing, low=0, high=1, high_open=True)
        for flag, v in (("--dim", self.dim), ("--heads", self.heads), ("--layers", self.layers), ("--hidden", self.hidden)):
            check_range(flag, v, low=1)
        check_range("--dropout", self.dropout, low=0, high=1, high_open=True)
        self.engine.validate()
        arch_options(self, SEQ2SEQ_MODELS, ARCH_OPTIONS)
        if self.attention is not None and self.attention not in ATTENTIONS:
            raise unknown_name("--attention", self.attention, ATTENTIONS)


def prepare(cfg: TrainConfig):
    """(source vocab, target vocab, train tensors, validation tensors or None, the longest training target)."""
    pairs = read_pairs(cfg.inputs, cfg.source, cfg.target, cfg.encoding)
    if cfg.run.val is not None:
        tr, va = pairs, read_pairs([cfg.run.val], cfg.source, cfg.target, cfg.encoding)
    else:
        tr, va = split_by_source(pairs, cfg.run.val_split, cfg.engine.seed)
    src_vocab = LMVocab.build(cfg.source_vocab, [p.source for p in tr], cfg.vocab_size)
    tgt_vocab = LMVocab.build(cfg.target_vocab, [p.target for p in tr], cfg.vocab_size)
    train_t = pair_tensors(src_vocab, tgt_vocab, tr, cfg.max_len)
    val_t = pair_tensors(src_vocab, tgt_vocab, va, cfg.max_len) if va else None
    info(f"data: {len(tr)} training pairs ({len(references(tr))} sources), {len(va)} validation pairs; "
         f"vocabularies: source {src_vocab.kind} of {len(src_vocab)}, target {tgt_vocab.kind} of {len(tgt_vocab)}")
    return src_vocab, tgt_vocab, train_t, val_t, int((train_t[3] >= 0).sum(1).max()) - 1


def train(cfg: TrainConfig) -> dict:
    from dltool.core.data import TensorBatches
    from dltool.core.plan import plan_run
    from dltool.text.lm import small_work_on_one_thread
    from dltool.text.plan import fingerprint_seq2seq, plan_seq2seq

    cfg.validate()
    src_vocab, tgt_vocab, tr, va, max_target = prepare(cfg)  # the data first: the batch size and lr are planned from it
    cfg, plan = plan_run(cfg, plan_seq2seq, lambda: fingerprint_seq2seq(tr, cfg.run.device))
    device, run_dir = runs.start(cfg, TASK, cfg.recipe())
    if plan is not None:
        info(plan.line())
    arch_kwargs = {"src_vocab": len(src_vocab), "tgt_vocab": len(tgt_vocab),
                   **{o: v for o, v in arch_options(cfg, SEQ2SEQ_MODELS, ARCH_OPTIONS).items() if v is not None}}
    model = SEQ2SEQ_MODELS.create(cfg.model, **arch_kwargs)
    bs = cfg.run.batch_size
    train_batches = PairBatches(tuple(t.to(device) for t in tr), bs, seed=cfg.engine.seed)
    val_batches = TensorBatches(tuple(t.to(device) for t in va), max(bs, 64), shuffle=False) if va else None
    info(f"{cfg.model} of {sum(p.numel() for p in model.parameters()):,} parameters on {device.type}")
    task = Seq2SeqTask(cfg.model, arch_kwargs, src_vocab, tgt_vocab, max_target, cfg.label_smoothing,
                       float((tr[3] >= 0).sum(1).float().mean()))
    tokens = float(tr[1].float().mean() + (tr[3] >= 0).sum(1).float().mean())
    with small_work_on_one_thread(model, device, int(bs * tokens)):
        return Engine(task, model, cfg.engine, run_dir, device, cfg.recipe()).fit(train_batches, val_batches)


# -- decoding -------------------------------------------------------------------------------------

def _select(tree, idx: torch.Tensor):
    """Every tensor of a model's memory or state, rows picked by `idx` (the batch axis is first)."""
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, idx)
    if isinstance(tree, dict):
        return {k: _select(v, idx) for k, v in tree.items()}
    return type(tree)(_select(v, idx) for v in tree)


@dataclass
class Hypothesis:
    ids: list[int]            # target token ids, without the end token
    logprob: float            # log-probability of the ids and the end token
    score: float              # logprob / (len(ids) + 1) ** length_penalty: what the beams are ranked by
    attention: torch.Tensor | None = None  # (len(ids) + 1, source tokens): each output token's weights


@torch.inference_mode()
def beam_search(model, src: torch.Tensor, src_len: torch.Tensor, *, beam: int = 5, max_len: int = 50,
                length_penalty: float = 1.0, nbest: int = 1, attention: bool = False) -> list[list[Hypothesis]]:
    """The `nbest` best of `beam` hypotheses for each source of the batch, best first."""
    n, k, dev = src.shape[0], beam, src.device
    memory, state = model.encode(src, src_len)
    expand = torch.arange(n, device=dev).repeat_interleave(k)
    memory, state = _select(memory, expand), _select(state, expand)
    scores = torch.full((n, k), -math.inf, device=dev)
    scores[:, 0] = 0.0  # one live hypothesis to start; the others join at the first step
    tokens = torch.full((n * k, 1), BOUNDARY, dtype=torch.long, device=dev)
    seqs = torch.zeros(n * k, 0, dtype=torch.long, device=dev)
    lengths = torch.zeros(n * k, dtype=torch.long, device=dev)
    finished = torch.zeros(n * k, dtype=torch.bool, device=dev)
    weights = None
    rows = torch.arange(n, device=dev)[:, None] * k
    for step in range(max_len + 1):
        logits, state, attn = model.decode(tokens, memory, state)
        logp = logits[:, -1].float().log_softmax(-1)
        vocab = logp.shape[1]
        if step == max_len:  # the end token is forced: every hypothesis is complete
            logp = torch.full_like(logp, -math.inf).index_fill(1, torch.tensor([BOUNDARY], device=dev), 0.0) + logp
        # a finished hypothesis goes on with the end token at no cost, keeping its slot
        done_row = torch.full((vocab,), -math.inf, device=dev)
        done_row[BOUNDARY] = 0.0
        logp = torch.where(finished[:, None], done_row, logp)
        top, idx = (scores.view(-1, 1) + logp).view(n, k * vocab).topk(k, dim=1)
        parent = (rows + idx // vocab).view(-1)
        token = (idx % vocab).view(-1)
        if attention and attn is not None:
            step_w = attn[:, -1:]
            weights = (step_w if weights is None else torch.cat([weights, step_w], 1))[parent]
        lengths = lengths[parent] + (~finished[parent]).long()
        finished = finished[parent] | (token == BOUNDARY)
        seqs = torch.cat([seqs[parent], token[:, None]], 1)
        state, scores, tokens = _select(state, parent), top, token[:, None]
        if bool(finished.all()):
            break
    normed = scores.view(-1) / lengths.clamp(min=1).float() ** length_penalty
    out = []
    for i in range(n):
        order = sorted(range(i * k, (i + 1) * k), key=lambda r: -float(normed[r]))
        hyps = []
        for r in order:
            if not math.isfinite(float(scores.view(-1)[r])):
                continue
            ids = seqs[r].tolist()
            ids = ids[:ids.index(BOUNDARY)] if BOUNDARY in ids else ids
            w = weights[r, :len(ids) + 1, :int(src_len[i])].cpu() if weights is not None else None
            hyps.append(Hypothesis(ids, float(scores.view(-1)[r]), float(normed[r]), w))
            if len(hyps) == nbest:
                break
        out.append(hyps)
    return out


def load(path, device="auto") -> LoadedModel:
    def make_task(ckpt, dev):
        pre = ckpt["preprocess"]
        return Seq2SeqTask(ckpt["arch"], ckpt["arch_kwargs"], LMVocab.from_dict(pre["source_vocab"]),
                           LMVocab.from_dict(pre["target_vocab"]), int(pre["max_target"]))

    return load_model(path, task=TASK, registry=SEQ2SEQ_MODELS, device=device, make_task=make_task)


@dataclass(frozen=True)
class DecodeOptions:
    beam: int = 5
    length_penalty: float = 1.0
    max_len: int | None = None       # None: twice the model's longest training target, plus 10
    nbest: int = 1
    batch_size: int = 64

    def validate(self) -> None:
        check_range("--beam", self.beam, low=1)
        check_range("--nbest", self.nbest, low=1)
        if self.nbest > self.beam:
            raise OptionError(f"--nbest {self.nbest} exceeds --beam {self.beam}: the search keeps only that many",
                              f"use --beam {self.nbest} or more")
        check_range("--length-penalty", self.length_penalty, low=0)
        check_range("--max-len", self.max_len, low=1)
        check_batch_size(self.batch_size)


def decode_texts(loaded: LoadedModel, sources: list[str], opts: DecodeOptions, *, attention: bool = False):
    """[(source, [Hypothesis, ...])] for each source, decoded in batches of similar length."""
    task, model = loaded.task, loaded.model
    max_len = opts.max_len or 2 * task.max_target + 10
    encoded = [source_ids(task.source_vocab, s) for s in sources]
    positions = getattr(model, "positions", None)  # a Transformer's; a recurrent model has no limit
    if positions is not None:
        if max_len + 1 > positions:
            raise OptionError(f"--max-len {max_len} exceeds the model's {positions - 1} output positions",
                              f"use --max-len {positions - 1} or less")
        longest = max(range(len(sources)), key=lambda i: len(encoded[i]), default=None)
        if longest is not None and len(encoded[longest]) > positions:
            raise InputError(f"source {longest + 1} has {len(encoded[longest]) - 1} tokens, more than the model's "
                             f"{positions - 1} positions", "split it into shorter pieces")
    order = sorted(range(len(sources)), key=lambda i: len(encoded[i]))
    results: list = [None] * len(sources)
    for at in range(0, len(order), opts.batch_size):
        idx = order[at:at + opts.batch_size]
        src = torch.zeros(len(idx), max(len(encoded[i]) for i in idx), dtype=torch.long)
        for r, i in enumerate(idx):
            src[r, :len(encoded[i])] = torch.tensor(encoded[i])
        src_len = torch.tensor([len(encoded[i]) for i in idx])
        hyps = beam_search(model, src.to(loaded.device), src_len.to(loaded.device), beam=opts.beam, max_len=max_len,
                           length_penalty=opts.length_penalty, nbest=opts.nbest, attention=attention)
        for r, i in enumerate(idx):
            results[i] = hyps[r]
    return list(zip(sources, results))


def _unknown_note(vocab: LMVocab, texts: list[str], what: str) -> None:
    from dltool.core.console import warn

    missing = list(dict.fromkeys(t for text in texts for t in vocab.unknown(text)))
    if missing:
        shown = ", ".join(repr(t) for t in missing[:10])
        warn(f"{what}: {len(missing)} source token(s) the model's vocabulary lacks ({shown}) are read as {UNKNOWN}")


# -- eval -----------------------------------------------------------------------------------------

def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each 1)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def target_tokens(vocab: LMVocab, text: str) -> list[str]:
    """A target as the tokens the model writes (word: split as the vocabulary splits; char: characters)."""
    return list(text) if vocab.kind == "char" else vocab.split(text)


def _spaced(vocab: LMVocab, text: str) -> str:
    """The target's tokens joined by spaces (a space token as '▁'): what BLEU counts n-grams of."""
    return " ".join(t.replace(" ", "\u2581") for t in target_tokens(vocab, text))


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    inputs: tuple[str, ...]
    source: str | None = None
    target: str | None = None
    encoding: str = "utf-8"
    decode: DecodeOptions = DecodeOptions()
    device: str = "auto"


def evaluate(cfg: EvalConfig) -> dict:
    """Exact match (a prediction equal to any reference), its complement `wer` (G2P papers' word error
    rate), token error rate (edit distance to the closest reference over that reference's length, summed:
    PER for G2P), BLEU over the target's tokens (characters for --target-vocab char) and chrF over its text
    (sacrebleu, every reference), over the distinct sources."""
    import sacrebleu

    cfg.decode.validate()
    loaded = load(cfg.model, cfg.device)
    vocab = loaded.task.target_vocab
    refs = references(read_pairs(cfg.inputs, cfg.source, cfg.target, cfg.encoding))
    _unknown_note(loaded.task.source_vocab, list(refs), "eval")
    decoded = decode_texts(loaded, list(refs), cfg.decode)
    hyps, rights, edits, ref_tokens = [], 0, 0, 0
    by_length = defaultdict(lambda: [0, 0, 0, 0])  # source tokens -> sources, right, edits, reference tokens
    for source, best in decoded:
        text = vocab.decode(best[0].ids) if best else ""
        hyps.append(text)
        got = target_tokens(vocab, text)
        wanted = [target_tokens(vocab, t) for t in refs[source]]
        right = got in wanted
        dist, length = min((edit_distance(got, w), len(w)) for w in wanted)
        rights, edits, ref_tokens = rights + right, edits + dist, ref_tokens + length
        row = by_length[len(loaded.task.source_vocab.encode(source))]
        row[0], row[1], row[2], row[3] = row[0] + 1, row[1] + right, row[2] + dist, row[3] + length
    most = max(len(r) for r in refs.values())
    streams = [[r[j] if j < len(r) else None for r in refs.values()] for j in range(most)]
    spaced = [[None if t is None else _spaced(vocab, t) for t in stream] for stream in streams]
    n = len(refs)
    info("by source length (tokens): sources, exact, token error rate")
    for length in sorted(by_length):
        s, r, e, t = by_length[length]
        info(f"  {length:4d}: {s:6d}  {r / s:.4f}  {e / max(t, 1):.4f}")
    return {"exact": rights / n, "wer": 1 - rights / n, "ter": edits / max(ref_tokens, 1),
            "bleu": sacrebleu.corpus_bleu([_spaced(vocab, h) for h in hyps], spaced, tokenize="none").score, "chrf": sacrebleu.corpus_chrf(hyps, streams).score,
            "sources": n, "pairs": sum(len(r) for r in refs.values()), "beam": cfg.decode.beam}


# -- predict --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    source: str | None = None
    encoding: str = "utf-8"
    decode: DecodeOptions = DecodeOptions()
    plot_attention: Path | None = None
    device: str = "auto"


def read_sources(inputs, column: str | None, encoding: str) -> list[str]:
    """One source a line, or a table's --source column."""
    return [d.text if d.text is not None else " ".join(d.tokens)
            for d in read_documents(CorpusSpec(inputs=tuple(str(i) for i in inputs), column=column, encoding=encoding))]


def predict(cfg: PredictConfig) -> list[dict]:
    """{source, prediction, score (log-probability), nbest?: [{prediction, score}]} per source, in order."""
    cfg.decode.validate()
    loaded = load(cfg.model, cfg.device)
    if cfg.plot_attention is not None and getattr(loaded.model, "attention", None) == "none":
        raise OptionError(f"--plot-attention: the model '{cfg.model}' has no attention (--attention none)",
                          "train it with --attention bahdanau or luong, or leave out --plot-attention")
    sources = read_sources(cfg.inputs, cfg.source, cfg.encoding)
    _unknown_note(loaded.task.source_vocab, sources, "predict")
    vocab = loaded.task.target_vocab
    decoded = decode_texts(loaded, sources, cfg.decode, attention=cfg.plot_attention is not None)
    records = []
    for source, hyps in decoded:
        best = hyps[0]
        rec = {"source": source, "prediction": vocab.decode(best.ids), "score": round(best.logprob, 6)}
        if cfg.decode.nbest > 1:
            rec["nbest"] = [{"prediction": vocab.decode(h.ids), "score": round(h.logprob, 6)} for h in hyps]
        records.append(rec)
    if cfg.plot_attention is not None:
        plot_attention(loaded, decoded, cfg.plot_attention)
    return records


def _labels(vocab: LMVocab, ids: list[int]) -> list[str]:
    return [vocab.tokens[i] for i in ids] + ["</s>"]


def plot_attention(loaded: LoadedModel, decoded, folder: Path) -> None:
    """One PNG a source (0001.png, ...): its tokens across, the output tokens down, each cell the weight the
    output token gave the source token (a Transformer's: its last layer's, averaged over heads)."""
    from dltool.core.plots import figure, save_figure

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--plot-attention {folder} exists and is not a folder", "choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    task = loaded.task
    width = len(str(len(decoded)))
    for i, (source, hyps) in enumerate(decoded, 1):
        w = hyps[0].attention.numpy()
        cols = _labels(task.source_vocab, task.source_vocab.encode(source))
        rows = _labels(task.target_vocab, hyps[0].ids)
        fig, ax = figure(figsize=(max(3.0, 0.4 * len(cols) + 1.5), max(2.5, 0.35 * len(rows) + 1.2)))
        ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=90)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        ax.set_title(source[:60])
        save_figure(fig, folder / f"{i:0{max(4, width)}d}.png")
