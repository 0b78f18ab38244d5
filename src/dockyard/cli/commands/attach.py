"""``dockyard attach``: attach the terminal to a running container."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def command(path: str, variant: str = "") -> Command:
    return Command(path, "attach [OPTIONS] CONTAINER",
                   "Attach local standard input, output, and error streams to a running container",
                   [
                       Flag("detach-keys", "", "string", usage="Override the key sequence for "
                            "detaching a container"),
                       Flag("no-stdin", "", "bool", usage="Do not attach STDIN"),
                       Flag("sig-proxy", "", "bool", True, usage="Proxy all received signals to "
                            "the process"),
                   ], args=("exact", 1), aliases=aliases("container attach", "attach"))


def _check_state(c: dict[str, Any]) -> None:
    st = c.get("State") or {}
    if not st.get("Running"):
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if st.get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    if st.get("Restarting"):
        raise StatusError(1, "You cannot attach to a restarting container, wait until it is "
                          "running")


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.hijack import HijackedIO, SignalProxy, TtyResizer
    from dockyard.cli.term import Detach

    ref = opts.args[0]
    client = cli.client
    waiter = client.container_wait(ref)
    try:
        c, _ = client.container_inspect(ref)
        _check_state(c)
        config = c.get("Config") or {}
        tty = bool(config.get("Tty"))
        if tty and not opts.no_stdin and not cli.streams.is_terminal("stdin"):
            raise StatusError(1, "the input device is not a TTY")
        stdin = not opts.no_stdin and bool(config.get("OpenStdin"))
        keys = opts.detach_keys or cli.config.detach_keys
        proxy = SignalProxy(cli, ref).start() if opts.sig_proxy and not tty else None
        resizer = None
        try:
            conn = client.container_attach(ref, stdin=stdin, stdout=True, stderr=True,
                                           stream=True, detach_keys=keys)
            _check_state(client.container_inspect(ref)[0])
            streamer = HijackedIO(cli, conn, stdin=stdin, stdout=True, stderr=True, tty=tty,
                                  detach_keys=keys, stderr_to_stdout=False).start()
            if tty and cli.streams.is_terminal("stdout"):
                h, w = cli.streams.tty_size()
                resizer = TtyResizer(cli, c["Id"])
                resizer.resize(h + 1, w + 1)
                resizer.start()
            try:
                while not streamer.wait(0.1):
                    pass
            except Detach:
                raise StatusError(1, "read escape sequence") from None
            finally:
                streamer.close()
        finally:
            if resizer is not None:
                resizer.stop()
            if proxy is not None:
                proxy.stop()
        result = waiter.result()
    finally:
        waiter.close()
    err = result.get("Error")
    if err and (err.get("Message") if isinstance(err, dict) else err):
        raise StatusError(1, str(err.get("Message") if isinstance(err, dict) else err))
    code = int(result.get("StatusCode", 0) or 0)
    if code:
        raise StatusError(code)
    return 0
