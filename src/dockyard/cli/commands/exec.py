"""``dockyard exec``: run a command in a running container.

Call order (engine-api.md §3): inspect → exec create → exec start (hijacked; not with
``-d``) → resize (TTY) → exec inspect, whose ``ExitCode`` is the exit status.
"""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.flags import Command, Flag, Parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def command(path: str, variant: str = "") -> Command:
    return Command(path, "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
                   "Execute a command in a running container", [
                       Flag("detach", "d", "bool", usage="Detached mode: run command in the "
                            "background"),
                       Flag("detach-keys", "", "string", usage="Override the key sequence for "
                            "detaching a container"),
                       Flag("env", "e", "list", usage="Set environment variables"),
                       Flag("env-file", "", "list",
                            usage="Read in a file of environment variables"),
                       Flag("interactive", "i", "bool", usage="Keep STDIN open even if not "
                            "attached"),
                       Flag("privileged", "", "bool", usage="Give extended privileges to the "
                            "command"),
                       Flag("tty", "t", "bool", usage="Allocate a pseudo-TTY"),
                       Flag("user", "u", "string", usage='Username or UID (format: '
                            '"<name|uid>[:<group|gid>]")'),
                       Flag("workdir", "w", "string", usage="Working directory inside the "
                            "container"),
                   ], args=("min", 2), interspersed=False,
                   aliases=aliases("container exec", "exec"))


def exec_config(cli: Cli, opts: Parsed) -> dict[str, Any]:
    from dockyard.cli.opts import OptError, read_kv_env_strings, validate_env

    try:
        env = read_kv_env_strings(opts.env_file, [validate_env(e, cli.env) for e in opts.env],
                                  cli.env)
    except (OptError, ValueError) as exc:
        raise StatusError(1, str(exc)) from None
    attach = not opts.detach
    cfg: dict[str, Any] = {"User": opts.user, "Privileged": opts.privileged, "Tty": opts.tty}
    if opts.tty:
        h, w = cli.streams.tty_size()
        cfg["ConsoleSize"] = [h, w]
    cfg.update({
        "AttachStdin": bool(attach and opts.interactive),
        "AttachStderr": attach,
        "AttachStdout": attach,
        "Detach": opts.detach,
        "DetachKeys": opts.detach_keys or cli.config.detach_keys,
        "Env": env or None,
        "WorkingDir": opts.workdir,
        "Cmd": opts.args[1:],
    })
    return cfg


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.hijack import HijackedIO, TtyResizer
    from dockyard.cli.term import Detach

    cfg = exec_config(cli, opts)
    container = opts.args[0]
    client = cli.client
    client.container_inspect(container)
    if not opts.detach and cfg["Tty"] and cfg["AttachStdin"] \
            and not cli.streams.is_terminal("stdin"):
        raise StatusError(1, "the input device is not a TTY")
    resp = client.exec_create(container, cfg)
    exec_id = resp.get("Id", "")
    if not exec_id:
        raise StatusError(1, "exec ID empty")
    if opts.detach:
        client.exec_start_detached(exec_id, tty=cfg["Tty"])
        return 0
    conn = client.exec_start(exec_id, tty=cfg["Tty"], console_size=cfg.get("ConsoleSize"))
    streamer = HijackedIO(cli, conn, stdin=cfg["AttachStdin"], stdout=True, stderr=True,
                          tty=cfg["Tty"], detach_keys=cfg["DetachKeys"],
                          stderr_to_stdout=cfg["Tty"]).start()
    resizer = None
    try:
        if cfg["Tty"] and cli.streams.is_terminal("stdin"):
            resizer = TtyResizer(cli, exec_id, is_exec=True).start()
        try:
            while not streamer.wait(0.1):
                pass
        except Detach:
            raise StatusError(1, "read escape sequence") from None
    finally:
        if resizer is not None:
            resizer.stop()
        streamer.restore_terminal()
        conn.close()
    from dockyard.client.errors import ConnectionFailed

    try:
        code = int(client.exec_inspect(exec_id).get("ExitCode", 0) or 0)
    except ConnectionFailed:
        raise StatusError(-1 & 0xFF) from None
    if code:
        raise StatusError(code)
    return 0
