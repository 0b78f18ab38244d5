"""The per-container shim: parent of the container's init, owner of its stdio and its log.

One shim runs per running container. It comes in two builds that serve the same protocol
(docs/architecture.md §3) and pass the same tests:

* the native one, ``native/shim.c`` built as ``dockyard-shim`` (the default): the launcher's
  child does the Python part here — ``exec_native`` forks the creation helper, makes the
  stdio pipes, binds the control socket — and then execve()s the binary, so that no
  Python memory stays behind for the container's life;
* ``Shim`` below, in Python: the fallback when the binary is not built, and the reference
  to read next to the C code.

Either way the shim

* has the container's init created by a throwaway helper (``_Helper``, running
  ``dockyard.runtime.container.create_init``), which holds it until ``start``;
* reads the container's stdout/stderr (or its pty master), writes every line to the
  json-file log and copies the bytes to attached clients; forwards their stdin;
* reaps the init (as a child subreaper) and records its exit status in ``status.json``
  before telling waiters, so a daemon that was down when the container exited still
  learns its exit code; then kills what is left in the container's cgroup and removes it;
* serves the JSON-line protocol on ``<state_dir>/shim.sock``.

The shim exits once the container has exited, its output is drained into the log and
every waiter and attached client has been answered. Exec sessions are not the container
shim's business: each has a transient process of its own (``execshim.py``).
"""

from __future__ import annotations

import array
import dataclasses
import errno
import fcntl
import itertools
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from dockyard.linux import sched
from dockyard.util.atomicfile import write_atomic
from dockyard.util.timefmt import rfc3339nano
from dockyard.util.unixsock import bind_unix

__all__ = ["ShimConfig", "Shim", "exec_native", "exec_native_spare", "exit_status", "main",
           "native_binary", "recv_fds"]

STDOUT, STDERR = 1, 2
_STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
READ_CHUNK = 65536
MAX_LOG_LINE = 16 * 1024          # docker's json-file splits longer lines (partial)
HIGH_WATER = 1 << 20              # stop reading a process while its client lags this much
LOW_WATER = 1 << 18
LINGER = 5.0                      # seconds to wait for slow clients after the exit
START_TIMEOUT = 120.0             # a container never started (its daemon died) is given up
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def read_output(fd: int) -> bytes | None:
    """A chunk of a process's output: None if nothing is there yet, b"" at the end (EOF,
    or EIO once a pty's last slave fd is closed)."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        return b""


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def exit_status(status: int) -> int:
    """Docker's exit code from a wait status: the code, or 128 + the signal number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


@dataclass
class ShimConfig:
    """What the engine tells a shim about its container (sent through the launcher)."""

    id: str
    bundle: str                    # OCI bundle dir; config.json inside
    state_dir: str                 # <exec-root>/shim/<id>: shim.sock, status.json
    log_path: str                  # json-file log
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    rootfs_mounts: list[dict[str, Any]] = field(default_factory=list)
    cgroup_path: str = ""
    start_timeout: float = START_TIMEOUT   # a container never started is given up after this
    fresh: bool = False            # the init needs namespaces a spare init does not have:
    # a spare shim cannot take it, the launcher forks a shim and a fresh init for it
    start: bool = False            # start the init once it is ready (the native shim in a
    # spare does; the others wait for "start" as ever): its report then has "started_at"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ShimConfig":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


class _Stdio:
    """The shim's side of one process's stdio: output fds (a pty master is stdout),
    the stdin fd (the pty master again for a tty), and stdin bytes not yet written."""

    def __init__(self, out: dict[int, int], stdin_fd: int, tty: bool) -> None:
        self.out = out
        self.stdin_fd = stdin_fd
        self.tty = tty
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.paused = False

    def frame(self, stream: int, data: bytes) -> bytes:
        return data if self.tty else struct.pack(">BxxxI", stream, len(data)) + data


class _Conn:
    """One client connection: a request line in, then a mode."""

    __slots__ = ("sock", "inbuf", "outbuf", "mode", "streams", "stdin", "closing", "eof",
                 "token", "detached")

    def __init__(self, sock: socket.socket, token: int) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = ""                # "" | "attach" | "wait" | "done"
        self.streams: tuple[bool, bool] = (False, False)
        self.stdin = False
        self.closing = False          # close once outbuf is flushed
        self.eof = False              # the client half-closed
        self.token = token            # names an attach session for "detach"
        self.detached = False         # its EOF is a detach, not the end of stdin


class SetupError(Exception):
    """The helper could not create the container (``kind`` names the error class)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _send(chan: socket.socket, msg: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    socket.send_fds(chan, [json.dumps(msg).encode()], list(fds))


def recv_fds(sock: socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """``socket.recv_fds`` with the received fds close-on-exec (Python 3.11's ignores its
    ``flags`` argument, so MSG_CMSG_CLOEXEC cannot be passed through it)."""
    fds = array.array("i")
    data, anc, _flags, _addr = sock.recvmsg(bufsize, socket.CMSG_LEN(maxfds * fds.itemsize),
                                            socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _recv(chan: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds = recv_fds(chan, 65536, 4)
    if not data:
        return {"ok": False, "error": "the shim helper exited", "kind": "Internal"}, fds
    return dict(json.loads(data)), fds


class _Helper:
    """A throwaway child of the shim that does the heavy job: creating the init. The
    long-lived shim then never touches the memory that work dirties. The shim is a child
    subreaper, so the init is reparented to it when the helper exits.

    It is forked before it is given its job, so that the launcher can keep one ready
    (launcher.py). The conversation, one JSON datagram each way (SOCK_SEQPACKET), is the
    same for both shims: shim → helper ``{"op": "create", "config": {ShimConfig}}`` with
    the init's stdio fds (none with a tty); helper → shim ``{"ok": true, "pid": N}`` (+ the
    pty master, SCM_RIGHTS) or an error; shim → helper ``{"op": "start"}``; helper → shim
    ``{"ok": true}`` once the init execve'd, or an error (the init is then reaped); the
    helper exits. If the shim closes its end instead, the helper kills the init and exits.
    ``create(spec, stdio)`` replaces ``create_init`` (tests); ``warm``: a spare's helper
    (see ``warm_up``), which also forks a spare container init (``SpareInit``) for
    ``create_init`` to use, unless ``spare_init`` is False."""

    def __init__(self, create: Callable[..., Any] | None = None, warm: bool = False,
                 spare_init: bool = True) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                spare = None
                if warm:
                    from dockyard.runtime.container import warm_up_planning

                    warm_up_planning()
                    if create is None and spare_init:
                        spare = _spare_init()
                try:
                    _helper_main(theirs, create, spare)
                finally:
                    if spare is not None:
                        spare.discard()
            except BaseException as exc:
                code = 1
                try:
                    _send(theirs, {"ok": False, "error": str(exc), "kind": type(exc).__name__})
                except OSError:
                    pass
            finally:
                os._exit(code)
        theirs.close()
        self.pid = pid
        self.chan = ours

    def create(self, cfg: ShimConfig, stdio: tuple[int, int, int] | None) -> None:
        """Give the helper its job: create the init of ``cfg`` with ``stdio`` (its 0-2).
        From now on it runs at the caller's priority (a spare's helper is made at the
        lowest one, and may not be done with its own preparation yet)."""
        sched.share_with(self.pid)
        _send(self.chan, {"op": "create", "config": dataclasses.asdict(cfg)}, stdio or ())

    def recv(self) -> tuple[dict[str, Any], list[int]]:
        return _recv(self.chan)

    def send(self, msg: dict[str, Any]) -> None:
        _send(self.chan, msg)

    def close(self) -> None:
        self.chan.close()


def _spare_init() -> Any:
    """A ``SpareInit`` for the helper of a spare shim, or None when this host cannot make
    one (the init is then forked when the job comes, as without a spare)."""
    from dockyard.errors import DockyardError
    from dockyard.runtime.container import SpareInit

    try:
        return SpareInit()
    except (OSError, DockyardError):
        return None


def _helper_main(chan: socket.socket, create: Callable[..., Any] | None,
                 spare: Any = None) -> None:
    """The helper's side of the conversation (see ``_Helper``); ``spare``: its
    ``SpareInit``, handed to ``create_init``."""
    msg, fds = _recv(chan)
    if msg.get("op") != "create":
        return  # the shim went away before giving a job (a spare that was not used)
    cfg = ShimConfig.from_json(msg["config"])
    with open(os.path.join(cfg.bundle, "config.json"), "rb") as f:
        spec = json.load(f)
    create = create or _creator(cfg, spare)
    init = create(spec, (fds[0], fds[1], fds[2]) if len(fds) == 3 else None)
    for fd in fds:
        os.close(fd)  # the init has them now
    _send(chan, {"ok": True, "pid": init.pid},
          [init.pty_master] if init.pty_master is not None else [])
    msg, _ = _recv(chan)
    if msg.get("op") != "start":
        init.kill()  # the shim gave up on this container
        return
    try:
        init.start()
    except Exception as exc:
        _send(chan, {"ok": False, "error": str(exc), "kind": type(exc).__name__})
        return
    _send(chan, {"ok": True})


def native_binary() -> str | None:
    """The native shim beside the interpreter (``.venv/bin/dockyard-shim``, built by
    ``make``), or None when it is not built."""
    path = os.path.join(os.path.dirname(sys.executable), "dockyard-shim")
    return path if os.access(path, os.X_OK) else None


def warm_up() -> None:
    """In a spare shim (launcher.py), before its job: a dry run of what ``exec_native``
    does in Python, so that the copy-on-write faults on the launcher's pages are taken
    now rather than on the path of a container's start."""
    from dockyard.runtime.cgroups import open_cgroup

    cfg = ShimConfig.from_json({"id": "warm-up", "bundle": "/", "state_dir": "/",
                                "log_path": os.devnull, "cgroup_path": "/warm/up"})
    json.dumps({"op": "create", "config": dataclasses.asdict(cfg)})
    _, child_fds, io = _make_stdio(False, True)
    for fd in [*child_fds, *io.out, io.stdin_fd]:
        os.close(fd)
    [str(h.mount) for h in open_cgroup(cfg.cgroup_path).hierarchies]


def _creator(cfg: ShimConfig, spare: Any = None) -> Callable[..., Any]:
    """The real ``create(spec, stdio)``: ``create_init`` with the config's mounts and cgroup
    (and ``spare``, a ``SpareInit``)."""
    from dockyard.oci.mount import Mount
    from dockyard.runtime.container import Stdio, create_init

    mounts = [Mount.from_json(m) for m in cfg.rootfs_mounts]

    def create(spec: dict[str, Any], stdio: Any) -> Any:
        return create_init(
            spec, Path(cfg.bundle), container_id=cfg.id,
            stdio=None if stdio is None else Stdio(*stdio),
            rootfs_mounts=mounts, cgroup_path=cfg.cgroup_path or None, spare=spare,
        )

    return create


def _start_creation(cfg: ShimConfig, create: Callable[..., Any] | None,
                    helper: _Helper | None = None) -> tuple[_Helper, _Stdio]:
    """Have the helper (``helper``, forked ahead, or one forked now) create the init; return
    it and the shim's side of the init's stdio (pipes; with a tty, the pty master arrives
    with the helper's first message)."""
    helper = helper or _Helper(create)
    stdio, child_fds, io = _make_stdio(cfg.tty, cfg.open_stdin)
    try:
        helper.create(cfg, stdio)
    finally:
        for fd in child_fds:
            os.close(fd)
    return helper, io


def _listen(state_dir: str) -> socket.socket:
    """The control socket ``<state_dir>/shim.sock`` (mode 0600), listening."""
    path = os.path.join(state_dir, "shim.sock")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    bind_unix(lsock, path)
    os.chmod(path, 0o600)
    lsock.listen(64)
    return lsock


def exec_native_spare(binary: str, job_fd: int, nice: int | None,
                      cgroup_parent: str | None = None, staging: str | None = None) -> None:
    """Become a *spare* native shim before the container is known (in a spare of the
    launcher's, after its common set-up; returns only when no spare init can be made here,
    and then the caller goes on as a Python spare).

    Forks a ``SpareInit`` (a container init in fresh namespaces) and execve()s ``binary``
    with its channel and the spare's job socket ``job_fd``. The native shim then says
    ``ready`` (back at nice value ``nice``, when given), takes its job (the shim config as
    JSON, with the fd to report on) from ``job_fd``, sets up the state dir, log, stdio
    pipes and control socket itself, and hands the config to the spare init, which plans,
    makes its cgroup and mounts its rootfs (``container.plan_job``). So no Python process
    stands between the daemon and a container's init when it starts.

    With ``cgroup_parent`` on a cgroup v1 host, the spare init is also moved, now, into a
    cgroup of its own, ``<cgroup_parent>/spare-<pid>``, in every v1 hierarchy; the native
    shim renames it to the container's (v1 allows a rename within the same parent), so a
    start neither makes those directories nor moves a process there (``spare_cgroup``).
    With ``staging`` (an empty directory), the spare init builds /proc, /dev and /sys there
    in its own mount namespace, to be moved into the container's rootfs (``SpareInit``)."""
    from dockyard.errors import DockyardError
    from dockyard.runtime.cgroups import discover
    from dockyard.runtime.container import SpareInit

    try:
        spare = SpareInit(staging=staging)
    except (OSError, DockyardError) as exc:
        os.write(2, f"dockyard shim: no spare container init: {exc}\n".encode())
        return
    argv = [binary, "--job-fd", str(job_fd), "--init-fd", str(spare.chan.fileno()),
            "--init-pid", str(spare.pid)]
    if nice is not None:
        argv += ["--nice", str(nice)]
    spare_cg = spare_cgroup(cgroup_parent, spare.pid)
    if spare_cg:
        argv += ["--spare-cgroup", spare_cg]
    for h in discover()[1]:
        argv += ["--cgroup-mount", str(h.mount)]
    os.set_inheritable(job_fd, True)
    os.set_inheritable(spare.chan.fileno(), True)
    os.execv(binary, argv)


def spare_cgroup(parent: str | None, pid: int) -> str | None:
    """Make ``<parent>/spare-<pid>`` in every hierarchy of a cgroup v1 host (the cgroup2
    one of a hybrid host included) and move ``pid`` into it; its path, or None where that
    cannot be (no parent, a cgroup v2 host, an error: then nothing is left behind). The
    native shim renames it to the container's in the v1 hierarchies; in the cgroup2 one,
    which has no rename, the container keeps the spare's cgroup."""
    from dockyard.errors import DockyardError
    from dockyard.runtime.cgroups import CgroupV1, discover

    if not parent:
        return None
    version, hierarchies = discover()
    if version != "v1" or not hierarchies:
        return None
    cg = CgroupV1(f"{parent}/spare-{pid}", hierarchies)
    try:
        cg.create()
        cg.add(pid)
    except (OSError, DockyardError) as exc:
        # Half made, or the init in only some of it: the native shim copes with that (it
        # renames what is there, the init joins the rest, the shim removes what is left
        # once the init is out), so hand it over all the same; nothing is killed here.
        os.write(2, f"dockyard shim: spare cgroup {cg.path}: {exc}\n".encode())
        if not cg.exists():
            return None
    return cg.path


def exec_native(cfg: ShimConfig, result_fd: int, binary: str,
                create: Callable[..., Any] | None = None,
                helper: _Helper | None = None) -> NoReturn:
    """Become the native shim (called in the launcher's child; never returns).

    Does the part that needs Python — fork the creation helper, make the stdio pipes, open
    the log, bind the control socket, find the cgroup directories — and execve()s
    ``binary`` with those file descriptors. The helper runs on (creating the init) while the
    binary starts; the binary reports on ``result_fd`` once the helper reported. The child
    subreaper attribute survives execve: when the helper exits, the init is reparented to
    the binary, which reaps it. ``helper``: one forked ahead (then the caller is a child
    subreaper already); ``create`` replaces ``create_init`` (tests)."""
    _set_subreaper()
    os.makedirs(cfg.state_dir, exist_ok=True)
    log_fd = os.open(cfg.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    helper, io = _start_creation(cfg, create, helper)
    lsock = _listen(cfg.state_dir)
    fds = {"--listen-fd": lsock.fileno(), "--helper-fd": helper.chan.fileno(),
           "--result-fd": result_fd, "--log-fd": log_fd}
    for fd, stream in io.out.items():
        fds["--stdout-fd" if stream == STDOUT else "--stderr-fd"] = fd
    if io.stdin_fd >= 0:
        fds["--stdin-fd"] = io.stdin_fd
    argv = [binary, "--id", cfg.id, "--state-dir", cfg.state_dir,
            "--start-timeout", repr(float(cfg.start_timeout))]
    for name, fd in fds.items():
        os.set_inheritable(fd, True)
        argv += [name, str(fd)]
    argv += [flag for flag, on in (("--tty", cfg.tty), ("--open-stdin", cfg.open_stdin),
                                   ("--stdin-once", cfg.stdin_once)) if on]
    if cfg.cgroup_path:
        from dockyard.runtime.cgroups import open_cgroup

        cg = open_cgroup(cfg.cgroup_path)
        argv += ["--cgroup-path", cg.path]
        for h in cg.hierarchies:
            argv += ["--cgroup-mount", str(h.mount)]
    os.execv(binary, argv)


class Shim:
    """The shim in Python (see the module docstring): ``setup()``, then ``run()``."""

    def __init__(self, cfg: ShimConfig, create: Callable[..., Any] | None = None,
                 helper: _Helper | None = None) -> None:
        self.cfg = cfg
        self._create = create
        self.sel = selectors.DefaultSelector()
        self.helper: _Helper | None = helper             # holds the init until "start"
        self.pid = 0
        self.status = "created"
        self.exit_code: int | None = None
        self.started_at = ""
        self.finished_at = ""
        self.error = ""
        self.conns: dict[int, _Conn] = {}
        self.io = _Stdio({}, -1, cfg.tty)                 # the init's stdio
        self.partial: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.log_fd = -1
        self.masks: dict[int, int] = {}
        self.handlers: dict[int, Callable[[int, int], None]] = {}
        self.done_at = 0.0
        self.tokens = itertools.count(1)

    # --- selector bookkeeping -------------------------------------------------------

    def _watch(self, fd: int, mask: int, handler: Callable[[int, int], None]) -> None:
        self.handlers[fd] = handler
        old = self.masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            if old:
                self.sel.unregister(fd)
            self.masks.pop(fd, None)
            return
        if old:
            self.sel.modify(fd, mask)
        else:
            self.sel.register(fd, mask)
        self.masks[fd] = mask

    def _unwatch(self, fd: int) -> None:
        if self.masks.pop(fd, 0):
            self.sel.unregister(fd)
        self.handlers.pop(fd, None)

    # --- set-up ---------------------------------------------------------------------

    def setup(self) -> dict[str, Any]:
        """Create the init and the control socket; return the launcher's result message."""
        cfg = self.cfg
        os.makedirs(cfg.state_dir, exist_ok=True)
        self.log_fd = os.open(cfg.log_path,
                              os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        helper, io = _start_creation(cfg, self._create, self.helper)
        self.helper = None
        msg, fds = helper.recv()
        if not msg.get("ok"):
            helper.close()
            raise SetupError(str(msg.get("error")), str(msg.get("kind", "Internal")))
        self.helper = helper
        self.pid = int(msg["pid"])
        if cfg.tty:
            io = _tty_stdio(fds[0], cfg.open_stdin)
        self.io = io
        for fd in list(io.out) + ([io.stdin_fd] if io.stdin_fd >= 0 else []):
            os.set_blocking(fd, False)
        self.lsock = _listen(cfg.state_dir)
        self.lsock.setblocking(False)
        self._watch(self.lsock.fileno(), READ, self._on_accept)
        self._write_status()
        return {"ok": True, "pid": self.pid, "shim_pid": os.getpid()}

    def _write_status(self) -> None:
        doc = {
            "id": self.cfg.id, "pid": self.pid, "shim_pid": os.getpid(), "status": self.status,
            "exit_code": self.exit_code, "started_at": self.started_at,
            "finished_at": self.finished_at, "error": self.error,
        }
        # atomic, not fsync'd: it must survive the daemon's death (the page cache does);
        # after a power loss there is no container left to report on anyway
        write_atomic(os.path.join(self.cfg.state_dir, "status.json"), json.dumps(doc),
                     durable=False)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        sig_r, sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._watch(sig_r, READ, self._on_signal)
        self._update_io()
        self._reap()  # the init may have died already
        created_at = time.monotonic()
        gave_up = False
        while True:
            if self.status == "exited" and not self.io.out and self._idle():
                break
            timeout = None
            if self.done_at:
                timeout = max(0.0, self.done_at + LINGER - time.monotonic())
                if timeout == 0.0:
                    break
            elif self.status == "created" and not gave_up:
                # the engine starts a container right after its shim is up; one that is
                # still not started is orphaned (its daemon died in between): give it up
                timeout = max(0.0, created_at + self.cfg.start_timeout - time.monotonic())
                if timeout == 0.0:
                    self._give_up()
                    gave_up, timeout = True, None
            for key, mask in self.sel.select(timeout):
                handler = self.handlers.get(key.fd)
                if handler is not None:
                    handler(key.fd, mask)

    def _release_helper(self) -> None:
        """Close the helper's socket: it kills the init it holds and exits (the init, now
        ours, is reaped like any exit)."""
        if self.helper is not None:
            self.helper.close()
            self.helper = None

    def _give_up(self) -> None:
        """End a container that was never started."""
        self.error = "never started"
        self._release_helper()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Remove the socket, so that clients see the shim is gone (status.json stays)."""
        try:
            os.unlink(os.path.join(self.cfg.state_dir, "shim.sock"))
        except FileNotFoundError:
            pass

    def _idle(self) -> bool:
        return all(c.mode == "done" and not c.outbuf for c in self.conns.values())

    # --- signals and exits --------------------------------------------------------------

    def _on_signal(self, fd: int, mask: int) -> None:
        try:
            os.read(fd, 512)
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self) -> None:
        """Reap every child that exited: the init, the helper, and orphans of the container
        reparented to the shim (a subreaper). Only the init's status matters."""
        for pid, status in reaped():
            if pid == self.pid and self.exit_code is None:
                self._exited(exit_status(status))

    def _exited(self, code: int) -> None:
        self.exit_code = code
        self.finished_at = rfc3339nano(time.time_ns())
        if not self.io.out:
            self._finish()

    def _finish(self) -> None:
        """The init has exited and its output is drained: record, answer, wind down."""
        if self.status == "exited":
            return
        for stream, buf in self.partial.items():
            if buf:
                self._log(stream, bytes(buf))
                buf.clear()
        self.status = "exited"
        self._write_status()
        self._release_helper()
        reply = self._state()
        for conn in list(self.conns.values()):
            if conn.mode == "wait":
                self._reply(conn, reply)
                conn.mode, conn.closing = "done", True
            elif conn.mode == "attach":
                conn.mode, conn.closing = "done", True
                self._flush(conn)
        self._close_stdin()
        self._cleanup_cgroup()  # after the answers: nobody waits on it
        self.done_at = time.monotonic()

    def _cgroup(self) -> Any:
        if not self.cfg.cgroup_path:
            return None
        from dockyard.runtime.cgroups import open_cgroup

        return open_cgroup(self.cfg.cgroup_path)

    def _cleanup_cgroup(self) -> None:
        """Kill what is left in the container's cgroup and remove it."""
        try:
            cg = self._cgroup()
            if cg is not None:
                cg.kill_all(signal.SIGKILL)
                cg.destroy()
        except Exception as exc:  # never let cleanup take the shim down before it answers
            print(f"shim {self.cfg.id[:12]}: cgroup cleanup: {exc}", flush=True)

    # --- the container's stdio -------------------------------------------------------------

    def _update_io(self) -> None:
        """Wait for output unless paused by a lagging client, and for stdin-writable while
        stdin bytes are pending. A pty master is both."""
        io = self.io
        for fd in io.out:
            want = 0 if io.paused else READ
            if fd == io.stdin_fd and io.stdin_buf:
                want |= WRITE
            self._watch(fd, want, self._on_io)
        if io.stdin_fd >= 0 and io.stdin_fd not in io.out:
            self._watch(io.stdin_fd, WRITE if io.stdin_buf else 0, self._on_io)

    def _on_io(self, fd: int, mask: int) -> None:
        if mask & WRITE and fd == self.io.stdin_fd:
            self._drain_stdin()
        if mask & READ and fd in self.io.out:
            self._read_output(fd)

    def _read_output(self, fd: int) -> None:
        stream = self.io.out[fd]
        data = read_output(fd)
        if data is None:
            return
        if not data:
            self._drop_output(fd)
            if not self.io.out and self.exit_code is not None:
                self._finish()
            return
        self._log_chunk(stream, data)
        self._broadcast(stream, data)

    def _drop_output(self, fd: int) -> None:
        io = self.io
        self._unwatch(fd)
        io.out.pop(fd, None)
        if fd == io.stdin_fd:
            io.stdin_fd = -1
            io.stdin_buf.clear()
        os.close(fd)

    def _log_chunk(self, stream: int, data: bytes) -> None:
        """Log each complete line, in pieces of at most 16 KiB as docker does (the last
        piece ends with the newline); keep an unterminated shorter rest for later."""
        buf = self.partial[stream]
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            end = len(buf) if nl < 0 else nl + 1
            if end - start >= MAX_LOG_LINE:
                end = start + MAX_LOG_LINE
            elif nl < 0:
                break
            self._log(stream, bytes(buf[start:end]))
            start = end
        del buf[:start]

    def _log(self, stream: int, line: bytes) -> None:
        entry = json.dumps({
            "log": line.decode("utf-8", "replace"),
            "stream": _STREAM_NAMES[stream],
            "time": rfc3339nano(time.time_ns()),
        }) + "\n"
        os.write(self.log_fd, entry.encode())

    def _broadcast(self, stream: int, data: bytes) -> None:
        frame = self.io.frame(stream, data)
        lagging = False
        for conn in list(self.conns.values()):  # a failed send closes (removes) a conn
            if conn.mode == "attach" and conn.streams[stream - 1]:
                conn.outbuf += frame
                self._flush(conn)
                lagging = lagging or len(conn.outbuf) > HIGH_WATER
        if lagging and not self.io.paused:
            self.io.paused = True
            self._update_io()

    def _maybe_resume(self) -> None:
        if self.io.paused and not any(
                len(c.outbuf) > LOW_WATER for c in self.conns.values() if c.mode == "attach"):
            self.io.paused = False
            self._update_io()

    def _feed_stdin(self, data: bytes) -> None:
        if self.io.stdin_fd < 0:
            return
        self.io.stdin_buf += data
        self._drain_stdin()

    def _drain_stdin(self) -> None:
        io = self.io
        fd = io.stdin_fd
        if fd < 0:
            return
        while io.stdin_buf:
            try:
                n = os.write(fd, io.stdin_buf)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the process closed its stdin
                io.stdin_buf.clear()
                break
            del io.stdin_buf[:n]
        if not io.stdin_buf and io.stdin_close_pending:
            self._close_stdin()
            return
        self._update_io()
        for conn in list(self.conns.values()):
            if conn.stdin and conn.mode == "attach":
                self._update_mask(conn)

    def _close_stdin(self, now: bool = False) -> None:
        """End the container's stdin once pending bytes are written (a pipe is closed; a
        pty, shared with the output, is left alone)."""
        io = self.io
        fd = io.stdin_fd
        if fd < 0 or fd in io.out:
            return
        if io.stdin_buf and not now:
            io.stdin_close_pending = True
            return
        self._unwatch(fd)
        os.close(fd)
        io.stdin_fd = -1
        io.stdin_buf.clear()

    # --- clients ---------------------------------------------------------------------------

    def _on_accept(self, fd: int, mask: int) -> None:
        while True:
            try:
                sock, _ = self.lsock.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            conn = _Conn(sock, next(self.tokens))
            self.conns[sock.fileno()] = conn
            self._watch(sock.fileno(), READ, self._on_conn)

    def _on_conn(self, fd: int, mask: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            return
        if mask & WRITE:
            self._flush(conn)
        if mask & READ and conn.sock.fileno() >= 0:
            self._read_conn(conn)

    def _read_conn(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
            conn.outbuf.clear()
        if not data:
            self._conn_eof(conn)
            return
        if conn.mode == "attach":
            if conn.stdin:
                self._feed_stdin(data)
            return
        if conn.mode:
            return
        conn.inbuf += data
        nl = conn.inbuf.find(b"\n")
        if nl < 0:
            if len(conn.inbuf) > 65536:
                self._reply(conn, {"ok": False, "error": "request too long",
                                   "kind": "InvalidArgument"})
                conn.mode, conn.closing = "done", True
            return
        line, rest = bytes(conn.inbuf[:nl]), bytes(conn.inbuf[nl + 1:])
        conn.inbuf.clear()
        try:
            self._dispatch(conn, json.loads(line))
        except Exception as exc:  # a bad request must not take the shim down
            self._reply(conn, {"ok": False, "error": f"invalid request: {exc}",
                               "kind": "InvalidArgument"})
            conn.mode, conn.closing = "done", True
        if rest and conn.stdin and conn.mode == "attach":
            self._feed_stdin(rest)

    def _conn_eof(self, conn: _Conn) -> None:
        conn.eof = True
        if conn.mode == "attach":
            # the client's stdin ended (a half-close); output flows until the exit
            if conn.stdin and self.cfg.stdin_once and not conn.detached:
                self._close_stdin()
            if conn.detached:
                self._close(conn)
            else:
                self._update_mask(conn)
        elif conn.mode == "done" and conn.outbuf:
            conn.closing = True
            self._update_mask(conn)
        else:
            self._close(conn)  # a waiter or a caller that hung up is gone

    def _dispatch(self, conn: _Conn, req: dict[str, Any]) -> None:
        if not isinstance(req, dict):
            raise ValueError("not a JSON object")
        op = req.get("op")
        if op == "state":
            reply = self._state()
        elif op == "start":
            reply = self._start()
        elif op == "wait":
            if self.status != "exited":
                conn.mode = "wait"  # answered by _finish
                return
            reply = self._state()
        elif op == "attach":
            conn.streams = (bool(req.get("stdout", True)), bool(req.get("stderr", True)))
            conn.stdin = bool(req.get("stdin")) and self.io.stdin_fd >= 0
            self._reply(conn, {"ok": True, "token": conn.token})
            if self.status == "exited":
                conn.mode, conn.closing = "done", True
                self._flush(conn)
            else:
                conn.mode = "attach"
            return
        elif op == "detach":
            reply = self._detach(int(req.get("token", 0)))
        elif op == "kill":
            reply = self._kill(int(req.get("signal", signal.SIGKILL)), bool(req.get("all")))
        elif op == "resize":
            reply = self._resize(str(req.get("exec") or ""), int(req.get("height", 0)),
                                 int(req.get("width", 0)))
        else:
            reply = {"ok": False, "error": f"unknown op: {op!r}", "kind": "InvalidArgument"}
        self._reply(conn, reply)
        conn.mode, conn.closing = "done", True
        self._flush(conn)

    def _state(self) -> dict[str, Any]:
        return {
            "ok": True, "status": self.status, "pid": self.pid, "exit_code": self.exit_code,
            "started_at": self.started_at, "finished_at": self.finished_at, "error": self.error,
        }

    def _start(self) -> dict[str, Any]:
        if self.status != "created":
            return {"ok": False, "error": f"cannot start a container that is {self.status}",
                    "kind": "Conflict"}
        helper, self.helper = self.helper, None
        if helper is None:
            return {"ok": False, "error": "the container's init is gone", "kind": "Conflict"}
        try:
            helper.send({"op": "start"})
            msg, _ = helper.recv()
        except OSError as exc:
            msg = {"ok": False, "error": f"start: {exc}", "kind": "Internal"}
        finally:
            helper.close()
        if not msg.get("ok"):
            # the init is gone (the helper reaped it): the container ends here
            self.error = str(msg.get("error"))
            if self.exit_code is None:
                self._exited(255)
            return {"ok": False, "error": self.error, "kind": msg.get("kind", "Internal")}
        self.status = "running"
        self.started_at = rfc3339nano(time.time_ns())
        self._write_status()
        return self._state()

    def _detach(self, token: int) -> dict[str, Any]:
        """Mark an attach session as detaching: its coming hang-up does not end the
        container's stdin."""
        for conn in self.conns.values():
            if conn.token == token and conn.mode == "attach":
                conn.detached = True
                return {"ok": True}
        return {"ok": False, "error": f"no session {token}", "kind": "NotFound"}

    def _kill(self, sig: int, all_: bool) -> dict[str, Any]:
        if self.exit_code is not None or self.status == "exited":
            return {"ok": False, "error": "container not running", "kind": "Conflict"}
        if all_:
            try:
                cg = self._cgroup()
                if cg is not None:
                    cg.kill_all(sig)
            except Exception:
                pass
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return {"ok": False, "error": "container not running", "kind": "Conflict"}
        if sig == signal.SIGKILL and self.status == "created":
            self._release_helper()  # the init is the helper's child until the helper exits
        return {"ok": True}

    def _resize(self, exec_id: str, height: int, width: int) -> dict[str, Any]:
        if exec_id:
            return {"ok": False, "error": f"no such exec: {exec_id}", "kind": "NotFound"}
        io = self.io
        if not io.tty or not io.out:
            return {"ok": False, "error": "no tty to resize", "kind": "Conflict"}
        fd = next(iter(io.out))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        return {"ok": True}

    def _reply(self, conn: _Conn, msg: dict[str, Any]) -> None:
        conn.outbuf += json.dumps(msg).encode() + b"\n"
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        while conn.outbuf:
            try:
                n = conn.sock.send(conn.outbuf)
            except BlockingIOError:
                break
            except OSError:
                conn.outbuf.clear()
                self._close(conn)
                return
            del conn.outbuf[:n]
        if not conn.outbuf and conn.closing:
            self._close(conn)
            return
        self._update_mask(conn)
        self._maybe_resume()

    def _update_mask(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd < 0 or fd not in self.conns:
            return
        want = 0 if conn.eof else READ
        if conn.outbuf:
            want |= WRITE
        if conn.stdin and conn.mode == "attach" and len(self.io.stdin_buf) > HIGH_WATER:
            want &= ~READ
        self._watch(fd, want, self._on_conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._unwatch(fd)
            self.conns.pop(fd, None)
        conn.sock.close()
        conn.mode = "done"
        self._maybe_resume()


def _make_stdio(tty: bool, stdin: bool, discard: bool = False
                ) -> tuple[tuple[int, int, int] | None, list[int], _Stdio]:
    """Pipes for a process without a tty: (its fds 0-2, fds to close after the fork, ours).
    With a tty the runtime makes the pty; nothing to do here. ``discard`` (a detached exec):
    output to /dev/null."""
    if tty:
        return None, [], _Stdio({}, -1, True)
    child: list[int] = []
    stdin_w = -1
    if stdin:
        r, stdin_w = os.pipe2(os.O_CLOEXEC)
    else:
        r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    child.append(r)
    if discard:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        child.append(null)
        return (r, null, null), child, _Stdio({}, stdin_w, False)
    o_r, o_w = os.pipe2(os.O_CLOEXEC)
    e_r, e_w = os.pipe2(os.O_CLOEXEC)
    child += [o_w, e_w]
    return (r, o_w, e_w), child, _Stdio({o_r: STDOUT, e_r: STDERR}, stdin_w, False)


def _tty_stdio(master: int, stdin: bool) -> _Stdio:
    return _Stdio({master: STDOUT}, master if stdin else -1, True)


def main(cfg: dict[str, Any], result_fd: int, create: Callable[..., Any] | None = None,
         helper: _Helper | None = None) -> int:
    """Entry point of the Python shim in the forked process (called by the launcher's
    child): set up, report on ``result_fd``, serve. ``helper``: one forked ahead;
    ``create`` replaces ``create_init`` (tests)."""
    _set_subreaper()
    shim = Shim(ShimConfig.from_json(cfg), create=create, helper=helper)
    try:
        result = shim.setup()
    except Exception as exc:
        result = {"ok": False, "error": str(exc), "kind": getattr(exc, "kind", type(exc).__name__)}
        os.write(result_fd, json.dumps(result).encode() + b"\n")
        os.close(result_fd)
        return 1
    os.write(result_fd, json.dumps(result).encode() + b"\n")
    os.close(result_fd)
    try:
        shim.run()
    finally:
        shim.close()
    return 0


def _set_subreaper() -> None:
    from dockyard.linux.caps import set_child_subreaper

    try:
        set_child_subreaper(True)
    except OSError:
        pass
