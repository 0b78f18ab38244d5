"""``dockyard logs``: a container's output (multiplexed unless it has a TTY)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed

_TS_HELP = ('Show logs {} a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" '
            'for 42 minutes)')


def command(path: str, variant: str = "") -> Command:
    return Command(path, "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", [
        Flag("details", "", "bool", usage="Show extra details provided to logs"),
        Flag("follow", "f", "bool", usage="Follow log output"),
        Flag("since", "", "string", usage=_TS_HELP.format("since").replace("a timestamp",
                                                                           "timestamp")),
        Flag("tail", "n", "string", "all",
             usage="Number of lines to show from the end of the logs"),
        Flag("timestamps", "t", "bool", usage="Show timestamps"),
        Flag("until", "", "string", usage=_TS_HELP.format("before")),
    ], args=("exact", 1), aliases=aliases("container logs", "logs"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.opts import OptError, parse_timestamp

    c, _ = cli.client.container_inspect(opts.args[0])
    try:
        since = parse_timestamp(opts.since)
        until = parse_timestamp(opts.until)
    except OptError as exc:
        raise StatusError(1, str(exc)) from None
    resp = cli.client.container_logs(c["Id"], stdout=True, stderr=True, follow=opts.follow,
                                     since=since, until=until, timestamps=opts.timestamps,
                                     tail=opts.tail, details=opts.details)
    out, err = cli.streams.stdout, cli.streams.stderr

    def w_out(b: bytes) -> None:
        out.write(b)
        out.flush()

    def w_err(b: bytes) -> None:
        err.write(b)
        err.flush()

    try:
        if (c.get("Config") or {}).get("Tty"):
            for chunk in resp.iter_raw():
                w_out(chunk)
        else:
            from dockyard.client.streams import stdcopy

            stdcopy(resp.read1, w_out, w_err)
    finally:
        resp.close()
    return 0
