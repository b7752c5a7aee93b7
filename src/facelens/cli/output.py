"""What every command prints and how it exits: JSON lines or tables on stdout, progress and errors on stderr.

Exit codes, the same for every command:

- ``0`` success;
- ``1`` an input failed (an image or video that cannot be read; its record carries ``"error"``), or verify said
  "not the same person";
- ``2`` the command could not run: a usage error, a bad option value, a missing gallery, person, key or model,
  an unreadable file list. ``--debug`` adds the traceback and never changes the code.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from facelens.errors import ImageDecodeError, NoFaceError, VideoError

OK, FAILED, USAGE = 0, 1, 2

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)

_STATE = {"debug": False}


def set_debug(debug: bool) -> None:
    _STATE["debug"] = debug


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def emit(record: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed (a reader of a pipe sees each record as it is made)."""
    sys.stdout.write(json.dumps(record, default=_jsonable) + "\n")
    sys.stdout.flush()


def exit_code(exc: BaseException) -> int:
    """1 when the error is about one input (unreadable image or video, no face), else 2."""
    return FAILED if isinstance(exc, (ImageDecodeError, VideoError, NoFaceError)) else USAGE


def message(exc: BaseException) -> str:
    """The error on one line (its class name when it carries no text)."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


def error_line(text: str) -> None:
    err.print(f"error: {' '.join(text.split())}", markup=False, highlight=False)


def fail(exc: BaseException, code: int | None = None) -> NoReturn:
    """One line on stderr (``error: ...``; the traceback too with ``--debug``) and the exit code for ``exc``."""
    if _STATE["debug"]:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    error_line(message(exc))
    raise typer.Exit(exit_code(exc) if code is None else code)


def progress_bar(total: int) -> Any:
    """A progress bar on stderr that never captures stdout (rich's default does, and emptied ``--json > file``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=total < 2 or not err.is_terminal,  # no bar in logs and pipes
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def default_command_group(command: str) -> type[TyperGroup]:
    """A Typer group that sends ``GROUP ARGS...`` to ``GROUP COMMAND ARGS...`` when ARGS does not name a subcommand,
    so ``facelens analyze IMG`` and ``facelens analyze fit DIR`` both work."""

    class DefaultCommandGroup(TyperGroup):
        def parse_args(self, ctx, args: list[str]) -> list[str]:  # ctx: typer's click Context
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args = [command, *args]
            return super().parse_args(ctx, args)

    return DefaultCommandGroup
