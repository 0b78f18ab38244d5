"""``dockyard load``: load images from a tar archive (``-i FILE`` or stdin)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "load [OPTIONS]", "Load an image from a tar archive or STDIN", [
        Flag("input", "i", "string", usage="Read from tar archive file, instead of STDIN"),
        Flag("platform", "", "string", usage='Load only the given platform variant. Formatted '
             'as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
        Flag("quiet", "q", "bool", usage="Suppress the load output"),
    ], args=("none",), aliases=aliases("image load", "load"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.imagepull import show_progress

    f = None
    if not opts.input:
        if cli.streams.is_terminal("stdin"):
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        body = cli.streams.stdin
    else:
        try:
            f = open(opts.input, "rb")
        except OSError as exc:
            raise StatusError(1, f"open {opts.input}: {(exc.strerror or str(exc)).lower()}") \
                from None
        body = f
    try:
        quiet = opts.quiet or not cli.streams.is_terminal("stdout")
        resp = cli.client.image_load(body, quiet=quiet, platform=opts.platform)
        if resp.content_type == "application/json":
            show_progress(cli, resp)
        else:
            for chunk in resp.iter_raw():
                cli.streams.stdout.write(chunk)
            cli.streams.stdout.flush()
    finally:
        if f is not None:
            f.close()
    return 0
