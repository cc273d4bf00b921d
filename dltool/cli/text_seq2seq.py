"""dltool text seq2seq train|eval|predict: encoder-decoders with attention (LSTM/GRU, Transformer) on pairs.

Thin: options in, one call into dltool.text.seq2seq, results out. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    FormatOpt,
    OutFileOpt,
    QuietOpt,
    apply_console_options,
)
from dltool.cli.train_options import engine_options, task_config

app = typer.Typer(help="Sequence to sequence (spelling to pronunciation): encoder-decoders, attention, beam search.",
                  no_args_is_help=True)

PairsArg = Annotated[list[str], typer.Argument(
    help="Pairs: source<TAB>target lines (text, .tsv, '-' stdin), or CSV/JSON Lines (TSV with a header) with --source/--target columns.")]
ModelArg = Annotated[Path, typer.Argument(help="A 'text seq2seq train' model file (model.pt) or its run folder.")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Source column of a CSV/TSV/JSON Lines input (default 'source').")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="Target column of a CSV/TSV/JSON Lines input (default 'target'); a JSON Lines list holds several right targets.")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Encoding of the input; other bytes are an error.")]
BeamOpt = Annotated[int, typer.Option("--beam", help="Beam width (1: greedy decoding).")]
LengthPenaltyOpt = Annotated[float, typer.Option("--length-penalty", help="Rank hypotheses by log-probability / length ** this (0: raw log-probability, favours short outputs).")]
MaxLenOpt = Annotated[int | None, typer.Option("--max-len", help="Most output tokens (default: twice the longest training target, plus 10).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Sources decoded together.")]
VocabHelp = "char | word (space-separated tokens, e.g. phonemes) | bpe (byte-level BPE of --vocab-size tokens)."


@app.command("train")
@engine_options(epochs=30, batch_size=64, optimizer="adamw", lr=1e-3, weight_decay=0.01, scheduler="cosine",
                warmup=200, clip_norm=1.0)
def train(
    inputs: PairsArg,
    model: Annotated[str, typer.Option("--model", "-m", help="lstm | gru (with --attention) | transformer; *_tiny for tests.")] = "lstm",
    source: SourceOpt = None,
    target: TargetOpt = None,
    source_vocab: Annotated[str, typer.Option("--source-vocab", help=f"Source tokens: {VocabHelp}")] = "char",
    target_vocab: Annotated[str, typer.Option("--target-vocab", help=f"Target tokens: {VocabHelp}")] = "char",
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="word: most words kept per side (the rest are unknown); bpe: tokens learnt.")] = 8000,
    encoding: EncodingOpt = "utf-8",
    max_len: Annotated[int, typer.Option("--max-len", help="Most tokens of a source or a target; a longer pair is refused, naming its line.")] = 256,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing", help="Share of each target's probability spread over all tokens in the training loss.")] = 0.0,
    dim: Annotated[int | None, typer.Option("--dim", help="Embedding (and Transformer) width (default: the model's).")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="transformer: attention heads.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="transformer: blocks of the encoder and of the decoder; lstm, gru: stacked layers.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="lstm, gru: hidden units.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    attention: Annotated[str | None, typer.Option("--attention", help="lstm, gru: none (the final state only) | bahdanau (additive) | luong (general; default).")] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--no-bidirectional", help="lstm, gru: read the source both ways (default: yes).")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Separate validation pairs (overrides --val-split, which holds out a share of the sources).", dir_okay=False)] = None,
    *,
    options: dict,
):
    """Train an encoder-decoder on pairs; both vocabularies travel in the model file.

    Example: dltool text seq2seq train sample_data/text/g2p/train.tsv --target-vocab word --out runs/g2p
    """
    options["inputs"] = tuple(options["inputs"])
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.text import seq2seq

    emit_object(seq2seq.train(task_config(seq2seq.TrainConfig, options)), options["fmt"])


@app.command("eval")
def evaluate(
    model: ModelArg,
    inputs: PairsArg,
    source: SourceOpt = None,
    target: TargetOpt = None,
    encoding: EncodingOpt = "utf-8",
    beam: BeamOpt = 5,
    length_penalty: LengthPenaltyOpt = 1.0,
    max_len: MaxLenOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Exact match (wer = 1 - exact), token error rate (PER for G2P), BLEU and chrF as one JSON object.

    A prediction is right if it equals any target of its source. Per-length figures go to stderr.

    Example: dltool text seq2seq eval runs/g2p/model.pt sample_data/text/g2p/test.tsv --beam 5
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.text import seq2seq

    opts = seq2seq.DecodeOptions(beam=beam, length_penalty=length_penalty, max_len=max_len, batch_size=batch_size)
    emit_object(seq2seq.evaluate(seq2seq.EvalConfig(model=model, inputs=tuple(inputs), source=source, target=target,
                                                    encoding=encoding, decode=opts, device=device)), fmt)


@app.command("predict")
def predict(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Sources, one a line (files, or '-'/nothing: stdin), or a table's --source column.")] = None,
    source: SourceOpt = None,
    encoding: EncodingOpt = "utf-8",
    beam: BeamOpt = 5,
    nbest: Annotated[int, typer.Option("--nbest", help="Also list the K best hypotheses with their log-probabilities (K <= --beam).")] = 1,
    length_penalty: LengthPenaltyOpt = 1.0,
    max_len: MaxLenOpt = None,
    plot_attention: Annotated[Path | None, typer.Option("--plot-attention", help="Draw each input's attention (source tokens against output tokens) as a PNG in this folder.", file_okay=False)] = None,
    output: OutFileOpt = "-",
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    fmt: Annotated[str, typer.Option("--format", help="auto|table|jsonl|csv|json|text (text: the predictions alone, one a line).")] = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """One JSON line {source, prediction, score, nbest?} per source (score: log-probability); or text.

    Example: dltool text seq2seq predict runs/g2p/model.pt words.txt --nbest 3   (or: echo photosynthesis | dltool text seq2seq predict runs/g2p/model.pt --format text)
    """
    apply_console_options(quiet=quiet, fmt=None if fmt == "text" else fmt)
    from dltool.core.output import write_records
    from dltool.text import seq2seq

    opts = seq2seq.DecodeOptions(beam=beam, length_penalty=length_penalty, max_len=max_len, nbest=nbest,
                                 batch_size=batch_size)
    records = seq2seq.predict(seq2seq.PredictConfig(model=model, inputs=tuple(inputs or ["-"]), source=source,
                                                    encoding=encoding, decode=opts, plot_attention=plot_attention,
                                                    device=device))
    if fmt != "text":
        write_records(records, output, fmt)
        return
    text = "".join(r["prediction"] + "\n" for r in records)
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from dltool.core.io import atomic_open

    with atomic_open(output) as f:
        f.write(text)
