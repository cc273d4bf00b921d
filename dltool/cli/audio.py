"""dltool audio info | spectrogram | mfcc | classify train|eval|predict|export.

Thin: options -> a frozen config -> one call into dltool.audio -> write. Nothing heavy is imported
at module level.
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
    TableFormatOpt,
    apply_console_options,
)
from dltool.cli.train_options import (
    BatchSizeOpt,
    InferNprocOpt,
    ShardOpt,
    engine_options,
    task_config,
)

app = typer.Typer(help="Audio: metadata, spectrograms, MFCCs, classification.", no_args_is_help=True)

InputsArg = Annotated[list[str] | None, typer.Argument(
    help="Audio files (wav, flac, ogg, mp3) or folders; '-' or nothing: paths on stdin.")]
SrOpt = Annotated[int, typer.Option("--sr", help="Resample every clip to this rate (Hz), on the device.")]
DurationOpt = Annotated[float | None, typer.Option(
    "--duration", help="Crop or zero-pad every clip to this many seconds (default: keep each clip's length).")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable files with a warning (counted) instead of failing.")]
NFftOpt = Annotated[int, typer.Option("--n-fft", help="FFT size (samples).")]
HopOpt = Annotated[int | None, typer.Option("--hop", help="Hop between frames (samples; default n_fft/4).")]
WinLengthOpt = Annotated[int | None, typer.Option("--win-length", help="Window length (samples; default n_fft).")]
WindowOpt = Annotated[str, typer.Option("--window", help="hann|hamming|blackman|bartlett|rect")]
NMelsOpt = Annotated[int, typer.Option("--n-mels", help="Mel bands.")]
FminOpt = Annotated[float | None, typer.Option("--fmin", help="Lowest frequency, Hz (default 0; CQT: C1 = 32.7 Hz).")]
FmaxOpt = Annotated[float | None, typer.Option("--fmax", help="Highest frequency, Hz (default: the Nyquist frequency).")]
PoolOpt = Annotated[str, typer.Option(
    "--pool", help="none|mean|meanstd|minmax: statistics over time as a feature table on stdout (or -o).")]
NpyOutOpt = Annotated[Path | None, typer.Option("--out", help="Write one .npy per file here (features x frames), mirroring the input tree.")]
PlotDirOpt = Annotated[Path | None, typer.Option("--plot", help="Write one PNG per file here, like librosa.display.specshow.")]


def _features(opts: dict, kind: str):
    from dltool.audio.features import FeatureConfig

    keys = ("sr", "n_fft", "hop", "win_length", "window", "n_mels", "fmin", "fmax", "power", "db", "n_mfcc",
            "deltas", "n_bins")
    return FeatureConfig(kind=kind, **{k: opts[k] for k in keys if k in opts})


def _analyze(opts: dict, kind: str) -> None:
    from dltool.audio import analyze
    from dltool.core.inputs import parse_shard
    from dltool.core.tables import write_table

    cfg = analyze.AnalyzeConfig(inputs=tuple(opts["inputs"] or ["-"]), features=_features(opts, kind),
                                duration=opts["duration"], pool=opts["pool"], out=opts["out"], plot=opts["plot"],
                                output=opts["output"], fmt=opts["fmt"], skip_bad=opts["skip_bad"],
                                device=opts["device"], shard=parse_shard(opts["shard"]))
    table = analyze.compute(cfg)
    if table is not None:  # None: nothing pooled, or a rank other than 0
        write_table(table, cfg.output, cfg.fmt)


@app.command("info")
def info(
    inputs: InputsArg = None,
    output: OutFileOpt = "-",
    skip_bad: SkipBadOpt = False,
    device: DeviceOpt = "auto",
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """One row per file: path, sample rate, channels, frames, duration, format, subtype, Nyquist frequency.

    Reads file headers only, on the CPU (--device is checked, and a GPU is said to be unused).

    Example: dltool audio info sample_data/audio/test --format csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    from dltool.core.device import placed_on

    placed_on(device, "audio info")  # a --device that is not there is still an error
    from dltool.audio import analyze
    from dltool.core.tables import write_table

    write_table(analyze.info(inputs or ["-"], skip_bad=skip_bad), output, fmt)


@app.command("spectrogram")
def spectrogram(
    inputs: InputsArg = None,
    kind: Annotated[str, typer.Option("--kind", help="stft|mel|cqt (CQT: librosa, on the CPU).")] = "mel",
    sr: SrOpt = 16000,
    duration: DurationOpt = None,
    n_fft: NFftOpt = 512,
    hop: HopOpt = None,
    win_length: WinLengthOpt = None,
    window: WindowOpt = "hann",
    n_mels: NMelsOpt = 64,
    n_bins: Annotated[int, typer.Option("--n-bins", help="CQT only: frequency bins (12 per octave).")] = 84,
    fmin: FminOpt = None,
    fmax: FmaxOpt = None,
    power: Annotated[float, typer.Option("--power", help="Exponent of the magnitude: 1 magnitude, 2 power.")] = 2.0,
    db: Annotated[bool, typer.Option("--db/--no-db", help="In decibels (80 dB below each clip's peak at most).")] = True,
    pool: PoolOpt = "none",
    out: NpyOutOpt = None,
    plot: PlotDirOpt = None,
    output: OutFileOpt = "-",
    skip_bad: SkipBadOpt = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """STFT, mel or constant-Q spectrograms: .npy per file, pictures, or a pooled feature table.

    Example: dltool audio spectrogram sample_data/audio/test --kind mel --plot pictures/ --out mel/
    """
    apply_console_options(quiet=quiet, fmt=fmt if pool != "none" else None, table_output=output)
    _analyze(dict(locals()), kind)


@app.command("mfcc")
def mfcc(
    inputs: InputsArg = None,
    n_mfcc: Annotated[int, typer.Option("--n-mfcc", help="Coefficients per frame.")] = 13,
    deltas: Annotated[int, typer.Option("--deltas", help="0|1|2: also the first (and second) time derivatives.")] = 0,
    sr: SrOpt = 16000,
    duration: DurationOpt = None,
    n_fft: NFftOpt = 512,
    hop: HopOpt = None,
    win_length: WinLengthOpt = None,
    window: WindowOpt = "hann",
    n_mels: NMelsOpt = 64,
    fmin: FminOpt = None,
    fmax: FmaxOpt = None,
    pool: PoolOpt = "none",
    out: NpyOutOpt = None,
    plot: PlotDirOpt = None,
    output: OutFileOpt = "-",
    skip_bad: SkipBadOpt = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """MFCCs (log-mel + DCT), optionally with deltas: .npy per file, pictures, or a pooled feature table.

    Example: dltool audio mfcc sample_data/audio/train --pool mean | dltool reduce pca - -n 2
    """
    apply_console_options(quiet=quiet, fmt=fmt if pool != "none" else None, table_output=output)
    _analyze(dict(locals()), "mfcc")


# -- classify --------------------------------------------------------------------------------------

classify = typer.Typer(help="Audio classification: train, eval, predict, export.", no_args_is_help=True)
app.add_typer(classify, name="classify")

DataArg = Annotated[Path, typer.Argument(help="Class folders (root/<class>/*.wav) or a CSV with path,label.")]
ModelArg = Annotated[Path, typer.Argument(help="A model file (model.pt) or its run folder.")]


@classify.command("train")
@engine_options(epochs=30, batch_size=32, scheduler="onecycle")
def train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="conv1d|gru (MFCC frames) | cnn|resnet18 (log-mel); *_tiny for tests.")] = "conv1d",
    feature_type: Annotated[str | None, typer.Option("--features", help="logmel|mfcc (default: the model's).")] = None,
    sr: SrOpt = 16000,
    duration: Annotated[float, typer.Option("--duration", help="Crop or zero-pad every clip to this many seconds.")] = 1.0,
    n_fft: NFftOpt = 512,
    hop: HopOpt = None,
    n_mels: NMelsOpt = 64,
    n_mfcc: Annotated[int, typer.Option("--n-mfcc", help="MFCCs per frame (with --features mfcc).")] = 20,
    augment: Annotated[str | None, typer.Option("--augment", help="Comma-separated ops: gain,shift,noise (waveform), freqmask,timemask (SpecAugment); '' for none.")] = "shift,freqmask,timemask",
    activation: Annotated[str, typer.Option("--activation", help="cnn, conv1d: relu|leaky_relu|prelu|elu|selu|gelu|silu|sigmoid|tanh|softplus|softsign")] = "relu",
    dropout: Annotated[float, typer.Option("--dropout", help="cnn, conv1d: dropout before the head.")] = 0.25,
    width: Annotated[int | None, typer.Option("--width", help="cnn, conv1d: channels of the first block (default: the model's).")] = None,
    skip_bad: SkipBadOpt = False,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (peak of the one-cycle schedule).")] = 0.003,
    val_split: Annotated[float, typer.Option("--val-split", help="Share of the training clips held out (stratified, seeded) for validation; 0 (default): train on all and keep the last epoch.")] = 0.0,
    *,
    options: dict,
):
    """Train an audio classifier; features are computed on the device inside every step.

    Example: dltool audio classify train sample_data/audio/train --sr 8000 --augment shift,noise,freqmask,timemask --out runs/digits-audio
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.audio import classify as task
    from dltool.core.output import emit_object

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@classify.command("eval")
def evaluate(
    model: ModelArg,
    data: DataArg,
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json, confusion.json and confusion.png here.")] = None,
    batch_size: BatchSizeOpt = 256,
    skip_bad: SkipBadOpt = False,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a classifier: accuracy, macro precision/recall/F1, per-class metrics, confusion matrix.

    Example: dltool audio classify eval runs/digits-audio/model.pt sample_data/audio/test
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.audio import classify as task
    from dltool.core.classification import EvalConfig
    from dltool.core.output import emit_object

    emit_object(task.evaluate(EvalConfig(model=model, data=data, out=out, batch_size=batch_size, device=device,
                                         skip_bad=skip_bad)), fmt)


@classify.command("predict")
def predict(
    model: ModelArg,
    inputs: InputsArg = None,
    output: OutFileOpt = "-",
    topk: Annotated[int, typer.Option("--topk", help="How many ranked classes to list per clip.")] = 3,
    embed: Annotated[bool, typer.Option("--embed", help="Write penultimate-layer features as a feature table instead.")] = False,
    batch_size: BatchSizeOpt = 256,
    skip_bad: SkipBadOpt = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Predict labels as JSON Lines {path,label,score,topk}, or features with --embed.

    Example: dltool audio classify predict runs/digits-audio sample_data/audio/test/7 --topk 2
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output if embed else None)
    from dltool.audio import classify as task
    from dltool.core.classification import PredictConfig
    from dltool.core.inputs import parse_shard
    from dltool.core.output import write_predictions

    cfg = PredictConfig(model=model, inputs=tuple(inputs or ["-"]), topk=topk, embed=embed, batch_size=batch_size,
                        device=device, skip_bad=skip_bad, shard=parse_shard(shard))
    write_predictions(task.predict(cfg), output, fmt)


@classify.command("export")
def export(
    model: ModelArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="model.onnx: takes mono waveforms, returns logits.")],
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Export a classifier to ONNX, from the waveform (the features are computed inside the graph).

    Example: dltool audio classify export runs/digits-audio/model.pt -o digits-audio.onnx
    """
    apply_console_options(quiet=quiet)
    from dltool.audio import classify as task
    from dltool.core.output import emit_object

    emit_object(task.export(model, output), "auto")
