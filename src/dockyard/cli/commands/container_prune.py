"""``dockyard container prune``: remove all stopped containers."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import filters_to_map, validate_filter

WARNING = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"


def command(path: str, variant: str = "") -> Command:
    return Command(path, "prune [OPTIONS]", "Remove all stopped containers", [
        Flag("filter", "", "filter", usage='Provide filter values (e.g. "until=<timestamp>")',
             validate=validate_filter),
        Flag("force", "f", "bool", usage="Do not prompt for confirmation"),
    ], args=("none",))


def confirm(cli: Cli, message: str) -> bool:
    """docker's ``prompt.Confirm``: ``message [y/N] `` on stdout, a line from stdin."""
    cli.out.write(message + " [y/N] ")
    stdin = cli.streams.stdin
    line = b""
    while True:
        try:
            ch = stdin.read(1)
        except OSError:
            ch = b""
        if not ch or ch == b"\n":
            break
        line += ch
    return line.decode(errors="replace").strip().lower() == "y"


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.render import human_size

    if not opts.force and not confirm(cli, WARNING):
        return 0  # docker treats a cancelled prune as success, silently
    report = cli.client.containers_prune(filters_to_map(opts.filter))
    deleted = report.get("ContainersDeleted") or []
    space = 0
    if deleted:
        cli.print("Deleted Containers:\n" + "".join(f"{d}\n" for d in deleted))
        space = int(report.get("SpaceReclaimed", 0) or 0)
    cli.print("Total reclaimed space:", human_size(space))
    return 0
