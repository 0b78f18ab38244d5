"""``dockyard tag``: add a name to an image."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                   "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", args=("exact", 2),
                   interspersed=False, aliases=aliases("image tag", "tag"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.errors import InvalidArgument
    from dockyard.oci.reference import parse_normalized

    source, target = opts.args
    try:
        ref = parse_normalized(target)
    except InvalidArgument as exc:
        raise StatusError(1, f'Error parsing reference: "{target}" is not a valid repository/tag: '
                          f"{exc}") from None
    if ref.digest:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    cli.client.image_tag(source, ref.name, ref.tag or "latest")
    return 0
