"""``dockyard stop``: stop containers (StopSignal, then SIGKILL after the timeout)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, for_each
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "stop [OPTIONS] CONTAINER [CONTAINER...]",
                   "Stop one or more running containers", [
                       Flag("signal", "s", "string", usage="Signal to send to the container"),
                       Flag("timeout", "t", "int", usage="Seconds to wait before killing the "
                            "container"),
                       Flag("time", "", "int", dest="time_", usage="Seconds to wait before killing "
                            "the container (deprecated: use --timeout)",
                            deprecated="use --timeout instead"),
                   ], args=("min", 1), aliases=aliases("container stop", "stop"))


def timeout_of(opts: Parsed) -> int | None:
    if "time" in opts.changed and "timeout" in opts.changed:
        raise StatusError(1, "conflicting options: cannot specify both --timeout and --time")
    if "timeout" in opts.changed:
        return int(opts.timeout)
    if "time" in opts.changed:
        return int(opts.time_)
    return None


def run(cli: Cli, opts: Parsed) -> int:
    t = timeout_of(opts)
    for_each(cli, opts.args, lambda c: cli.client.container_stop(c, t, opts.signal or None))
    return 0
