"""``dockyard push``: upload an image to its registry."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry", [
        Flag("all-tags", "a", "bool", usage="Push all tags of an image to the repository"),
        Flag("disable-content-trust", "", "bool", True, usage="Skip image signing"),
        Flag("platform", "", "string", usage=(
            "Push a platform-specific manifest as a single-platform image to the registry.\n"
            "Image index won't be pushed, meaning that other manifests, including attestations "
            "won't be preserved.\n'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)")),
        Flag("quiet", "q", "bool", usage="Suppress verbose output"),
    ], args=("exact", 1), aliases=aliases("image push", "push"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.imagepull import show_progress
    from dockyard.oci.reference import parse_normalized

    ref = parse_normalized(opts.args[0])
    name_only = not ref.tag and not ref.digest
    if opts.all_tags and not name_only:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    tag = ref.tag
    if not opts.all_tags and name_only:
        tag = "latest"
        if not opts.quiet:
            cli.print("Using default tag: latest")
    if ref.digest:
        raise StatusError(1, "cannot push a digest reference")
    platform = ""
    if opts.platform:
        from dockyard.cli.opts import platform_json

        platform = platform_json(opts.platform)
    resp = cli.client.image_push(ref.name, "" if opts.all_tags else tag,
                                 registry_auth=cli.registry_auth(ref.domain), platform=platform)
    show_progress(cli, resp, quiet=opts.quiet)
    if opts.quiet:
        cli.print(ref.name + (f":{tag}" if tag else ""))
    return 0
