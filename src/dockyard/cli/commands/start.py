"""``dockyard start``: start containers, or start one attached (``-a``/``-i``)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, error_text
from dockyard.cli.flags import Command, Flag, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "start [OPTIONS] CONTAINER [CONTAINER...]",
                   "Start one or more stopped containers", [
                       Flag("attach", "a", "bool",
                            usage="Attach STDOUT/STDERR and forward signals"),
                       Flag("detach-keys", "", "string", usage="Override the key sequence for "
                            "detaching a container"),
                       Flag("interactive", "i", "bool", usage="Attach container's STDIN"),
                   ], args=("min", 1), aliases=aliases("container start", "start"))


def run(cli: Cli, opts: Parsed) -> int:
    if opts.attach or opts.interactive:
        from dockyard.cli.runflow import attached_session

        if len(opts.args) > 1:
            raise StatusError(1, "you cannot start and attach multiple containers at once")
        c, _ = cli.client.container_inspect(opts.args[0])
        config = c.get("Config") or {}
        tty = bool(config.get("Tty"))
        stdin = bool(opts.interactive and config.get("OpenStdin"))
        if tty and stdin and not cli.streams.is_terminal("stdin"):
            raise StatusError(1, "the input device is not a TTY")
        status = attached_session(
            cli, c["Id"], tty=tty, stdin=stdin, stdout=True, stderr=True,
            detach_keys=opts.detach_keys or cli.config.detach_keys,
            auto_remove=bool((c.get("HostConfig") or {}).get("AutoRemove")),
            sig_proxy=not tty, verb="start")
        if status:
            raise StatusError(status)
        return 0
    failed = []
    for ref in opts.args:
        try:
            cli.client.container_start(ref)
        except Exception as exc:  # noqa: BLE001
            cli.err.write(error_text(exc) + "\n")
            failed.append(ref)
            continue
        cli.print(ref)
    if failed:
        raise StatusError(1, "Error: failed to start containers: " + ", ".join(failed))
    return 0
