"""The root Typer app: one group per domain that exists."""

from __future__ import annotations

from typing import Annotated

import typer

from dltool.cli import audio, cluster, reduce, text, vision

app = typer.Typer(
    name="dltool",
    help="Deep-learning task pipelines from the command line. Start with: dltool vision classify train DIR",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(vision.app, name="vision")
app.add_typer(cluster.app, name="cluster")
app.add_typer(reduce.app, name="reduce")
app.add_typer(text.app, name="text")
app.add_typer(audio.app, name="audio")


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
