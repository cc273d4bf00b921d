"""The `dltool` command. `main()` maps errors to one line and an exit code (DESIGN.md §2).

Nothing heavy is imported here or in the command modules at import time: `--help` stays fast.
"""

from __future__ import annotations

import os
import sys


def _debug_requested(args: list[str]) -> bool:
    return os.environ.get("DLTOOL_DEBUG", "") not in ("", "0") or "--debug" in args


def main(argv: list[str] | None = None, *, epoch_callbacks: tuple = ()) -> None:
    """`dltool ARGV`; exits with its status. `epoch_callbacks` reach every training engine the command
    runs (see dltool.core.train.EngineConfig.epoch_callbacks): how the tuner hears a trial's epochs."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    code = 0
    try:
        # imported inside the try so Ctrl-C during start-up still exits 130
        from typer import Abort
        from typer._click.exceptions import ClickException
        from typer.main import get_command

        from dltool.cli.app import app
        from dltool.core.errors import DltoolError, ExitCode

        try:
            # obj carries the arguments as given, so --nproc relaunches exactly this command
            obj = {"argv": args, "epoch_callbacks": tuple(epoch_callbacks)}
            rv = get_command(app).main(args=args, prog_name="dltool", standalone_mode=False, obj=obj)
            code = rv if isinstance(rv, int) else 0
        except DltoolError as e:
            if debug:
                import traceback

                traceback.print_exc()
            print(f"error: {e}", file=sys.stderr)
            code = int(e.exit_code)
        except ClickException as e:
            _say_what_a_missing_argument_is(e)
            e.show()
            code = e.exit_code
        except Abort:
            code = int(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # the reader went away (`| head`): stop quietly, like other Unix tools
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = 1
        except MemoryError:
            print("error: out of memory — use a smaller --batch-size or less data", file=sys.stderr)
            code = 1
        except Exception as e:  # an unforeseen failure: still one line, unless --debug
            if debug:
                raise
            print(f"error: {type(e).__name__}: {e} — rerun with --debug for the traceback", file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def _say_what_a_missing_argument_is(e) -> None:
    """"Missing argument 'table'." gains the argument's help ("... '-' reads stdin."), so the line says what to give."""
    from typer._click.exceptions import MissingParameter

    help_text = getattr(getattr(e, "param", None), "help", None)
    if isinstance(e, MissingParameter) and help_text and not e.message:
        e.message = help_text.rstrip(".")
