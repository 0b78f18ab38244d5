"""``dockyard kill``: send a signal (default KILL) to containers."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.common import aliases, for_each
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "kill [OPTIONS] CONTAINER [CONTAINER...]",
                   "Kill one or more running containers", [
                       Flag("signal", "s", "string", usage="Signal to send to the container"),
                   ], args=("min", 1), aliases=aliases("container kill", "kill"))


def run(cli: Cli, opts: Parsed) -> int:
    for_each(cli, opts.args, lambda c: cli.client.container_kill(c, opts.signal or None))
    return 0
