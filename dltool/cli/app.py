"""The root Typer app: one group per domain that exists.

Help conventions (tests/test_cli.py holds them): a command's docstring starts with a one-line summary,
then a blank line, then the details and an `Example:` line. Group listings show the summary only.
Help strings are plain text wrapped anywhere in the source: dltool/cli/help.py reflows them and breaks a
choice list too wide for its column after '|' or ',', so every page reads whole at 80 columns.
Shell completion is Typer's (`dltool --install-completion`); it costs start-up nothing measurable
(benchmarks/help_startup.py).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

#: the domain groups, in help order: name -> the module whose `app` is that group
DOMAINS = {"vision": "dltool.cli.vision", "cluster": "dltool.cli.cluster", "reduce": "dltool.cli.reduce",
           "text": "dltool.cli.text", "audio": "dltool.cli.audio", "series": "dltool.cli.series",
           "generate": "dltool.cli.generate", "tune": "dltool.cli.tune"}


def _flags_show_no_value_type() -> None:
    """Typer 0.29's rich help prints a value type beside every option, flags included (`--quiet <bool>`),
    while its plain help leaves flags bare; it has no setting for it short of a metavar on each option.
    A flag takes no value, so its row shows none."""
    value_type = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else value_type(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_show_no_value_type()


def _help_readable_at_any_width() -> None:
    """Every help page is rendered through dltool.cli.help's fixes (choices break after '|' and ','; a
    paragraph is reflowed), imported with rich only when a page is rendered, so start-up stays cheap."""
    for cls in (TyperCommand, TyperGroup):
        def format_help(self, ctx, formatter, _format_help=cls.format_help):
            from dltool.cli import help

            help.install()
            return _format_help(self, ctx, formatter)

        cls.format_help = format_help


_help_readable_at_any_width()

class _Domains(TyperGroup):
    """The root group, which builds a domain's commands only when the command line names that domain.

    Typer turns every function of a group into a Click command before it runs any (~10 ms each, dozens
    of them), so building all domains made every start-up pay for all. `dltool --help` lists each
    domain from its module's help text alone."""

    _listing = False

    def list_commands(self, ctx) -> list[str]:
        return [*super().list_commands(ctx), *DOMAINS]

    def get_command(self, ctx, name: str):
        if name in DOMAINS and name not in self.commands:
            domain = importlib.import_module(DOMAINS[name]).app
            if self._listing:
                return TyperGroup(name=name, help=domain.info.help)
            self.add_command(typer.main.get_group(domain), name)
        return super().get_command(ctx, name)

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="dltool",
    cls=_Domains,
    help="Deep-learning task pipelines from the command line. Start with: dltool vision classify train DIR",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        from dltool import __version__

        print(f"dltool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also DLTOOL_DEBUG=1).")] = False,
):
    """dltool: train, evaluate and run networks; cluster and reduce features."""
