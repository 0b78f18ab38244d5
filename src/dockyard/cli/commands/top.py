"""``dockyard top``: the processes of a container."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "top CONTAINER [ps OPTIONS]",
                   "Display the running processes of a container", args=("min", 1),
                   interspersed=False, aliases=aliases("container top", "top"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.render import TabWriter

    procs = cli.client.container_top(opts.args[0], opts.args[1:])
    tw = TabWriter(cli.out, 20, 1, 3)
    tw.write("\t".join(procs.get("Titles") or []) + "\n")
    for p in procs.get("Processes") or []:
        tw.write("\t".join(str(x) for x in p) + "\n")
    tw.flush()
    return 0
