"""Masked-language-model pretraining of the `bert` encoder on raw text (`text classify pretrain`).

Each step picks 15% of the real tokens (never CLS or padding) of every text; of those, 80% become MASK,
10% a random token and 10% stay as they are, and the loss is the cross-entropy of predicting the original
tokens at the picked positions only (Devlin et al. 2019). The picks are drawn from torch's global RNG,
which the engine seeds per rank and restores on --resume; validation masks with a fixed generator, so its
loss compares epochs. The model file (task `text-pretrain`) holds the encoder, the MLM head and the
vocabulary: `text classify train --model bert --init-from RUN/model.pt` starts from it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dltool.core import run as runs
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.run import RunConfig
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.text.classify import small_work_on_one_thread
from dltool.text.corpus import CorpusSpec, read_documents
from dltool.text.models import MODELS
from dltool.text.models.bert import bert_mlm
from dltool.text.tokenize import TokenizerConfig
from dltool.text.vocab import CLS, MASK, PAD, SPECIALS, Vocab, VocabConfig

TASK = "text-pretrain"
IGNORE = -100  # cross_entropy's ignore_index: positions that were not picked


@dataclass(frozen=True)
class PretrainConfig:
    inputs: tuple[str, ...]
    engine: EngineConfig
    model: str = "bert"
    text_column: str | None = None
    encoding: str = "utf-8"
    tokenizer: str = "regex"
    lower: bool = True
    strip_punct: bool = False
    subword: int = 0
    subword_model: str = "wordpiece"
    vocab_size: int = 20_000
    min_count: int = 1
    max_len: int = 64
    mask_prob: float = 0.15
    embed_dim: int | None = None
    heads: int | None = None
    layers: int | None = None
    dropout: float | None = None
    run: RunConfig = RunConfig()
    options: dict = field(default_factory=dict)

    def validate(self) -> None:
        self.engine.validate()
        pretrainable = MODELS.names(mlm="bert_mlm")
        if self.model not in pretrainable:
            raise unknown_name("pretrainable model", self.model, pretrainable)
        if not 0 < self.mask_prob < 1:
            raise OptionError(f"--mask-prob {self.mask_prob} must be between 0 and 1", "the usual value is 0.15")
        self.vocab_config()

    def vocab_config(self) -> VocabConfig:
        return VocabConfig(kind=self.subword_model if self.subword else "word", size=self.subword or self.vocab_size,
                           min_count=self.min_count, max_len=self.max_len)


def mask_tokens(ids: torch.Tensor, lengths: torch.Tensor, vocab_size: int, prob: float, generator=None):
    """(inputs, targets): BERT's 80/10/10 masking of `prob` of the real tokens; targets IGNORE elsewhere."""
    real = (ids != PAD) & (ids != CLS)
    draw = lambda: torch.rand(ids.shape, device=ids.device, generator=generator)  # noqa: E731
    picked = real & (draw() < prob)
    targets = torch.where(picked, ids, torch.full_like(ids, IGNORE))
    roll = draw()
    inputs = torch.where(picked & (roll < 0.8), torch.full_like(ids, MASK), ids)
    random_tokens = torch.randint(len(SPECIALS), vocab_size, ids.shape, device=ids.device, generator=generator)
    inputs = torch.where(picked & (roll >= 0.8) & (roll < 0.9), random_tokens, inputs)
    return inputs, targets


class MaskedLMTask(TaskHooks):
    """The engine's task for MLM pretraining (see dltool.core.train)."""

    monitor = "loss"
    monitor_mode = "min"
    channels_last = False

    def __init__(self, arch: str, arch_kwargs: dict, vocab: Vocab, mask_prob: float, seed: int):
        self.arch, self.arch_kwargs, self.vocab, self.mask_prob, self.seed = arch, arch_kwargs, vocab, mask_prob, seed

    def _masked(self, model, ids, lengths, generator=None):
        """(logits, targets) at the picked positions of one batch."""
        ids = ids[:, : int(lengths.max())]
        inputs, targets = mask_tokens(ids, lengths, len(self.vocab), self.mask_prob, generator)
        picked = targets != IGNORE
        return model(inputs, lengths, picked).float(), targets[picked]

    def loss(self, model, batch):
        logits, targets = self._masked(model, *batch)
        # a batch of very short texts may pick nothing: a zero loss that still reaches every parameter (DDP)
        return F.cross_entropy(logits, targets) if len(targets) else logits.sum() * 0.0

    def evaluate(self, model, batches) -> dict:
        """The masked-token loss and accuracy over a fixed masking of the validation texts."""
        g = torch.Generator(device=batches.tensors[0].device).manual_seed(self.seed)
        loss_sum, n, correct = 0.0, 0, 0
        for ids, lengths in batches:
            logits, targets = self._masked(model, ids, lengths, g)
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(-1) == targets).sum().item()
            n += len(targets)
        metrics = {"loss": loss_sum / max(n, 1), "accuracy": correct / max(n, 1)}
        from dltool.core import distributed as dist

        if dist.world_size() > 1:  # the count travels to combine_metrics only when there are ranks to combine
            metrics["masked_tokens"] = n
        return metrics

    def combine_metrics(self, parts) -> dict:
        # means over masked tokens, not texts: ranks' shards mask different numbers of tokens per text
        total = sum(m["masked_tokens"] for m, _ in parts)
        return {key: sum(m[key] * m["masked_tokens"] for m, _ in parts) / max(total, 1)
                for key in ("loss", "accuracy")}

    def payload(self, model) -> dict:
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "preprocess": {"vocab": self.vocab.to_dict(), "mask_prob": self.mask_prob}}


def pretrain(cfg: PretrainConfig) -> dict:
    import numpy as np

    from dltool.core.data import TensorBatches, stratified_split

    cfg.validate()
    recipe = {**cfg.options, "inputs": list(cfg.inputs)}  # saved in config.toml, compared on --resume
    device, run_dir = runs.start(cfg, TASK, recipe)
    docs = read_documents(CorpusSpec(inputs=cfg.inputs, column=cfg.text_column, encoding=cfg.encoding))
    texts = [d.text if d.text is not None else " ".join(d.tokens) for d in docs]
    tr, va = stratified_split(np.zeros(len(texts), dtype=int), cfg.run.val_split, cfg.engine.seed)
    tokenizer = TokenizerConfig(tokenizer=cfg.tokenizer, lower=cfg.lower, strip_punct=cfg.strip_punct)
    vocab = Vocab.build([texts[i] for i in tr], tokenizer, cfg.vocab_config())
    ids, lengths = vocab.encode_batch(texts)
    if int((lengths > 1).sum()) == 0:
        raise InputError("no text of the corpus has a token to mask", "check the input and --text-column")
    # the classifier's builder (bert, bert_tiny) has the shape's defaults; the MLM network takes the same
    params = inspect.signature(MODELS.get(cfg.model).builder).parameters
    defaults = {k: params[k].default for k in ("embed_dim", "heads", "layers", "dropout")}
    arch_kwargs = {"vocab_size": len(vocab), "max_len": cfg.max_len,
                   **{k: getattr(cfg, k) if getattr(cfg, k) is not None else v for k, v in defaults.items()}}
    model = bert_mlm(**arch_kwargs)
    info(f"data: {len(tr)} training texts, {0 if va is None else len(va)} validation, {vocab.kind} vocabulary of "
         f"{len(vocab)}, masking {cfg.mask_prob:.0%} of the tokens, on {device.type}")
    ids, lengths = ids.to(device), lengths.to(device)
    batch_size = cfg.run.batch_size
    train_batches = TensorBatches((ids[tr], lengths[tr]), batch_size, shuffle=True, seed=cfg.engine.seed)
    val_batches = (TensorBatches((ids[va], lengths[va]), max(256, batch_size), shuffle=False)
                   if va is not None else None)
    task = MaskedLMTask(cfg.model, arch_kwargs, vocab, cfg.mask_prob, cfg.engine.seed)
    with small_work_on_one_thread(model, device, batch_size, lengths[tr]):
        return Engine(task, model, cfg.engine, run_dir, device, recipe).fit(train_batches, val_batches)
