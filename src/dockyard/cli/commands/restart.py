"""``dockyard restart``: restart containers, one after the other."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.common import aliases, for_each
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    from dockyard.cli.commands.stop import command as stop_command

    flags = stop_command(path).flags
    return Command(path, "restart [OPTIONS] CONTAINER [CONTAINER...]",
                   "Restart one or more containers", [f for f in flags if f.name != "help"],
                   args=("min", 1), aliases=aliases("container restart", "restart"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.commands.stop import timeout_of

    t = timeout_of(opts)
    for_each(cli, opts.args, lambda c: cli.client.container_restart(c, t, opts.signal or None),
             concurrent=False)
    return 0
