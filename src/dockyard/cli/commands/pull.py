"""``dockyard pull``: download an image, with docker's progress output."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", [
        Flag("all-tags", "a", "bool", usage="Download all tagged images in the repository"),
        Flag("disable-content-trust", "", "bool", True, usage="Skip image verification"),
        Flag("platform", "", "string", usage="Set platform if server is multi-platform capable"),
        Flag("quiet", "q", "bool", usage="Suppress verbose output"),
    ], args=("exact", 1), aliases=aliases("image pull", "pull"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.imagepull import pull_image
    from dockyard.oci.reference import parse_normalized

    ref = parse_normalized(opts.args[0])
    name_only = not ref.tag and not ref.digest
    if opts.all_tags and not name_only:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not opts.all_tags and name_only and not opts.quiet:
        cli.print("Using default tag: latest")
    try:
        pulled = pull_image(cli, opts.args[0], platform=opts.platform, quiet=opts.quiet,
                            all_tags=opts.all_tags)
    except Exception as exc:
        if "when fetching 'plugin'" in str(exc):
            raise StatusError(1, f"{exc} - Use `docker plugin install`") from None
        raise
    cli.print(pulled)
    return 0
