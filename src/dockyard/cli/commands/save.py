"""``dockyard save``: write images as a tar archive (to ``-o FILE`` or stdout)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "save [OPTIONS] IMAGE [IMAGE...]",
                   "Save one or more images to a tar archive (streamed to STDOUT by default)", [
                       Flag("output", "o", "string", usage="Write to a file, instead of STDOUT"),
                       Flag("platform", "", "string", usage='Save only the given platform variant. '
                            'Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")'),
                   ], args=("min", 1), aliases=aliases("image save", "save"))


def run(cli: Cli, opts: Parsed) -> int:
    import os

    if not opts.output and cli.streams.is_terminal("stdout"):
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.client.image_save(opts.args, platform=opts.platform)
    if not opts.output:
        out = cli.streams.stdout
        for chunk in resp.iter_raw():
            out.write(chunk)
        out.flush()
        return 0
    target = os.path.abspath(opts.output)
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        resp.close()
        raise StatusError(1, f"failed to save image: invalid output path: stat {d}: "
                          "no such file or directory")
    tmp = os.path.join(d, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            for chunk in resp.iter_raw():
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0
