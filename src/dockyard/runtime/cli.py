"""``dockyard-runtime``: runc's command line over the runtime library.

    dockyard-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

Commands: create, start, state, kill, delete, exec, ps, run, list, pause, resume,
features. Each verb parses its flags, checks the Status state machine
(``dockyard.runtime.state``) and makes one library call. Errors exit 1 and are written to
stderr and, as ``{"level":"error","msg":...,"time":...}`` lines, to ``--log`` (containerd's
shim reports the last one); messages keep runc's wording (``container not running``,
``container "x" does not exist``).

``create`` leaves the init alive, blocked on ``<root>/<id>/exec.fifo`` until ``start``
opens it, as runc does; the init is then a child of whoever reaps orphans for this
process (the shim, as a subreaper).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, Unsupported
from dockyard.linux.caps import CAPABILITIES
from dockyard.linux.proc import process_start_time
from dockyard.oci.runtime_spec import OCI_VERSION, load_spec, validate_process
from dockyard.runtime.cgroups import DEFAULT_ROOT, Cgroup, open_cgroup
from dockyard.runtime.container import (
    InitProcess,
    create_init,
    exec_process,
    exit_status,
    wait_exec_fifo,
)
from dockyard.runtime.state import ContainerState, StateStore, Status, check_transition
from dockyard.util.atomicfile import write_atomic

__all__ = ["main"]

VERSION = "0.1.0"
DEFAULT_STATE_ROOT = "/run/dockyard/runtime"


class _Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.store = StateStore(args.root)
        self.log_path: str | None = args.log
        self.log_format: str = args.log_format
        self.cgroup_root = Path(os.environ.get("DOCKYARD_CGROUP_ROOT", str(DEFAULT_ROOT)))

    def cgroup(self, st: ContainerState) -> Cgroup | None:
        if not st.cgroup_path:
            return None
        try:
            return open_cgroup(st.cgroup_path, self.cgroup_root)
        except DockyardError:
            return None

    def status(self, st: ContainerState) -> Status:
        cg = self.cgroup(st)
        frozen = False
        if cg is not None:
            try:
                frozen = cg.frozen()
            except OSError:
                frozen = False
        return self.store.status(st, frozen)


def _now() -> str:
    """RFC 3339 with nanoseconds, UTC (runc's ``created`` and log ``time``)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _log_error(ctx: _Ctx | None, msg: str) -> None:
    sys.stderr.write(f"dockyard-runtime: {msg}\n")
    if ctx is None or not ctx.log_path:
        return
    if ctx.log_format == "json":
        line = json.dumps({"level": "error", "msg": msg, "time": _now()})
    else:
        line = f'time="{_now()}" level=error msg={json.dumps(msg)}'
    try:
        with open(ctx.log_path, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def _write_pid_file(path: str | None, pid: int) -> None:
    if path:
        write_atomic(os.path.abspath(path), str(pid), durable=False)


def _send_console(sock_path: str, master: int) -> None:
    """runc's console-socket protocol: one sendmsg with the name and the master fd."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        socket.send_fds(s, [b"/dev/ptmx"], [master])


def _parse_signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError as exc:
        raise InvalidArgument(f"unknown signal {text!r}") from exc


def _wait_gone(ctx: _Ctx, st: ContainerState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while ctx.store.init_alive(st):
        if time.monotonic() > deadline:
            raise Conflict(f"container {st.id}: init (pid {st.pid}) did not exit")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _cleanup(ctx: _Ctx, st: ContainerState) -> None:
    cg = ctx.cgroup(st)
    if cg is not None:
        cg.kill_all(signal.SIGKILL)
        cg.destroy()
    ctx.store.remove(st.id)


def _new_state(
    ctx: _Ctx, cid: str, spec: dict[str, Any], bundle: Path, init: InitProcess, cgroup_path: str
) -> ContainerState:
    root = spec["root"]["path"]
    st = ContainerState(
        id=cid,
        pid=init.pid,
        pid_start=process_start_time(init.pid),
        bundle=str(bundle),
        rootfs=root if root.startswith("/") else str(bundle / root),
        created=_now(),
        cgroup_path=cgroup_path,
        oci_version=spec.get("ociVersion", OCI_VERSION),
        annotations=dict(spec.get("annotations") or {}),
    )
    ctx.store.save(st)
    return st


def _create(ctx: _Ctx, a: argparse.Namespace, *, fifo: bool) -> tuple[InitProcess, dict[str, Any]]:
    bundle = Path(a.bundle or ".").resolve()
    spec = load_spec(bundle)
    terminal = bool(spec["process"].get("terminal"))
    if terminal and not a.console_socket and (fifo or a.detach):
        raise InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    d = ctx.store.reserve(a.id)
    try:
        fifo_path = None
        if fifo:
            fifo_path = d / "exec.fifo"
            os.mkfifo(fifo_path, 0o622)
            os.chmod(fifo_path, 0o622)
        cgroup_path = (spec.get("linux") or {}).get("cgroupsPath") or f"/{a.id}"
        init = create_init(
            spec,
            bundle,
            container_id=a.id,
            cgroup_path=cgroup_path,
            exec_fifo=fifo_path,
            preserve_fds=a.preserve_fds,
            no_pivot=a.no_pivot,
            cgroup_root=ctx.cgroup_root,
        )
        try:
            if init.pty_master is not None and a.console_socket:
                _send_console(a.console_socket, init.pty_master)
                os.close(init.pty_master)
                init.pty_master = None
            _new_state(ctx, a.id, spec, bundle, init, cgroup_path)
            _write_pid_file(a.pid_file, init.pid)
        except BaseException:
            init.kill()
            init.wait()
            init.destroy()
            raise
    except BaseException:
        ctx.store.remove(a.id)
        raise
    return init, spec


def cmd_create(ctx: _Ctx, a: argparse.Namespace) -> int:
    a.detach = True
    _create(ctx, a, fifo=True)
    return 0


def cmd_start(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    status = ctx.status(st)
    if status is Status.STOPPED:
        raise Conflict("cannot start a container that has stopped")
    if status is Status.RUNNING:
        raise Conflict("cannot start an already running container")
    check_transition(a.id, status, "start")
    wait_exec_fifo(ctx.store.fifo(a.id), st.pid)
    return 0


def cmd_state(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    print(json.dumps(st.oci_state(ctx.status(st)), indent=2))
    return 0


def cmd_kill(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    sig = _parse_signal(a.signal)
    check_transition(a.id, ctx.status(st), "kill")
    if a.all:
        cg = ctx.cgroup(st)
        if cg is None:
            raise Unsupported(f"container {a.id} has no cgroup: kill --all needs one")
        cg.kill_all(sig)
        return 0
    try:
        os.kill(st.pid, sig)
    except ProcessLookupError as exc:
        raise Conflict("container not running") from exc
    return 0


def cmd_delete(ctx: _Ctx, a: argparse.Namespace) -> int:
    try:
        st = ctx.store.load(a.id)
    except NotFound:
        if a.force:
            ctx.store.remove(a.id)
            return 0
        raise
    status = ctx.status(st)
    if status in (Status.RUNNING, Status.PAUSED) and not a.force:
        check_transition(a.id, status, "delete")
    if status is not Status.STOPPED:
        cg = ctx.cgroup(st)
        if cg is not None:
            if status is Status.PAUSED:
                cg.thaw()
            cg.kill_all(signal.SIGKILL)
        try:
            os.kill(st.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(ctx, st)
    _cleanup(ctx, st)
    return 0


def _exec_process_obj(ctx: _Ctx, st: ContainerState, a: argparse.Namespace) -> dict[str, Any]:
    if a.process:
        with open(a.process) as f:
            process: dict[str, Any] = json.load(f)
    else:
        if not a.command:
            raise InvalidArgument("exec needs a command or --process")
        spec = load_spec(st.bundle)
        process = dict(spec["process"])
        process["args"] = list(a.command)
        process["terminal"] = bool(a.tty)
        process.pop("consoleSize", None)
    if a.cwd:
        process["cwd"] = a.cwd
    if a.env:
        process["env"] = list(process.get("env") or []) + list(a.env)
    validate_process(process)
    return process


def _forward_signals(pid: int) -> None:
    def fwd(sig: int, _frame: Any) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(sig, fwd)


def _proxy_pty(master: int, pid: int) -> int:
    """Copy our stdin to the pty and the pty to our stdout until the process exits;
    return its exit status."""
    import termios
    import tty

    old = None
    if os.isatty(0):
        old = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        fds = [master, 0]
        while True:
            r, _, _ = select.select(fds, [], [], 0.1)
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return exit_status(status)
    finally:
        if old is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, old)
    return exit_status(os.waitpid(pid, 0)[1])


def cmd_exec(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    status = ctx.status(st)
    if status is Status.STOPPED:
        raise Conflict("cannot exec in a stopped container")
    check_transition(a.id, status, "exec")
    process = _exec_process_obj(ctx, st, a)
    if process.get("terminal") and a.detach and not a.console_socket:
        raise InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    proc = exec_process(
        st.pid,
        process,
        cgroup_path=st.cgroup_path,
        user=a.user,
        preserve_fds=a.preserve_fds,
        cgroup_root=ctx.cgroup_root,
    )
    _write_pid_file(a.pid_file, proc.pid)
    if proc.pty_master is not None and a.console_socket:
        _send_console(a.console_socket, proc.pty_master)
        os.close(proc.pty_master)
        proc.pty_master = None
    if a.detach:
        return 0
    _forward_signals(proc.pid)
    if proc.pty_master is not None:
        return _proxy_pty(proc.pty_master, proc.pid)
    return exit_status(os.waitpid(proc.pid, 0)[1])


def cmd_run(ctx: _Ctx, a: argparse.Namespace) -> int:
    a.preserve_fds = getattr(a, "preserve_fds", 0)
    init, _spec = _create(ctx, a, fifo=False)
    st = ctx.store.load(a.id)
    try:
        init.start()
    except BaseException:
        init.destroy()
        ctx.store.remove(a.id)
        raise
    if a.detach:
        return 0
    _forward_signals(init.pid)
    if init.pty_master is not None:
        code = _proxy_pty(init.pty_master, init.pid)
    else:
        code = init.wait()
    init.destroy()
    ctx.store.remove(st.id)
    return code


def cmd_ps(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    cg = ctx.cgroup(st)
    pids = cg.pids() if cg is not None else ([st.pid] if ctx.store.init_alive(st) else [])
    if a.format == "json":
        print(json.dumps(pids))
        return 0
    print("PID   CMD")
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            cmd = ""
        print(f"{pid:<5} {cmd}")
    return 0


def cmd_list(ctx: _Ctx, a: argparse.Namespace) -> int:
    rows = []
    for cid in ctx.store.list():
        try:
            st = ctx.store.load(cid)
        except DockyardError:
            continue
        rows.append(st.oci_state(ctx.status(st)))
    if a.format == "json":
        print(json.dumps(rows))
        return 0
    print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} {'CREATED':<32} OWNER")
    for r in rows:
        print(
            f"{r['id']:<20} {r['pid']:<8} {r['status']:<10} {r['bundle']:<40} {r['created']:<32} "
            f"{r['owner'] or 'root'}"
        )
    return 0


def cmd_pause(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    check_transition(a.id, ctx.status(st), "pause")
    cg = ctx.cgroup(st)
    if cg is None:
        raise Unsupported(f"container {a.id} has no cgroup: pause needs one")
    cg.freeze()
    return 0


def cmd_resume(ctx: _Ctx, a: argparse.Namespace) -> int:
    st = ctx.store.load(a.id)
    check_transition(a.id, ctx.status(st), "resume")
    cg = ctx.cgroup(st)
    if cg is not None:
        cg.thaw()
    return 0


def cmd_features(ctx: _Ctx, a: argparse.Namespace) -> int:
    from dockyard.linux.mount import PROPAGATION

    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": sorted(
            [
                "async",
                "atime",
                "bind",
                "defaults",
                "dev",
                "diratime",
                "dirsync",
                "exec",
                "lazytime",
                "mand",
                "noatime",
                "nodev",
                "nodiratime",
                "noexec",
                "nolazytime",
                "nomand",
                "norelatime",
                "nostrictatime",
                "nosuid",
                "nosymfollow",
                "rbind",
                "relatime",
                "remount",
                "ro",
                "rw",
                "strictatime",
                "suid",
                "symfollow",
                "sync",
                *PROPAGATION,
            ]
        ),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": list(CAPABILITIES),
            "cgroup": {
                "v1": True,
                "v2": True,
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.dockyard.runtime.version": VERSION,
            "org.dockyard.user": "docker --user, resolved in the container",
        },
    }
    print(json.dumps(features, indent=2))
    return 0


_VALUED_GLOBALS = frozenset({"--root", "--log", "--log-format", "--rootless"})


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand word of ``argv`` (skipping global options and their values)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUED_GLOBALS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, just that subcommand is registered (argparse
    costs about a millisecond per subparser, on every invocation)."""
    p = argparse.ArgumentParser(prog="dockyard-runtime", description="dockyard's OCI runtime")
    p.add_argument("--root", default=DEFAULT_STATE_ROOT)
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--rootless", default="auto")
    p.add_argument("--version", "-v", action="store_true")
    sub = p.add_subparsers(dest="command")

    def create_like(sp: argparse.ArgumentParser, run: bool) -> None:
        sp.add_argument("--bundle", "-b", default=".")
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--no-pivot", action="store_true")
        sp.add_argument("--no-new-keyring", action="store_true")
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("--pidfd-socket", default=None)
        if run:
            sp.add_argument("--detach", "-d", action="store_true")
        sp.add_argument("id")

    def exec_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--process", "-p", default=None)
        sp.add_argument("--detach", "-d", action="store_true")
        sp.add_argument("--pid-file", default=None)
        sp.add_argument("--console-socket", default=None)
        sp.add_argument("--tty", "-t", action="store_true")
        sp.add_argument("--cwd", default=None)
        sp.add_argument("--env", "-e", action="append", default=[])
        sp.add_argument("--user", "-u", default=None)
        sp.add_argument("--preserve-fds", type=int, default=0)
        sp.add_argument("id")
        sp.add_argument("command", nargs=argparse.REMAINDER)

    def with_id(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("id")

    def kill_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("id")
        sp.add_argument("signal", nargs="?", default="SIGTERM")
        sp.add_argument("--all", "-a", action="store_true")

    def delete_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("id")
        sp.add_argument("--force", "-f", action="store_true")

    def ps_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("id")
        sp.add_argument("--format", "-f", default="table", choices=("table", "json"))

    def list_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--format", "-f", default="table", choices=("table", "json"))
        sp.add_argument("--quiet", "-q", action="store_true")

    commands: dict[str, tuple[Any, Any]] = {
        "create": (cmd_create, lambda sp: create_like(sp, run=False)),
        "run": (cmd_run, lambda sp: create_like(sp, run=True)),
        "start": (cmd_start, with_id),
        "state": (cmd_state, with_id),
        "kill": (cmd_kill, kill_args),
        "delete": (cmd_delete, delete_args),
        "exec": (cmd_exec, exec_args),
        "ps": (cmd_ps, ps_args),
        "list": (cmd_list, list_args),
        "pause": (cmd_pause, with_id),
        "resume": (cmd_resume, with_id),
        "features": (cmd_features, lambda sp: None),
    }
    for name, (fn, add_args) in commands.items():
        if only is not None and only != name and only in commands:
            continue
        sp = sub.add_parser(name)
        sp.set_defaults(fn=fn)
        add_args(sp)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``dockyard-runtime`` entry point; returns the exit status."""
    words = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_command_of(words))
    args = parser.parse_args(words)
    if args.version:
        print(f"dockyard-runtime version {VERSION}\nspec: {OCI_VERSION}")
        return 0
    if not getattr(args, "fn", None):
        parser.print_usage(sys.stderr)
        return 2
    ctx = None
    try:
        ctx = _Ctx(args)
        return int(args.fn(ctx, args))
    except DockyardError as exc:
        _log_error(ctx, exc.message)
        return 1
    except OSError as exc:
        _log_error(ctx, f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
