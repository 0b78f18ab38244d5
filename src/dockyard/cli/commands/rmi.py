"""``dockyard rmi`` / ``image rm``: remove images."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, error_text
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    use = ("rm" if variant == "rm" else "rmi") + " [OPTIONS] IMAGE [IMAGE...]"
    return Command(path, use, "Remove one or more images", [
        Flag("force", "f", "bool", usage="Force removal of the image"),
        Flag("no-prune", "", "bool", usage="Do not delete untagged parents"),
        Flag("platform", "", "strings", usage='Remove only the given platform variant. Formatted '
             'as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
    ], args=("min", 1), aliases=aliases("image rm", "image remove", "rmi"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.errors import NotFound

    errs = []
    fatal = False
    for img in opts.args:
        try:
            dels = cli.client.image_remove(img, force=opts.force, noprune=opts.no_prune)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            if not isinstance(exc, NotFound):
                fatal = True
            errs.append(error_text(exc))
            continue
        for d in dels:
            if d.get("Deleted"):
                cli.print("Deleted:", d["Deleted"])
            else:
                cli.print("Untagged:", d.get("Untagged", ""))
    if errs:
        if not opts.force or fatal:
            raise StatusError(1, "\n".join(errs))
        cli.err.write("\n".join(errs) + "\n")
    return 0
