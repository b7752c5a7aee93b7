"""Pieces shared by the CLI's sub-apps."""

from __future__ import annotations

from typer.core import TyperGroup


def default_command_group(command: str) -> type[TyperGroup]:
    """A Typer group that sends ``GROUP ARGS...`` to ``GROUP COMMAND ARGS...`` when ARGS does not name a subcommand,
    so ``facelens analyze IMG`` and ``facelens analyze fit DIR`` both work."""

    class DefaultCommandGroup(TyperGroup):
        def parse_args(self, ctx, args: list[str]) -> list[str]:  # ctx: typer's click Context
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args = [command, *args]
            return super().parse_args(ctx, args)

    return DefaultCommandGroup
