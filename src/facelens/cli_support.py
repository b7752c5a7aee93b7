"""Pieces shared by the CLI's sub-apps."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperGroup

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fail(exc: Exception) -> NoReturn:
    """One line on stderr (``error: ...``) and exit code 1: for sub-commands whose failures are expected outcomes."""
    err.print(f"error: {' '.join(str(exc).split())}", markup=False, highlight=False)
    raise typer.Exit(1)


def progress_bar(total: int) -> Progress:
    """A progress bar on stderr (stdout stays clean for --json)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=total < 2,
        transient=True,
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
