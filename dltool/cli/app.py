"""The root Typer app: one group per domain that exists.

Help conventions (tests/test_cli.py holds them): a command's docstring starts with a one-line summary,
then a blank line, then the details and an `Example:` line. Group listings show the summary only.
Shell completion is Typer's (`dltool --install-completion`); it costs start-up nothing measurable
(benchmarks/help_startup.py).
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperOption

from dltool.cli import audio, cluster, generate, reduce, text, vision


def _flags_show_no_value_type() -> None:
    """Typer 0.29's rich help prints a value type beside every option, flags included (`--quiet <bool>`),
    while its plain help leaves flags bare; it has no setting for it short of a metavar on each option.
    A flag takes no value, so its row shows none."""
    value_type = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else value_type(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_show_no_value_type()

app = typer.Typer(
    name="dltool",
    help="Deep-learning task pipelines from the command line. Start with: dltool vision classify train DIR",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(vision.app, name="vision")
app.add_typer(cluster.app, name="cluster")
app.add_typer(reduce.app, name="reduce")
app.add_typer(text.app, name="text")
app.add_typer(audio.app, name="audio")
app.add_typer(generate.app, name="generate")


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
