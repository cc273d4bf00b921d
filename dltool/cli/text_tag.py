"""dltool text tag train|eval|predict: a tag for every token (part of speech, named entities, chunks).

Thin: options -> dltool.text.tag's configs -> one call -> output. Nothing heavy at module level.
"""

from __future__ import annotations

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

app = typer.Typer(help="Sequence taggers: BiLSTM, BiLSTM-CRF, Transformer over words and characters; BERT.",
                  no_args_is_help=True)

TaggedArg = Annotated[Path, typer.Argument(
    help="Tagged sentences: CoNLL-U (.conllu), CoNLL columns (token ... tag, a blank line between sentences) or "
         "JSON Lines {tokens, tags} (.jsonl).")]
InputFormatOpt = Annotated[str, typer.Option(
    "--input-format", help="auto (by suffix: .conllu, .jsonl, else CoNLL columns) | conllu | conll | jsonl.")]
ColumnOpt = Annotated[str | None, typer.Option(
    "--column", help="The tag column: upos|xpos|deprel of CoNLL-U (default upos); in CoNLL columns its number, "
                     "the token being 1 (default: the last).")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Encoding of the input; other bytes are an error.")]
ModelFileArg = Annotated[Path, typer.Argument(help="A model file (model.pt) or its run folder.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Sentences per forward pass.")]


@app.command("train")
# adamw under a one-cycle schedule to 5e-3 for 30 epochs: 5 points over the baseline on the Turkish UD sample (README)
@engine_options(epochs=30, batch_size=32, optimizer="adamw", scheduler="onecycle", lr=0.005, weight_decay=0.01,
                clip_norm=5.0)
def train(
    data: TaggedArg,
    model: Annotated[str, typer.Option("--model", "-m", help="bilstm | bilstm-crf | transformer | bert (with --pretrained); *_tiny for tests.")] = "bilstm-crf",
    input_format: InputFormatOpt = "auto",
    column: ColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    lower: Annotated[bool, typer.Option("--lower/--no-lower", help="Look words up lower-cased (the character features keep the case).")] = True,
    min_count: Annotated[int, typer.Option("--min-count", help="Training words seen fewer times become UNK (which then learns what unknown words look like).")] = 2,
    embed_dim: Annotated[int | None, typer.Option("--embed-dim", help="Word embedding width (default: the model's).")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="bilstm, bilstm-crf: hidden units per direction.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Recurrent or encoder layers.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="transformer: attention heads.")] = None,
    char_dim: Annotated[int | None, typer.Option("--char-dim", help="Character embedding width of the per-word character CNN (0: no character features; default: the model's).")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="bert: fine-tune a local Hugging Face BERT folder (config.json, weights, vocab.txt), its word pieces too; never downloads; needs dltool[hf].")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="A separate tagged validation file (overrides --val-split).", dir_okay=False)] = None,
    *,
    options: dict,
):
    """Train a tagger; the words, characters and tag set are saved in the model file.

    Example: dltool text tag train sample_data/text/ud_turkish/train.conllu --column upos --out runs/tr-pos
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.text import tag as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@app.command("eval")
def evaluate(
    model: ModelFileArg,
    data: TaggedArg,
    input_format: InputFormatOpt = "auto",
    column: Annotated[str | None, typer.Option("--column", help="The tag column (default: the one the model was trained on).")] = None,
    encoding: EncodingOpt = "utf-8",
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json, confusion.json and confusion.png here.")] = None,
    batch_size: BatchOpt = 256,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a tagger: token accuracy, per-tag table, confusion matrix; entity F1 for BIO tags.

    Also the accuracy on words outside the vocabulary; entity precision/recall/F1 (overall and per type)
    by seqeval when the tags are BIO/BIOES.

    Example: dltool text tag eval runs/tr-pos sample_data/text/ud_turkish/test.conllu --out runs/tr-pos/eval
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.text import tag as task

    emit_object(task.evaluate(task.EvalConfig(model=model, data=data, input_format=input_format, column=column,
                                              encoding=encoding, out=out, batch_size=batch_size, device=device)), fmt)


@app.command("predict")
def predict(
    model: ModelFileArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Raw text (one sentence a line), or pre-tokenized .conllu/.conll/.jsonl; '-' or nothing: stdin.")] = None,
    input_format: Annotated[str, typer.Option("--input-format", help="auto (by suffix: .conllu, .jsonl, .conll/.tsv/.iob/.bio; else raw text) | text | conllu | conll | jsonl.")] = "auto",
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="Raw text: regex|treebank|wordpunct|whitespace (dltool text tokenize's).")] = "regex",
    entities: Annotated[bool, typer.Option("--entities", help="Also list each sentence's entity spans {type, start, end, text} (BIO/BIOES models).")] = False,
    out_format: Annotated[str, typer.Option("--format", help="jsonl: {id, tokens, tags, scores} a sentence | conll: token TAB tag lines.")] = "jsonl",
    output: OutFileOpt = "-",
    encoding: EncodingOpt = "utf-8",
    batch_size: BatchOpt = 256,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Tag sentences: JSON Lines {id, tokens, tags, scores}, or CoNLL columns.

    scores: each chosen tag's probability (a CRF's marginal, else the softmax).

    Example: dltool text tag predict runs/tr-pos sentences.txt --tokenizer whitespace   (or pipe text in)
    """
    apply_console_options(quiet=quiet)
    from dltool.core.errors import OptionError
    from dltool.core.io import atomic_open
    from dltool.text import tag as task
    from dltool.text.conll import conll_lines

    if out_format not in ("jsonl", "conll"):
        raise OptionError(f"--format {out_format} is not one of jsonl, conll")
    if entities and out_format == "conll":
        raise OptionError("--entities lists spans in JSON Lines records; CoNLL columns have no place for them",
                          "drop --entities or use --format jsonl")
    records = task.predict(task.PredictConfig(model=model, inputs=tuple(inputs or ["-"]), input_format=input_format,
                                              tokenizer=tokenizer, encoding=encoding, entities=entities,
                                              batch_size=batch_size, device=device))
    if out_format == "jsonl":
        from dltool.core.output import write_records

        write_records(records, output, "jsonl")
        return
    with atomic_open(output) as f:
        for rec in records:
            f.write(conll_lines(rec["tokens"], rec["tags"]))
