"""The per-container shim: parent of the container's init, owner of its stdio and its log.

One shim runs per running container. The launcher forks it (``launcher.py``); it is
single-threaded and event-driven (``selectors``), so it costs little memory and no thread
ever exists in a process that forks into new namespaces. It

* creates the container's init through ``dockyard.runtime.container.create_init`` (the
  init then waits for ``start``), and reports the outcome on ``result_fd``;
* reads the container's stdout/stderr (or its pty master), writes every line to the
  json-file log and copies the bytes to attached clients; forwards their stdin;
* starts exec sessions (``exec_process``) whose output goes to the one client that asked;
* reaps the init and exec'd processes (as a child subreaper) and records the init's exit
  status in ``status.json`` before telling waiters, so a daemon that was down when the
  container exited still learns its exit code;
* serves the JSON-line protocol of docs/architecture.md §3 on ``<state_dir>/shim.sock``.

The shim exits once the container has exited, its output is drained into the log and
every waiter and attached client has been answered.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import selectors
import signal
import socket
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.util.atomicfile import write_atomic
from dockyard.util.timefmt import rfc3339nano
from dockyard.util.unixsock import bind_unix

__all__ = ["ShimConfig", "Shim", "main", "exit_status"]

STDOUT, STDERR = 1, 2
_STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
READ_CHUNK = 65536
MAX_LOG_LINE = 16 * 1024          # docker's json-file splits longer lines (partial)
HIGH_WATER = 1 << 20              # stop reading a process while its client lags this much
LOW_WATER = 1 << 18
LINGER = 5.0                      # seconds to wait for slow clients after the exit
START_TIMEOUT = 120.0             # a container never started (its daemon died) is given up
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


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
                 "token", "detached", "exec_id")

    def __init__(self, sock: socket.socket, token: int) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = ""                # "" | "attach" | "exec" | "wait" | "exec_wait" | "done"
        self.streams: tuple[bool, bool] = (False, False)
        self.stdin = False
        self.closing = False          # close once outbuf is flushed
        self.eof = False              # the client half-closed
        self.token = token            # names an attach session for "detach"
        self.detached = False         # its EOF is a detach, not the end of stdin
        self.exec_id = ""


@dataclass
class _Exec:
    id: str
    pid: int
    io: _Stdio
    conn: _Conn | None
    exit_code: int | None = None
    done: bool = False
    waiters: list[_Conn] = field(default_factory=list)


class SetupError(Exception):
    """The helper could not create the container (``kind`` names the error class)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _send(chan: socket.socket, msg: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    socket.send_fds(chan, [json.dumps(msg).encode()], list(fds))


def _recv(chan: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(chan, 65536, 4)
    if not data:
        return {"ok": False, "error": "the shim helper exited", "kind": "Internal"}, fds
    return dict(json.loads(data)), fds


class _Helper:
    """A throwaway child of the shim that does one heavy job (creating the init, starting an
    exec'd process). The long-lived shim then never touches the memory that work dirties:
    a shim's private pages stay few, which is most of its per-container cost. The shim is a
    child subreaper, so what the helper forks is reparented to it when the helper exits."""

    def __init__(self, job: Callable[[socket.socket], None]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                job(theirs)
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

    def recv(self) -> tuple[dict[str, Any], list[int]]:
        return _recv(self.chan)

    def send(self, msg: dict[str, Any]) -> None:
        _send(self.chan, msg)

    def close(self) -> None:
        self.chan.close()


class Shim:
    def __init__(self, cfg: ShimConfig, create: Callable[..., Any] | None = None,
                 spawn_exec: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg
        self._create = create
        self._spawn_exec = spawn_exec
        self.sel = selectors.DefaultSelector()
        self.helper: _Helper | None = None               # holds the init until "start"
        self.helpers: set[int] = set()                   # helper pids, reaped and ignored
        self.orphan_exits: dict[int, int] = {}           # exits of pids not (yet) known
        self.pid = 0
        self.status = "created"
        self.exit_code: int | None = None
        self.started_at = ""
        self.finished_at = ""
        self.error = ""
        self.conns: dict[int, _Conn] = {}
        self.io = _Stdio({}, -1, cfg.tty)                 # the init's stdio
        self.owner: dict[int, _Stdio] = {}                 # fd -> whose stdio it is
        self.execs: dict[str, _Exec] = {}
        self.exec_by_pid: dict[int, _Exec] = {}
        self.exec_by_io: dict[int, _Exec] = {}             # id(_Stdio) -> exec
        self.partial: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.log_fd = -1
        self.masks: dict[int, int] = {}
        self.handlers: dict[int, Callable[[int, int], None]] = {}
        self.done_at = 0.0
        self.tokens = itertools.count(1)
        self.start_timeout = START_TIMEOUT

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
        self.log_fd = os.open(cfg.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        with open(os.path.join(cfg.bundle, "config.json"), "rb") as f:
            spec = json.load(f)
        create = self._create
        if create is None:
            from dockyard.oci.mount import Mount
            from dockyard.runtime.container import Stdio, create_init

            mounts = [Mount.from_json(m) for m in cfg.rootfs_mounts]

            def create(spec: dict[str, Any], stdio: Any) -> Any:
                return create_init(
                    spec, Path(cfg.bundle), container_id=cfg.id,
                    stdio=None if stdio is None else Stdio(*stdio),
                    rootfs_mounts=mounts, cgroup_path=cfg.cgroup_path or None,
                )

        stdio, child_fds, io = _make_stdio(cfg.tty, cfg.open_stdin)

        def job(chan: socket.socket) -> None:
            init = create(spec, stdio)
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

        try:
            helper = _Helper(job)
        finally:
            for fd in child_fds:
                os.close(fd)
        self.helpers.add(helper.pid)
        msg, fds = helper.recv()
        if not msg.get("ok"):
            helper.close()
            raise SetupError(str(msg.get("error")), str(msg.get("kind", "Internal")))
        self.helper = helper
        self.pid = int(msg["pid"])
        if cfg.tty:
            io = _tty_stdio(fds[0], cfg.open_stdin)
        self.io = io
        self._adopt(io)
        self._listen()
        self._write_status()
        return {"ok": True, "pid": self.pid, "shim_pid": os.getpid()}

    def _adopt(self, io: _Stdio) -> None:
        for fd in list(io.out) + ([io.stdin_fd] if io.stdin_fd >= 0 else []):
            os.set_blocking(fd, False)
            self.owner[fd] = io

    def _listen(self) -> None:
        path = os.path.join(self.cfg.state_dir, "shim.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        bind_unix(lsock, path)
        os.chmod(path, 0o600)
        lsock.listen(64)
        lsock.setblocking(False)
        self.lsock = lsock
        self._watch(lsock.fileno(), READ, self._on_accept)

    def _write_status(self) -> None:
        doc = {
            "id": self.cfg.id, "pid": self.pid, "shim_pid": os.getpid(), "status": self.status,
            "exit_code": self.exit_code, "started_at": self.started_at,
            "finished_at": self.finished_at, "error": self.error,
        }
        # atomic, not fsync'd: it must survive the daemon's death (the page cache does);
        # after a power loss there is no container left to report on anyway
        write_atomic(os.path.join(self.cfg.state_dir, "status.json"), json.dumps(doc), durable=False)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        sig_r, sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._watch(sig_r, READ, self._on_signal)
        self._update_io(self.io)
        self._reap()  # the init may have died already
        created_at = time.monotonic()
        while True:
            if self.status == "exited" and not self.io.out and self._idle():
                break
            timeout = None
            if self.done_at:
                timeout = max(0.0, self.done_at + LINGER - time.monotonic())
                if timeout == 0.0:
                    break
            elif self.status == "created":
                # the engine starts a container right after its shim is up; one that is
                # still not started is orphaned (its daemon died in between): give it up
                timeout = max(0.0, created_at + self.start_timeout - time.monotonic())
                if timeout == 0.0:
                    self._give_up()
                    timeout = None
            for key, mask in self.sel.select(timeout):
                handler = self.handlers.get(key.fd)
                if handler is not None:
                    handler(key.fd, mask)

    def _give_up(self) -> None:
        """End a container that was never started: the init is killed with its helper."""
        self.error = "never started"
        if self.helper is not None:
            self.helper.close()  # the helper kills the init it holds and exits
            self.helper = None
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
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = exit_status(status)
            if pid in self.helpers:
                self.helpers.discard(pid)
            elif pid == self.pid and self.exit_code is None:
                self.exit_code = code
                self.finished_at = rfc3339nano(time.time_ns())
                if not self.io.out:
                    self._finish()
            elif pid in self.exec_by_pid:
                self._exec_exited(self.exec_by_pid.pop(pid), code)
            else:  # a process we have not been told about yet (reparented early)
                self.orphan_exits[pid] = code

    def _exec_exited(self, ex: "_Exec", code: int) -> None:
        ex.exit_code = code
        if not ex.io.out:
            self._finish_exec(ex)

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
        if self.helper is not None:
            self.helper.close()
            self.helper = None
        reply = self._state()
        for conn in list(self.conns.values()):
            if conn.mode == "wait":
                self._reply(conn, reply)
                conn.mode, conn.closing = "done", True
            elif conn.mode == "attach":
                conn.mode, conn.closing = "done", True
                self._flush(conn)
        self._close_stdin(self.io)
        for ex in list(self.execs.values()):  # the pid namespace is gone with its init
            if not ex.done and ex.exit_code is None:
                ex.exit_code = 137
                self._finish_exec(ex)
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

    # --- process stdio --------------------------------------------------------------------

    def _update_io(self, io: _Stdio) -> None:
        """Wait for output unless paused by a lagging client, and for stdin-writable while
        stdin bytes are pending. A pty master is both."""
        for fd in io.out:
            want = 0 if io.paused else READ
            if fd == io.stdin_fd and io.stdin_buf:
                want |= WRITE
            self._watch(fd, want, self._on_io)
        if io.stdin_fd >= 0 and io.stdin_fd not in io.out:
            self._watch(io.stdin_fd, WRITE if io.stdin_buf else 0, self._on_io)

    def _on_io(self, fd: int, mask: int) -> None:
        io = self.owner.get(fd)
        if io is None:
            return
        if mask & WRITE:
            self._drain_stdin(io)
        if mask & READ and fd in io.out:
            self._read_output(io, fd)

    def _read_output(self, io: _Stdio, fd: int) -> None:
        stream = io.out[fd]
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the pty's last slave fd closed
                raise
            data = b""
        if not data:
            self._drop_fd(io, fd)
            self._output_ended(io)
            return
        if io is self.io:
            self._log_chunk(stream, data)
            self._broadcast(stream, data)
        else:
            self._to_exec_client(self.exec_by_io[id(io)], stream, data)

    def _drop_fd(self, io: _Stdio, fd: int) -> None:
        self._unwatch(fd)
        io.out.pop(fd, None)
        if fd == io.stdin_fd:
            io.stdin_fd = -1
            io.stdin_buf.clear()
        self.owner.pop(fd, None)
        os.close(fd)

    def _output_ended(self, io: _Stdio) -> None:
        if io.out:
            return
        if io is self.io:
            if self.exit_code is not None:
                self._finish()
        else:
            ex = self.exec_by_io[id(io)]
            if ex.exit_code is not None:
                self._finish_exec(ex)

    def _log_chunk(self, stream: int, data: bytes) -> None:
        buf = self.partial[stream]
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._log(stream, bytes(buf[start:nl + 1]))
            start = nl + 1
        del buf[:start]
        while len(buf) >= MAX_LOG_LINE:
            self._log(stream, bytes(buf[:MAX_LOG_LINE]))
            del buf[:MAX_LOG_LINE]

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
            self._update_io(self.io)

    def _to_exec_client(self, ex: _Exec, stream: int, data: bytes) -> None:
        conn = ex.conn
        if conn is None or conn.mode != "exec" or not conn.streams[stream - 1]:
            return  # detached, or the client is gone: the output is dropped
        conn.outbuf += ex.io.frame(stream, data)
        self._flush(conn)
        if len(conn.outbuf) > HIGH_WATER and not ex.io.paused:
            ex.io.paused = True
            self._update_io(ex.io)

    def _maybe_resume(self) -> None:
        if self.io.paused and not any(
                len(c.outbuf) > LOW_WATER for c in self.conns.values() if c.mode == "attach"):
            self.io.paused = False
            self._update_io(self.io)
        for ex in self.execs.values():
            if ex.io.paused and (ex.conn is None or len(ex.conn.outbuf) <= LOW_WATER):
                ex.io.paused = False
                self._update_io(ex.io)

    def _feed_stdin(self, io: _Stdio, data: bytes) -> None:
        if io.stdin_fd < 0:
            return
        io.stdin_buf += data
        self._drain_stdin(io)

    def _drain_stdin(self, io: _Stdio) -> None:
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
            self._close_stdin(io)
            return
        self._update_io(io)
        for conn in list(self.conns.values()):
            if conn.stdin and conn.mode in ("attach", "exec"):
                self._update_mask(conn)

    def _close_stdin(self, io: _Stdio, now: bool = False) -> None:
        """End the process's stdin once pending bytes are written (a pipe is closed; a pty,
        shared with the output, is left alone)."""
        fd = io.stdin_fd
        if fd < 0:
            return
        if fd in io.out:
            return
        if io.stdin_buf and not now:
            io.stdin_close_pending = True
            return
        self._unwatch(fd)
        self.owner.pop(fd, None)
        os.close(fd)
        io.stdin_fd = -1
        io.stdin_buf.clear()

    # --- exec sessions ---------------------------------------------------------------------

    def _exec(self, conn: _Conn, req: dict[str, Any]) -> dict[str, Any]:
        eid = str(req.get("id") or "")
        if not eid or eid in self.execs:
            return {"ok": False, "error": f"invalid exec id: {eid!r}", "kind": "InvalidArgument"}
        if self.status != "running":
            return {"ok": False, "error": f"container {self.cfg.id} is not running", "kind": "Conflict"}
        tty = bool(req.get("tty"))
        detach = bool(req.get("detach"))
        want_stdin = bool(req.get("stdin")) and not detach
        process = dict(req.get("process") or {})
        process["terminal"] = tty
        stdio, child_fds, io = _make_stdio(tty, want_stdin, discard=detach)
        spawn = self._spawn_exec
        if spawn is None:
            from dockyard.runtime.container import Stdio, exec_process

            def spawn(process: dict[str, Any], stdio: Any, user: str | None) -> Any:
                return exec_process(self.pid, process, stdio=None if stdio is None else Stdio(*stdio),
                                    cgroup_path=self.cfg.cgroup_path or None, user=user)
        # Spawned by the shim itself, not a helper: an exec is on the latency path (the
        # creation's helper saves memory once per shim; here it would cost a fork per exec)
        try:
            proc = spawn(process, stdio, req.get("user") or None)
        except Exception as exc:
            if io.stdin_fd >= 0:
                os.close(io.stdin_fd)
            for fd in io.out:
                os.close(fd)
            return {"ok": False, "error": str(exc), "kind": type(exc).__name__}
        finally:
            for fd in child_fds:
                os.close(fd)
        pid = proc.pid
        fds = [proc.pty_master] if proc.pty_master is not None else []
        if tty:  # a detached tty exec's output is read and dropped, so it never blocks
            io = _tty_stdio(fds[0], want_stdin)
        ex = _Exec(eid, pid, io, None if detach else conn)
        self.execs[eid] = ex
        self.exec_by_io[id(io)] = ex
        self._adopt(io)
        self._update_io(io)
        if pid in self.orphan_exits:
            self._exec_exited(ex, self.orphan_exits.pop(pid))
        else:
            self.exec_by_pid[pid] = ex
        self._reap()  # it may be gone already
        return {"ok": True, "pid": pid}

    def _finish_exec(self, ex: _Exec) -> None:
        if ex.done:
            return
        ex.done = True
        for fd in list(ex.io.out):
            self._drop_fd(ex.io, fd)
        self._close_stdin(ex.io, now=True)
        reply = {"ok": True, "exit_code": ex.exit_code}
        for w in ex.waiters:
            self._reply(w, reply)
            w.mode, w.closing = "done", True
        ex.waiters.clear()
        if ex.conn is not None and ex.conn.mode == "exec":
            ex.conn.mode, ex.conn.closing = "done", True
            self._flush(ex.conn)
        self.exec_by_io.pop(id(ex.io), None)

    def _exec_client_gone(self, ex: _Exec) -> None:
        """The exec's client hung up mid-session: like a closed terminal, the process gets
        SIGHUP (its pty is closed); a pipe-fed process sees the end of its stdin."""
        ex.conn = None
        if ex.io.tty:
            for fd in list(ex.io.out):
                self._drop_fd(ex.io, fd)
            try:
                os.kill(ex.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
        else:
            self._close_stdin(ex.io, now=True)

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
                self._feed_stdin(self.io, data)
            return
        if conn.mode == "exec":
            ex = self.execs.get(conn.exec_id)
            if ex is not None and conn.stdin:
                self._feed_stdin(ex.io, data)
            return
        if conn.mode:
            return
        conn.inbuf += data
        nl = conn.inbuf.find(b"\n")
        if nl < 0:
            if len(conn.inbuf) > 65536:
                self._reply(conn, {"ok": False, "error": "request too long"})
                conn.mode, conn.closing = "done", True
            return
        line, rest = bytes(conn.inbuf[:nl]), bytes(conn.inbuf[nl + 1:])
        conn.inbuf.clear()
        try:
            self._dispatch(conn, json.loads(line))
        except Exception as exc:  # a bad request must not take the shim down
            self._reply(conn, {"ok": False, "error": str(exc), "kind": type(exc).__name__})
            conn.mode, conn.closing = "done", True
        if rest and conn.stdin:
            if conn.mode == "attach":
                self._feed_stdin(self.io, rest)
            elif conn.mode == "exec" and conn.exec_id in self.execs:
                self._feed_stdin(self.execs[conn.exec_id].io, rest)

    def _conn_eof(self, conn: _Conn) -> None:
        conn.eof = True
        if conn.mode == "attach":
            # the client's stdin ended (a half-close); output flows until the exit
            if conn.stdin and self.cfg.stdin_once and not conn.detached:
                self._close_stdin(self.io)
            if conn.detached:
                self._close(conn)
            else:
                self._update_mask(conn)
        elif conn.mode == "exec":
            ex = self.execs.get(conn.exec_id)
            if conn.detached:
                self._close(conn)
                return
            if ex is not None and not ex.done and conn.stdin:
                if ex.io.tty:
                    # a terminal session has no half-close: its client hung up
                    self._close(conn)
                    return
                self._close_stdin(ex.io)
            self._update_mask(conn)
        elif conn.mode == "done" and conn.outbuf:
            conn.closing = True
            self._update_mask(conn)
        else:
            self._close(conn)  # a waiter or a caller that hung up is gone

    def _dispatch(self, conn: _Conn, req: dict[str, Any]) -> None:
        op = req.get("op")
        one_shot = True
        if op == "state":
            reply = self._state()
        elif op == "start":
            reply = self._start()
        elif op == "wait":
            if self.status == "exited":
                reply = self._state()
            else:
                conn.mode, one_shot = "wait", False
        elif op == "attach":
            conn.streams = (bool(req.get("stdout", True)), bool(req.get("stderr", True)))
            conn.stdin = bool(req.get("stdin")) and self.io.stdin_fd >= 0
            self._reply(conn, {"ok": True, "token": conn.token})
            if self.status == "exited":
                conn.mode, conn.closing = "done", True
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
        elif op == "exec":
            reply = self._exec(conn, req)
            if reply.get("ok") and not req.get("detach"):
                conn.mode, one_shot = "exec", False
                conn.exec_id = str(req["id"])
                conn.streams = (bool(req.get("stdout", True)), bool(req.get("stderr", True)))
                conn.stdin = bool(req.get("stdin"))
                reply["token"] = conn.token
                self._reply(conn, reply)
                ex = self.execs[conn.exec_id]
                if ex.done:
                    conn.mode, conn.closing = "done", True
                    self._flush(conn)
                return
        elif op == "exec_wait":
            ex = self.execs.get(str(req.get("id")))
            if ex is None:
                reply = {"ok": False, "error": f"no such exec: {req.get('id')}", "kind": "NotFound"}
            elif ex.done:
                reply = {"ok": True, "exit_code": ex.exit_code}
            else:
                ex.waiters.append(conn)
                conn.mode, one_shot = "exec_wait", False
        else:
            reply = {"ok": False, "error": f"unknown op: {op!r}", "kind": "InvalidArgument"}
        if one_shot:
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
            self.error = str(msg.get("error"))
            return {"ok": False, "error": self.error, "kind": msg.get("kind", "Internal")}
        self.status = "running"
        self.started_at = rfc3339nano(time.time_ns())
        self._write_status()
        return self._state()

    def _detach(self, token: int) -> dict[str, Any]:
        """Mark an attach or exec session as detaching: its coming hang-up neither ends the
        container's stdin nor hangs up an exec'd process, which keeps running."""
        for conn in self.conns.values():
            if conn.token == token and conn.mode in ("attach", "exec"):
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
        return {"ok": True}

    def _resize(self, exec_id: str, height: int, width: int) -> dict[str, Any]:
        if exec_id:
            ex = self.execs.get(exec_id)
            if ex is None:
                return {"ok": False, "error": f"no such exec: {exec_id}", "kind": "NotFound"}
            if ex.done:
                return {"ok": False, "error": f"exec {exec_id} has exited", "kind": "Conflict"}
            io = ex.io
        else:
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
        if conn.stdin and conn.mode in ("attach", "exec"):
            io = self.io if conn.mode == "attach" else (
                self.execs[conn.exec_id].io if conn.exec_id in self.execs else None)
            if io is not None and len(io.stdin_buf) > HIGH_WATER:
                want &= ~READ
        self._watch(fd, want, self._on_conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        mode = conn.mode
        if fd >= 0:
            self._unwatch(fd)
            self.conns.pop(fd, None)
        conn.sock.close()
        conn.mode = "done"
        if mode == "exec":
            ex = self.execs.get(conn.exec_id)
            if ex is not None and not ex.done:
                if conn.detached:
                    ex.conn = None  # it runs on; its output is dropped
                else:
                    self._exec_client_gone(ex)
        self._maybe_resume()


def _make_stdio(tty: bool, stdin: bool, discard: bool = False) -> tuple[tuple[int, int, int] | None, list[int], _Stdio]:
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


def main(cfg: dict[str, Any], result_fd: int) -> int:
    """Entry point in the forked shim process (called by the launcher's child)."""
    shim = Shim(ShimConfig.from_json(cfg))
    _set_subreaper()
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
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass
