"""dltool series forecast train|eval|predict | baseline.

Thin: options -> a frozen config -> one call into dltool.series -> write. Nothing heavy is imported
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
from dltool.cli.train_options import BatchSizeOpt, engine_options, task_config

app = typer.Typer(help="Time series: forecasting networks beside the classical baselines.", no_args_is_help=True)
forecast = typer.Typer(help="Forecasting networks: train, eval, predict.", no_args_is_help=True)
app.add_typer(forecast, name="forecast")

DataArg = Annotated[str, typer.Argument(help="Table of the series: CSV, JSON Lines or .npz, one row per time "
                                             "(and series); '-' reads stdin.")]
ModelArg = Annotated[Path, typer.Argument(help="A model file (model.pt) or its run folder.")]
TimeOpt = Annotated[str, typer.Option("--time", help="Time column: dates (ISO) or integer steps.")]
TargetOpt = Annotated[str, typer.Option("--target", help="Column(s) to forecast, comma-separated.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Column naming the series, for many series in one table (one global model).")]
FreqOpt = Annotated[str | None, typer.Option("--freq", help="The regular frequency (pandas alias: D, W, MS, QS, YS, h; or an integer step); default: inferred.")]
FillOpt = Annotated[str | None, typer.Option("--fill", help="ffill|interpolate: fill gaps and empty values (default: a gap is an error naming it).")]
HorizonOpt = Annotated[int, typer.Option("--horizon", "-H", help="Steps to forecast at once.")]
SeasonOpt = Annotated[int | None, typer.Option("--season", help="Season length m: the seasonal naive lag and MASE's scale (default: from the frequency: monthly 12, weekly 52, quarterly 4, daily 7, hourly 24; else 1).")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Rolling-origin backtest: this many forecast origins, the last leaving H points.")]
StepOpt = Annotated[int | None, typer.Option("--step", help="Steps between the --folds origins (default: the horizon).")]
OrderOpt = Annotated[str | None, typer.Option("--order", help="arima, sarima: p,d,q (default: a small AIC search).")]
SeasonalOrderOpt = Annotated[str | None, typer.Option("--seasonal-order", help="sarima: P,D,Q over --season (default: a small AIC search).")]


@forecast.command("train")
@engine_options(epochs=100, batch_size=32, early_stop=20, without=("val",))
def train(
    data: DataArg,
    time: TimeOpt = "time",
    target: TargetOpt = "y",
    id: IdOpt = None,
    covariates: Annotated[str | None, typer.Option("--covariates", help="Known covariate columns, comma-separated (their future values are given to predict with --future).")] = None,
    freq: FreqOpt = None,
    fill: FillOpt = None,
    horizon: HorizonOpt = 12,
    lookback: Annotated[int | None, typer.Option("--lookback", "-L", help="Past steps each forecast sees (default: three seasons or two horizons, at least 16, within what the shortest series allows).")] = None,
    holdout: Annotated[int, typer.Option("--holdout", help="Leave the last N points of every series out of training (score them with eval on the same table).")] = 0,
    season: SeasonOpt = None,
    scale: Annotated[str, typer.Option("--scale", help="standard|minmax|none: per-series scaling from its history, inverted on output.")] = "standard",
    quantiles: Annotated[str | None, typer.Option("--quantiles", help="Train with the pinball loss for these quantiles (e.g. 0.1,0.9; the median is added): intervals.")] = None,
    loss: Annotated[str, typer.Option("--loss", help="Point forecasts: mae|mse|huber.")] = "mae",
    model: Annotated[str, typer.Option("--model", "-m", help="mlp|lstm|gru|tcn|transformer|nbeats; *_tiny for tests.")] = "mlp",
    width: Annotated[int | None, typer.Option("--width", help="Hidden width (default: the model's).")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Layers, recurrent layers, TCN blocks or N-BEATS blocks (default: the model's).")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout (default: the model's).")] = None,
    kernel_size: Annotated[int | None, typer.Option("--kernel-size", help="tcn: convolution width.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="transformer: attention heads.")] = None,
    decoder: Annotated[str | None, typer.Option("--decoder", help="lstm, gru: direct (a head over the encoding, default) | seq2seq (a recurrent decoder over the horizon).")] = None,
    stacks: Annotated[str | None, typer.Option("--stacks", help="nbeats: generic (learned bases, default) | interpretable (trend and seasonality stacks).")] = None,
    ensemble: Annotated[int | None, typer.Option("--ensemble", help="Train N models of this recipe from seeds --seed..--seed+N-1 (sub-runs member0..; nbeats' look back 2..7 horizons unless --lookback), forecasting their median (default: 5; 1 for *_tiny).")] = None,
    *,
    options: dict,
):
    """Train a forecasting network on one or many series (windows of --lookback, --horizon at once).

    The validation windows are the last --val-split of each series (early stopping, best.pt).
    Score it beside the baselines with 'dltool series forecast eval'.

    Example: dltool series forecast train sample_data/series/co2.csv --time month --target co2 --horizon 12 --holdout 12 --out runs/co2
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.series import forecast as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@forecast.command("eval")
def evaluate(
    model: ModelArg,
    data: DataArg,
    folds: FoldsOpt = 1,
    step: StepOpt = None,
    baselines: Annotated[str | None, typer.Option("--baselines", help="Comma-separated naive|seasonal_naive|ets|arima|sarima scored on the same origins (default: the first four; '' for none).")] = None,
    order: OrderOpt = None,
    seasonal_order: SeasonalOrderOpt = None,
    batch_size: BatchSizeOpt = 1024,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Backtest a forecaster on the last horizon of each series, beside the baselines on the same windows.

    MAE, RMSE, sMAPE, MASE (scaled by the in-sample seasonal naive error), and the coverage and pinball
    loss of a quantile model; one JSON object, and a per-series MASE table on stderr.

    Example: dltool series forecast eval runs/co2/model.pt sample_data/series/co2.csv --folds 3
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.series import forecast as task

    emit_object(task.evaluate(task.EvalConfig(model=model, data=data, folds=folds, step=step, baselines=baselines,
                                              order=order, seasonal_order=seasonal_order, batch_size=batch_size,
                                              device=device)), fmt)


@forecast.command("predict")
def predict(
    model: ModelArg,
    data: DataArg,
    output: OutFileOpt = "-",
    origin: Annotated[str | None, typer.Option("--origin", help="Forecast after this time instead of after the end of each series.")] = None,
    future: Annotated[str | None, typer.Option("--future", help="Table of the covariates over the horizon (time, id, covariates), for a model trained with --covariates.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw history, forecast and interval per series to this PNG.", dir_okay=False)] = None,
    batch_size: BatchSizeOpt = 1024,
    device: DeviceOpt = "auto",
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Forecast the next horizon after each series: a table {id, time, yhat, q..} that pipes.

    Example: dltool series forecast predict runs/co2 sample_data/series/co2.csv --plot co2.png -o forecast.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    from dltool.core.tables import write_table
    from dltool.series import forecast as task

    write_table(task.predict(task.PredictConfig(model=model, data=data, origin=origin, future=future, plot=plot,
                                                batch_size=batch_size, device=device)), output, fmt)


@app.command("baseline")
def baseline(
    data: DataArg,
    time: TimeOpt = "time",
    target: TargetOpt = "y",
    id: IdOpt = None,
    freq: FreqOpt = None,
    fill: FillOpt = None,
    horizon: HorizonOpt = 12,
    season: SeasonOpt = None,
    method: Annotated[str | None, typer.Option("--method", help="Comma-separated naive|seasonal_naive|ets|arima|sarima (default: the first four).")] = None,
    folds: FoldsOpt = 1,
    step: StepOpt = None,
    order: OrderOpt = None,
    seasonal_order: SeasonalOrderOpt = None,
    interval: Annotated[float, typer.Option("--interval", help="Central prediction interval whose coverage is scored and that -o writes (0: none).")] = 0.8,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Also write the next --horizon steps after each series, forecast by the best method, to FILE ('-' = stdout): {id, time, yhat, q..} as forecast predict writes.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw history, forecast and interval of the best method per series to this PNG.", dir_okay=False)] = None,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Classical forecasts alone (statsmodels): backtest them on the last horizon of each series.

    naive, seasonal_naive (lag --season), ets (ETSModel, trend and season by AIC), arima (d by KPSS, p
    and q by AIC, or --order), sarima (--order/--seasonal-order or a small search). One JSON object of
    MAE, RMSE, sMAPE, MASE and interval coverage per method; a per-series MASE table on stderr.
    -o writes the forecast of the next --horizon steps by the method that scored best (with -o -, the
    forecast is the output and the scores go to stderr).

    Example: dltool series baseline sample_data/series/sunspots.csv --time year --target sunactivity --horizon 10 --season 11 -o sunspots-next.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output if output == "-" else None)
    from dltool.core.console import info
    from dltool.core.output import emit_object
    from dltool.core.tables import check_table_format, write_table
    from dltool.series import baselines as task

    if output not in (None, "-"):
        check_table_format("auto", output)  # before the fits, so a bad -o leaves nothing behind
    result, table = task.run(task.BaselineConfig(
        data=data, time=time, target=target, id=id, freq=freq, fill=fill, horizon=horizon, season=season,
        methods=method, folds=folds, step=step, order=order, seasonal_order=seasonal_order, interval=interval,
        forecast=output is not None, plot=str(plot) if plot else None))
    if output == "-":  # the forecast is the result on stdout; the scores are said on stderr
        info("backtest: " + ", ".join(f"{m} MASE {r['mase']:.3f}" if r.get("mase") is not None
                                      else f"{m} MAE {r['mae']:.4g}" for m, r in result["baselines"].items())
             + f"; forecast by {result['forecast_method']}")
        write_table(table, "-", fmt)
        return
    if output is not None:
        write_table(table, output)
    emit_object(result, fmt)
