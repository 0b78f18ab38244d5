"""``dockyard commit``: create an image from a container's changes."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                   "Create a new image from a container's changes", [
                       Flag("author", "a", "string", usage='Author (e.g., "John Hannibal Smith '
                            '<hannibal@a-team.com>")'),
                       Flag("change", "c", "list", usage="Apply Dockerfile instruction to the "
                            "created image"),
                       Flag("message", "m", "string", usage="Commit message"),
                       Flag("pause", "p", "bool", True, usage="Pause container during commit"),
                   ], args=("range", 1, 2), interspersed=False,
                   aliases=aliases("container commit", "commit"))


def run(cli: Cli, opts: Parsed) -> int:
    repo = tag = ""
    if len(opts.args) > 1:
        from dockyard.oci.reference import parse_normalized

        ref = parse_normalized(opts.args[1])
        if ref.digest:
            raise StatusError(1, "refusing to create a tag with a digest reference")
        repo, tag = ref.name, ref.tag or "latest"
    resp = cli.client.container_commit(opts.args[0], repo, tag, comment=opts.message,
                                       author=opts.author, changes=opts.change, pause=opts.pause)
    cli.print(resp.get("Id", ""))
    return 0
