"""Options shared by every command, defined once (huggingface_hub cli/_cli_utils.py style)."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
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
        if name in ("config", "plan"):  # a run's [plan] records what was planned; its values are keys too
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


def given_options(ctx: typer.Context) -> frozenset[str]:
    """The options the user set: typed on the command line, from an environment variable, or from a
    --config file with a value other than the command's default (dltool's own config.toml lists every
    option, defaults too, so a run repeated from it must not count them). Not "differs from the
    default": a user who types the default value of an option that does not apply is told so too."""
    given = set()
    for param in ctx.command.params:
        # by name: Typer ships its own copy of click, whose ParameterSource is not click's
        source = getattr(ctx.get_parameter_source(param.name), "name", None)
        if source in ("COMMANDLINE", "ENVIRONMENT") or (
                source == "DEFAULT_MAP" and ctx.params.get(param.name) != param.default):
            given.add(param.name)
    return frozenset(given)


@dataclass(frozen=True)
class TableOptions:
    """The options every cluster and reduce command shares, as @table_options hands them over; an option
    the command does not offer keeps its default here. `given`: what the user set (given_options)."""

    table: str = "-"
    output: str = "-"
    plot: Path | None = None
    standardize: bool = False
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    device: str = "auto"
    seed: int = 0
    fmt: str = "auto"
    quiet: bool = False
    config: Path | None = None
    given: frozenset[str] = frozenset()

    def read(self):
        """The input table (read only after every option has been checked)."""
        from dltool.core.tables import read_table

        return read_table(self.table)

    def write(self, table) -> None:
        from dltool.core.tables import write_table

        write_table(table, self.output, self.fmt)


#: the shared options of a table command, (name, type, default): the input table first, the others in
#: the order --help lists them after the command's own
TABLE_OPTIONS = (
    ("table", TableArg, inspect.Parameter.empty),
    ("output", OutFileOpt, "-"),
    ("plot", PlotOpt, None),
    ("standardize", StandardizeOpt, False),
    ("features", FeaturesOpt, None),
    ("exclude", ExcludeOpt, None),
    ("dropna", DropnaOpt, False),
    ("device", DeviceOpt, "auto"),
    ("seed", SeedOpt, 0),
    ("fmt", TableFormatOpt, "auto"),
    ("quiet", QuietOpt, False),
    ("config", ConfigOpt, None),
)


def shared_options(table, decorator: str, named) -> dict:
    """{name: (annotation, default)} of a shared options table; a name in `named` (a decorator's `without` or
    its defaults) that the table lacks is a programming error."""
    shared = {name: (kind, default) for name, kind, default in table}
    unknown = sorted(set(named) - set(shared))
    if unknown:
        raise TypeError(f"{decorator}: {unknown} are not among its options")
    return shared


def declared_parameters(command, decorator: str, receiver: str, annotation: str):
    """A command's own parameters, checking that it takes the keyword-only `receiver` the decorator fills."""
    declared = inspect.signature(command, eval_str=True).parameters
    if receiver not in declared or declared[receiver].kind is not inspect.Parameter.KEYWORD_ONLY:
        raise TypeError(f"{command.__name__}: a @{decorator} command takes `*, {receiver}: {annotation}`")
    return declared


def table_options(*, without: tuple[str, ...] = ()):
    """Give a cluster or reduce command the options every table command shares (TABLE_OPTIONS), each
    declared once. The command declares its own options, then a keyword-only `common: TableOptions` that
    receives the shared ones (column lists split, and `given`); `without` names the shared options it does
    not offer (a deterministic method has no --seed); one it declares itself replaces the shared one (and
    reaches it too: choose-k's --plot has its own help; transform's table comes after its model). When it
    offers --quiet and --format they are applied before the command runs, so a bad --format fails first."""
    shared = shared_options(TABLE_OPTIONS, "table_options", without)

    def decorate(command):
        declared = declared_parameters(command, "table_options", "common", "TableOptions")
        kw = inspect.Parameter.KEYWORD_ONLY
        own = [p.replace(kind=kw) for name, p in declared.items() if name != "common"]
        ctx_name = next((p.name for p in own if p.annotation is typer.Context), None)
        # a shared option the command declares keeps the shared place in --help (its table, its own)
        replaced = {p.name: p for p in own if p.name in shared and p.name != "table"}
        added = [replaced.get(name) or inspect.Parameter(name, kw, annotation=kind, default=default)
                 for name, (kind, default) in shared.items()
                 if name in replaced or (name not in declared and name not in without)]
        first = [p for p in added if p.name == "table"]
        rest = [p for p in added if p.name != "table"]
        mine = [p for p in own if p.name not in replaced]
        context = [] if ctx_name else [inspect.Parameter("table_ctx", kw, annotation=typer.Context)]
        offered = {p.name for p in added} | (set(shared) & set(declared))

        @functools.wraps(command)
        def run(**values):
            ctx = values[ctx_name or "table_ctx"]
            common = {name: values[name] for name in offered}
            for name in ("features", "exclude"):
                if name in common:
                    common[name] = csv_list(common[name])
            common = TableOptions(**common, given=given_options(ctx))
            if "quiet" in offered and "fmt" in offered:
                apply_console_options(quiet=common.quiet, fmt=common.fmt,
                                      table_output=common.output if "output" in offered else None)
            return command(**{p.name: values[p.name] for p in own}, common=common)

        # Typer reads a command's options from its signature
        run.__signature__ = inspect.Signature(first + mine + rest + context)
        run.__annotations__ = {p.name: p.annotation for p in first + mine + rest + context}
        return run

    return decorate
