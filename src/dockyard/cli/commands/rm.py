"""``dockyard rm``: remove containers."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, error_text, parallel
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "rm [OPTIONS] CONTAINER [CONTAINER...]",
                   "Remove one or more containers", [
                       Flag("force", "f", "bool", usage="Force the removal of a running container "
                            "(uses SIGKILL)"),
                       Flag("link", "l", "bool", usage="Remove the specified link"),
                       Flag("volumes", "v", "bool", usage="Remove anonymous volumes associated "
                            "with the container"),
                   ], args=("min", 1),
                   aliases=aliases("container rm", "container remove", "rm"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.errors import NotFound

    def remove(ref: str) -> None:
        ref = ref.strip("/")
        if not ref:
            raise ValueError("container name cannot be empty")
        cli.client.container_remove(ref, force=opts.force, volumes=opts.volumes, link=opts.link)

    errs = []
    for name, _, exc in parallel(opts.args, remove):
        if exc is not None:
            if opts.force and isinstance(exc, NotFound):
                cli.err.write(error_text(exc) + "\n")
                continue
            errs.append(error_text(exc))
            continue
        cli.print(name)
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0
