"""``dockyard image prune``: remove dangling (or, with ``-a``, all unused) images."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import filters_to_map, validate_filter

ALL_WARNING = ("WARNING! This will remove all images without at least one container associated "
               "to them.\nAre you sure you want to continue?")
DANGLING_WARNING = ("WARNING! This will remove all dangling images.\n"
                    "Are you sure you want to continue?")


def command(path: str, variant: str = "") -> Command:
    return Command(path, "prune [OPTIONS]", "Remove unused images", [
        Flag("all", "a", "bool", usage="Remove all unused images, not just dangling ones"),
        Flag("filter", "", "filter", usage='Provide filter values (e.g. "until=<timestamp>")',
             validate=validate_filter),
        Flag("force", "f", "bool", usage="Do not prompt for confirmation"),
    ], args=("none",))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.commands.container_prune import confirm
    from dockyard.cli.render import human_size

    filters = filters_to_map(opts.filter)
    filters["dangling"] = ["false" if opts.all else "true"]
    if not opts.force and not confirm(cli, ALL_WARNING if opts.all else DANGLING_WARNING):
        return 0
    report = cli.client.images_prune(filters)
    deleted = report.get("ImagesDeleted") or []
    space = 0
    if deleted:
        lines = ["Deleted Images:\n"]
        for d in deleted:
            if d.get("Untagged"):
                lines.append(f"untagged: {d['Untagged']}\n")
            else:
                lines.append(f"deleted: {d.get('Deleted', '')}\n")
        cli.print("".join(lines))
        space = int(report.get("SpaceReclaimed", 0) or 0)
    cli.print("Total reclaimed space:", human_size(space))
    return 0
