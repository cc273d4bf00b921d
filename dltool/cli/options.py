"""Options shared by every command, defined once (huggingface_hub cli/_cli_utils.py style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _load_config(ctx: typer.Context, param, value: Path | None):
    """--config FILE.toml supplies defaults for this command's options; the command line wins.

    It is eager, so it runs before the other parameters look up their defaults in ctx.default_map.
    """
    if value is None:
        return value
    import tomllib

    from dltool.core.errors import OptionError, suggest

    try:
        data = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"config file '{value}' does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise typer.BadParameter(f"'{value}' is not valid TOML: {e}") from None
    known = {p.name for p in ctx.command.params}
    defaults = {}
    for key, v in data.items():
        name = key.replace("-", "_")
        if name == "config":
            continue
        if name not in known:
            raise OptionError(f"--config {value}: '{key}' is not an option of this command",
                              suggest(name, known) or f"options are: {', '.join(sorted(known))}")
        defaults[name] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


DeviceOpt = Annotated[str, typer.Option("--device", envvar="DLTOOL_DEVICE",
                                        help="auto|cpu|cuda|cuda:N|mps (env DLTOOL_DEVICE).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same result.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto|table|jsonl|csv|json (auto: table on a terminal, JSON when piped).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info on stderr.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="TOML file whose keys give defaults for this command's options.",
    is_eager=True, callback=_load_config, dir_okay=False)]
OutFileOpt = Annotated[str, typer.Option("--output", "-o", help="Output file ('-' = stdout); written atomically.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing run folder.")]
FeaturesOpt = Annotated[str | None, typer.Option("--features", help="Comma-separated feature columns (default: all numeric).")]
ExcludeOpt = Annotated[str | None, typer.Option("--exclude", help="Comma-separated numeric columns to leave out of the features.")]
DropnaOpt = Annotated[bool, typer.Option("--dropna", help="Drop rows with NaN/inf instead of failing.")]
TableArg = Annotated[str, typer.Argument(help="Feature table: CSV, JSON Lines, .npy or .npz; '-' reads stdin.")]
TableFormatOpt = Annotated[str, typer.Option(
    "--format", help="auto|table|jsonl|csv|json|npz (auto: table on a terminal, JSON Lines when piped, "
                     "else from the -o suffix).")]
PlotOpt = Annotated[Path | None, typer.Option(
    "--plot", help="Also write a PNG scatter of the result (its first two columns, or a 2-D PCA).", dir_okay=False)]
StandardizeOpt = Annotated[bool, typer.Option(
    "--standardize", help="Scale each feature to zero mean and unit variance first (the output keeps the values).")]


def csv_list(value: str | None) -> tuple[str, ...] | None:
    """'a, b' -> ('a', 'b'); None or '' -> None."""
    names = tuple(v.strip() for v in (value or "").split(",") if v.strip())
    return names or None


def apply_console_options(*, quiet: bool = False, fmt: str | None = None, table_output: str | None = None) -> None:
    """Apply the people-facing switches every command has; a bad --format fails before any work.

    `table_output`: the -o of a command that writes a table (its --format may be npz, and `table`
    cannot go to a file); without it --format is that of a result object (metrics).
    """
    from dltool.core.console import set_quiet

    set_quiet(quiet)
    if fmt is None:
        return
    if table_output is not None:
        from dltool.core.tables import check_table_format

        check_table_format(fmt, table_output)
    else:
        from dltool.core.output import resolve_format

        resolve_format(fmt)
