"""dltool text lm train|eval|sample|score: language models that write (GPT, LSTM/GRU/RNN, bigram).

Thin: options in, one call into dltool.text.lm, results out. Nothing heavy is imported at module level.
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
    SeedOpt,
    apply_console_options,
)
from dltool.cli.train_options import engine_options, task_config

app = typer.Typer(help="Language models: train a GPT or an LSTM on text, then sample, score and evaluate it.",
                  no_args_is_help=True)

CorpusArg = Annotated[list[str], typer.Argument(
    help="Text: files of one item a line (lines mode) or running text (stream mode), CSV/TSV/JSON Lines with --column; '-' reads stdin.")]
ModelArg = Annotated[Path, typer.Argument(help="A 'text lm train' model file (model.pt) or its run folder.")]
ColumnOpt = Annotated[str | None, typer.Option("--column", help="Text column of a CSV/TSV/JSON Lines input (default 'text').")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Encoding of the input; other bytes are an error.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Sequences per forward pass.")]


@app.command("train")
@engine_options(epochs=10, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.01, scheduler="cosine",
                warmup=100, clip_norm=1.0)
def train(
    inputs: CorpusArg,
    model: Annotated[str, typer.Option("--model", "-m", help="lstm|gru|rnn | gpt | bigram (counts: the floor); *_tiny for tests.")] = "lstm",
    mode: Annotated[str, typer.Option("--mode", help="lines: each line one sequence (names, commands); stream: the corpus as one text, random windows of --context.")] = "lines",
    vocab: Annotated[str, typer.Option("--vocab", help="char (default, small corpora) | word | bpe (byte-level BPE of --vocab-size tokens, trained on the text).")] = "char",
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="--vocab word: most words kept (the rest are unknown); bpe: tokens learnt.")] = 20_000,
    column: ColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    context: Annotated[int | None, typer.Option("--context", help="Tokens a training sequence holds (default: the longest line + 1 in lines mode, 128 in stream mode); a GPT's positions.")] = None,
    dim: Annotated[int | None, typer.Option("--dim", help="Embedding (and GPT) width (default: the model's).")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="gpt: attention heads.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="gpt: blocks; rnn, lstm, gru: stacked layers.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="rnn, lstm, gru: hidden units.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    word_dropout: Annotated[float, typer.Option("--word-dropout", help="Replace each training input token by the unknown one with this probability (--vocab char|word; 0: off).")] = 0.0,
    repeat_rate: Annotated[str, typer.Option("--repeat-rate", help="lines mode: how often a new line repeats a training line; auto: as often as the validation lines do (the model is then a mixture of the network's repeats and new lines: README), off: the network alone, or a share in (0, 1).")] = "auto",
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="Fine-tune a local Hugging Face GPT-2 folder (its tokenizer too); never downloads; needs dltool[hf].")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="A separate validation text (overrides --val-split, which takes the tail).", dir_okay=False)] = None,
    *,
    options: dict,
):
    """Train a language model; the vocabulary travels in the model file, so sample and score need no flags.

    Example: dltool text lm train sample_data/text/names/train.txt --val sample_data/text/names/test.txt --out runs/names
    """
    options["inputs"] = tuple(options["inputs"])
    if options["pretrained"] is not None and "model" not in options["given"]:
        options["model"] = "gpt"  # a --pretrained folder is a GPT-2; config.toml says so
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.text import lm

    emit_object(lm.train(task_config(lm.TrainConfig, options)), options["fmt"])


@app.command("eval")
def evaluate(
    model: ModelArg,
    inputs: CorpusArg,
    column: ColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Loss in nats per token, perplexity and bits per character on new text, as one JSON object.

    Example: dltool text lm eval runs/names/model.pt sample_data/text/names/test.txt
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.text import lm

    emit_object(lm.evaluate(lm.EvalConfig(model=model, inputs=tuple(inputs), column=column, encoding=encoding,
                                          batch_size=batch_size, device=device)), fmt)


@app.command("sample")
def sample(
    model: ModelArg,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue ('-': one prompt a line from stdin).")] = "",
    n: Annotated[int, typer.Option("-n", help="Samples per prompt (lines mode: new lines).")] = 1,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Most tokens written per sample (default: the context in lines mode, 256 in stream mode).")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Below 1: safer text, above: wilder; 0 takes the likeliest token.")] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Sample among the k likeliest tokens only.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Sample among the likeliest tokens that hold this share of the probability (nucleus).")] = None,
    stop: Annotated[str | None, typer.Option("--stop", help="End a sample where it writes this text (left out).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rerun the whole sequence for every token (for comparison: slower).")] = False,
    output: OutFileOpt = "-",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Write text: streamed on a terminal; piped, one JSON line {prompt, text, tokens} a sample.

    Example: dltool text lm sample runs/names/model.pt -n 20    (or --prompt "jo" --temperature 0.8)
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import resolve_format, write_records
    from dltool.text import lm

    prompts = (prompt,)
    if prompt == "-":
        from dltool.text.lm import read_texts

        prompts = tuple(read_texts(["-"], None, "utf-8"))
    cfg = lm.SampleConfig(model=model, prompts=prompts, n=n, max_tokens=max_tokens, temperature=temperature,
                          top_k=top_k, top_p=top_p, stop=stop, seed=seed, cache=not no_cache, device=device)
    if output == "-" and sys.stdout.isatty() and resolve_format(fmt) == "table":
        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        lm.sample(cfg, stream=show)
        return
    write_records(lm.sample(cfg), output, "jsonl" if fmt == "auto" else fmt)


@app.command("score")
def score(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Lines to score: files, CSV/TSV/JSON Lines with --column; '-' or nothing: stdin.")] = None,
    column: ColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    output: OutFileOpt = "-",
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """One JSON line {text, logprob, tokens, ppl} per input line: rank candidates, find outliers in logs.

    Example: dltool text lm score runs/names/model.pt candidates.txt | sort -t: -k3 -g
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import write_records
    from dltool.text import lm

    cfg = lm.ScoreConfig(model=model, inputs=tuple(inputs or ["-"]), column=column, encoding=encoding,
                         batch_size=batch_size, device=device)
    write_records(list(lm.score(cfg)), output, fmt)
