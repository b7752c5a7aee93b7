"""The ``facelens`` command: one thin door per verb onto the library, all printing through :mod:`facelens.cli.output`
(tables for people, ``--json`` lines for machines, progress and errors on stderr, exit 0/1/2).

Sub-commands live in their own modules and are imported only when named on the command line (or for ``--help``),
so ``facelens verify A B`` loads the recognition stack and nothing else.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from facelens.cli import recognize
from facelens.cli.output import USAGE, error_line, exit_code, message, set_debug

#: command name -> (module, attribute): a Typer app (a group of sub-commands) or a function (one command).
LAZY: dict[str, tuple[str, str]] = {
    "analyze": ("facelens.cli.analyze", "app"),
    "anonymize": ("facelens.cli.anonymize", "anonymize"),
    "gallery": ("facelens.cli.gallery", "app"),
    "video": ("facelens.cli.video", "app"),
    "cluster": ("facelens.cli.cluster", "app"),
    "liveness": ("facelens.cli.liveness", "app"),
    "eval": ("facelens.cli.evaluate", "app"),
    "serve": ("facelens.cli.service", "serve"),
    "keys": ("facelens.cli.service", "keys_app"),
}


class LazyGroup(TyperGroup):
    """The root group: the commands in :data:`LAZY` are built from their module on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in LAZY if name not in self.commands)]

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in self.commands and name in LAZY:
            module, attribute = LAZY[name]
            target: Any = getattr(importlib.import_module(module), attribute)
            if not isinstance(target, typer.Typer):
                single = typer.Typer()
                single.command(name)(target)
                target = single
                command = typer.main.get_command(target)
            else:
                command = typer.main.get_group(target)
            command.name = name
            self.commands[name] = command
        return super().get_command(ctx, name)


app = typer.Typer(
    cls=LazyGroup,
    help="Face recognition and analysis: detect, embed, verify, enroll, identify, analyze, video, liveness, eval, anonymize.",
    no_args_is_help=True,
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Print the traceback of an error too.")) -> None:
    set_debug(debug)


for _command in (recognize.detect, recognize.embed, recognize.verify, recognize.enroll, recognize.identify,
                 recognize.models):
    app.command()(_command)


def main() -> None:
    """Console entry point: every error is one line on stderr with exit code 1 or 2 (see :mod:`facelens.cli.output`);
    ``--debug`` (or FACELENS_DEBUG=1) adds the traceback without changing the code."""
    from facelens.errors import FacelensError

    debug = "--debug" in sys.argv or os.environ.get("FACELENS_DEBUG", "") not in ("", "0")
    set_debug(bool(debug))
    try:
        code = app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # usage errors: bad option, unknown command
            exc.show()
            sys.exit(USAGE)
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, FacelensError):
            error_line(message(exc))
            sys.exit(exit_code(exc))
        error_line(f"{exc.__class__.__name__}: {message(exc)}")
        sys.exit(USAGE)
    sys.exit(code if isinstance(code, int) else 0)
