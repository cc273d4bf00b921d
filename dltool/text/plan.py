"""The planned defaults of `text classify train` (dltool.core.plan): a fingerprint of the labelled texts
(count, classes and the smallest one's share, token lengths, distinct words) and the values it plans for
the options the user did not set. The rules and the figures they come from: README, "Planned defaults".
"""

from __future__ import annotations

import math
from collections import Counter

#: token lengths beyond this are cut even when the texts are longer: a step's time grows with it (R8's
#: median story has 66 tokens, its 95th percentile 355)
MAX_LEN_CAP = 128
#: the models that get word dropout, and those that get dropout 0.5 (the ones measured: README, Planned defaults)
WORD_DROPOUT_FAMILIES = ("cnn", "fasttext", "rnn", "lstm", "gru")
DROPOUT_FAMILIES = (*WORD_DROPOUT_FAMILIES, "transformer")
#: the networks that read TF-IDF n-grams, not token ids (dltool.text.models.bag): no vocabulary, tokenizer or
#: length of theirs to set, no token to drop (their dropout is 0.5 already)
BAG_MODELS = ("mlp", "mlp_tiny")
#: the optimizer steps a run is planned to take (its epochs follow from the set's size)
UPDATES = 1000


def fingerprint(texts: list[str], labels: list[str], tokenizer) -> dict:
    """What the plan is made from; `tokenizer` a dltool.text.tokenize.TokenizerConfig (the run's)."""
    from dltool.text.tokenize import Tokenizer

    split = Tokenizer(tokenizer)
    words, lengths = set(), []
    for t in texts:
        tokens = split(t)
        lengths.append(len(tokens))
        words.update(tokens)
    lengths.sort()
    counts = Counter(labels)
    return {"texts": len(texts), "classes": len(counts),
            "smallest_class": round(min(counts.values()) / len(texts), 4),
            "tokens_median": lengths[len(lengths) // 2], "tokens_p95": lengths[min(len(lengths) - 1,
                                                                                    int(0.95 * len(lengths)))],
            "words": len(words)}


def plan_classify(fp: dict, cfg) -> dict:
    """Proposed values for a neural text classifier (the user's flags win over them: dltool.core.plan)."""
    from dltool.core.plan import user_set

    n = fp["texts"]
    plan = {"batch_size": 32 if n < 4000 else 64}
    if cfg.engine.time_limit is None:  # with --time-limit the budget sets the epochs (dltool.core.budget)
        batch = cfg.run.batch_size if "batch_size" in user_set(cfg) else plan["batch_size"]
        steps_per_epoch = math.ceil(n * (1 - cfg.run.val_split) / batch)
        # about UPDATES optimizer steps in all, between 8 and 30 epochs: small sets get more passes
        plan["epochs"] = max(8, min(30, round(UPDATES / max(1, steps_per_epoch))))
    starts_pretrained = cfg.pretrained is not None or cfg.init_from is not None
    if not starts_pretrained and cfg.model not in BAG_MODELS:
        # the texts' 95th percentile in tokens (+ CLS), a multiple of 8, at least 16
        plan["max_len"] = min(MAX_LEN_CAP, max(16, 8 * math.ceil((fp["tokens_p95"] + 1) / 8)))
        if cfg.model in WORD_DROPOUT_FAMILIES:  # the sentiment sentences: cnn +6 points, transformer -1.5
            plan["word_dropout"] = 0.2
        if cfg.model in DROPOUT_FAMILIES:  # not the *_tiny test models, nor bert (not measured)
            plan["dropout"] = 0.5
    return plan


# -- text lm train ----------------------------------------------------------------------------------

#: the dropout planned on a small corpus, by model and mode (not the *_tiny test models, nor --pretrained).
#: gpt without dropout over-fit names (230k characters; train 1.72 against validation 2.02 nats at epoch 61;
#: nanoGPT's 1M-character Shakespeare takes 0.2). A recurrent model learns whole lines by heart: on names, in
#: 10 minutes, the 2-layer lstm with 0.1 reached 1.903 at epoch 10 and climbed back to 1.99 (before the loss
#: weighed every token the same: dltool.text.lm.LMTask); with 0.3 it ended at 1.886, but 45% of its samples'
#: probability was on training names (57% of 200 samples new); with 0.5 at 1.895 and 33% (69% new), still
#: improving at its last epoch. Windows of a stream at random offsets are not learnt by heart: the lstm on
#: lee_background.cor reached 1.926 bits a character with 0.1 and 1.963 with 0.3 (its training and validation
#: losses equal). gru and rnn take the lstm's values (not measured apart). --word-dropout is not planned: 0.2
#: with dropout 0.3 lowered the names loss to 1.885 but left 36% of the probability on training names (README).
_RECURRENT = {"lines": 0.5, "stream": 0.1}
LM_DROPOUT = {"gpt": {"lines": 0.1, "stream": 0.1}, "lstm": _RECURRENT, "gru": _RECURRENT, "rnn": _RECURRENT}
#: from this many training tokens on a corpus is not small: no dropout
LM_SMALL_CORPUS = 10_000_000
#: the training tokens a language model is planned to read (its epochs follow from the corpus size): about 6
#: minutes of the default gpt on an idle 2-core machine; the command's fixed 10 epochs were 2.3M tokens of
#: names but only 3.2M of a 300k-character stream (40 steps of 64 windows an epoch)
LM_TOKENS = 8_000_000
LM_EPOCHS = (10, 200)
#: the tokens one optimizer step is planned to read, and the batch's bounds in sequences: 64 windows of a
#: 128-character stream were 8k tokens a step and 40 steps an epoch, and the default gpt ended lee_background.cor
#: at 2.89 bits per character where 8 windows a step reach 2.44 (README); 64 names are about 500 tokens
LM_STEP_TOKENS = 1024
LM_BATCH = (8, 64)


def fingerprint_lm(mode: str, train, vocab_size: int, context: int) -> dict:
    """What the plan of `text lm train` is made from: the training part as `dltool.text.lm.prepare` returns it
    (lines mode: the (x, y) tensors; stream mode: the token ids)."""
    if mode == "lines":
        tokens, sequences = int((train[1] >= 0).sum()), len(train[0])
    else:
        tokens, sequences = len(train), max(1, (len(train) - 1) // context)
    return {"mode": mode, "sequences": sequences, "tokens": tokens, "vocab": vocab_size, "context": context}


def plan_lm(fp: dict, cfg) -> dict:
    """Proposed values for `text lm train` (the user's flags win over them: dltool.core.plan)."""
    low, high = LM_BATCH
    plan = {"batch_size": max(low, min(high, round(LM_STEP_TOKENS * fp["sequences"] / max(1, fp["tokens"]))))}
    if cfg.engine.time_limit is None:  # with --time-limit the budget sets the epochs (dltool.core.budget)
        low, high = LM_EPOCHS
        plan["epochs"] = max(low, min(high, round(LM_TOKENS / max(1, fp["tokens"]))))
    if cfg.model in LM_DROPOUT and cfg.pretrained is None:
        plan["dropout"] = LM_DROPOUT[cfg.model][fp["mode"]] if fp["tokens"] < LM_SMALL_CORPUS else 0.0
    return plan


# -- text seq2seq train -----------------------------------------------------------------------------

#: from this many training pairs on, a step reads the larger batch: G2P's 118,680 words in batches of 64 left a
#: 2-core CPU underused (the lstm with attention reads 1.3x the pairs a second in batches of 256, 12,000 words
#: for 2 epochs on 2 threads, float32); both batches see enough steps in a budget of minutes. From there on, a CPU
#: that multiplies bfloat16 natively also trains under --amp (G2P's lstm in batches of 256: 1.68x the pairs a
#: second, the same validation loss; benchmarks/cpu_amp.py); small data keeps float32, exact on tiny models
SEQ2SEQ_LARGE = 50_000
SEQ2SEQ_BATCH = (64, 256)
#: the learning rate of a batch of 64 for each family; a larger batch takes lr * sqrt(batch / 64). The recurrent
#: models take twice the Transformer's: G2P, lstm with attention, batches of 256, 2 epochs of the full dictionary
#: on one thread (10 minutes), validation exact 0.593 at lr 0.002, 0.601 at 0.004, 0.587 at 0.006
SEQ2SEQ_LR = {"recurrent": 2e-3, "transformer": 1e-3}
#: the dropout of lstm and gru from SEQ2SEQ_LARGE pairs on, where their own 0.2 holds back a run of minutes: G2P's
#: full dictionary, 30 minutes (13-14 epochs), test WER 0.241 / PER 0.055 at 0.1 (beam 5) against 0.252 / 0.057 at
#: 0.2 and 0.266 / 0.061 at 0.3; on its 6,000-word sample (5 minutes, one thread) 0.2 stays: 0.465 against 0.473
SEQ2SEQ_LARGE_DROPOUT = 0.1


def fingerprint_seq2seq(train, device: str) -> dict:
    """What the plan of `text seq2seq train` is made from: the training tensors of dltool.text.seq2seq.prepare,
    and whether the run is on a CPU that multiplies bfloat16 natively."""
    from dltool.core.device import native_cpu_bfloat16, runs_on_cpu

    src, src_len, _, tgt_out = train
    return {"pairs": len(src), "source_tokens": round(float(src_len.float().mean()), 1),
            "target_tokens": round(float((tgt_out >= 0).sum(1).float().mean()), 1),
            "cpu_bfloat16": runs_on_cpu(device) and native_cpu_bfloat16()}


def plan_seq2seq(fp: dict, cfg) -> dict:
    """Proposed batch size, learning rate, AMP and (recurrent models on large data) dropout for `text seq2seq
    train` (the user's flags win: dltool.core.plan); a batch the user set still gets its learning rate."""
    from dltool.core.plan import user_set
    from dltool.text.models.seq2seq_rnn import CELLS

    small, large = SEQ2SEQ_BATCH
    plan = {"batch_size": large if fp["pairs"] >= SEQ2SEQ_LARGE else small}
    batch = cfg.run.batch_size if "batch_size" in user_set(cfg) else plan["batch_size"]
    family = "recurrent" if cfg.model.removesuffix("_tiny") in CELLS else "transformer"
    plan["lr"] = round(SEQ2SEQ_LR[family] * math.sqrt(batch / small), 6)
    if fp["pairs"] >= SEQ2SEQ_LARGE and fp.get("cpu_bfloat16"):
        plan["amp"] = True
    if fp["pairs"] >= SEQ2SEQ_LARGE and cfg.model in CELLS:  # not the *_tiny test models (no dropout)
        plan["dropout"] = SEQ2SEQ_LARGE_DROPOUT
    return plan
