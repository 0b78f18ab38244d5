"""``dockyard rename``: rename a container."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, error_text
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "rename CONTAINER NEW_NAME", "Rename a container", args=("exact", 2),
                   aliases=aliases("container rename", "rename"))


def run(cli: Cli, opts: Parsed) -> int:
    old, new = opts.args[0].strip(), opts.args[1].strip()
    if not old or not new:
        raise StatusError(1, "Error: Neither old nor new names may be empty")
    try:
        cli.client.container_rename(old, new)
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        cli.err.write(error_text(exc) + "\n")
        raise StatusError(1, f"Error: failed to rename container named {old}") from None
    return 0
