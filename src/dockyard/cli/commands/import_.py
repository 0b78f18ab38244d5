"""``dockyard import``: create an image from a rootfs tarball (file, URL or ``-``)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                   "Import the contents from a tarball to create a filesystem image", [
                       Flag("change", "c", "list", usage="Apply Dockerfile instruction to the "
                            "created image"),
                       Flag("message", "m", "string",
                            usage="Set commit message for imported image"),
                       Flag("platform", "", "string", usage="Set platform if server is "
                            "multi-platform capable"),
                   ], args=("min", 1), aliases=aliases("image import", "import"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.imagepull import show_progress

    source = opts.args[0]
    repo = opts.args[1] if len(opts.args) > 1 else ""
    if repo:
        from dockyard.oci.reference import parse_normalized

        parse_normalized(repo)  # InvalidArgument for a malformed name, as docker checks first
    f = None
    if source == "-":
        body = cli.streams.stdin
        from_src = "-"
    elif source.startswith(("http://", "https://")):
        body = None
        from_src = source
    else:
        try:
            f = open(source, "rb")
        except OSError as exc:
            raise StatusError(1, f"open {source}: {(exc.strerror or str(exc)).lower()}") from None
        body = f
        from_src = "-"
    try:
        resp = cli.client.image_import(body, repo, from_src=from_src, message=opts.message,
                                       changes=opts.change, platform=opts.platform.lower())
        show_progress(cli, resp)
    finally:
        if f is not None:
            f.close()
    return 0
