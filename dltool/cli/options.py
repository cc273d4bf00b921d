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


def csv_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def apply_console_options(*, quiet: bool = False, fmt: str | None = None) -> None:
    """Apply the people-facing switches every command has; a bad --format fails before any work."""
    from dltool.core.console import set_quiet

    set_quiet(quiet)
    if fmt is not None:
        from dltool.core.output import resolve_format

        resolve_format(fmt)
