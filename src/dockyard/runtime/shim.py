"""The per-container shim: parent of the container's init, owner of its stdio and its log.

One shim runs per running container. The launcher forks it (``launcher.py``); it is
single-threaded and event-driven (``selectors``), so that it costs little memory and no
thread ever exists in a process that forks into new namespaces. It

* creates the container's init through ``dockyard.runtime.container.create_init`` (the
  init then waits for ``start``), and reports the outcome on ``result_fd``;
* reads the container's stdout/stderr (or its pty master), writes every line to the
  json-file log and copies the bytes to attached clients;
* forwards attached clients' stdin to the container;
* reaps the init (and, as a child subreaper, anything reparented to it) and records the
  exit status in ``status.json`` before telling waiters, so a daemon that was down when the
  container exited still learns its exit code;
* serves the JSON-line protocol of docs/architecture.md §3 on ``<state_dir>/shim.sock``.

The shim exits once the container has exited, its output is drained into the log and
every waiter and attached client has been answered.
"""

from __future__ import annotations

import errno
import fcntl
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

STDIN, STDOUT, STDERR = 0, 1, 2
_STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
READ_CHUNK = 65536
MAX_LOG_LINE = 16 * 1024          # docker's json-file splits longer lines (partial)
HIGH_WATER = 1 << 20              # pause reading the container while a client lags this much
LOW_WATER = 1 << 18
LINGER = 5.0                      # seconds to wait for slow clients after the exit


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


class _Conn:
    """One client connection: a request line in, then a mode (attach/wait/one-shot)."""

    __slots__ = ("sock", "inbuf", "outbuf", "mode", "streams", "stdin", "closing", "eof")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = ""                # "", "attach", "wait", "done"
        self.streams: tuple[bool, bool] = (False, False)
        self.stdin = False
        self.closing = False          # close once outbuf is flushed
        self.eof = False              # the client half-closed


class Shim:
    def __init__(self, cfg: ShimConfig, create: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg
        self._create = create
        self.sel = selectors.DefaultSelector()
        self.init: Any = None
        self.pid = 0
        self.status = "created"
        self.exit_code: int | None = None
        self.started_at = ""
        self.finished_at = ""
        self.error = ""
        self.conns: dict[int, _Conn] = {}
        self.out_fds: dict[int, int] = {}      # fd -> stream (1/2); the pty master is stdout
        self.stdin_fd = -1                     # write end towards the container
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.partial: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.log_fd = -1
        self.paused_output = False
        self.exits: dict[int, int] = {}        # other reaped pids -> exit code (exec, issue 4)
        self.masks: dict[int, int] = {}
        self.handlers: dict[int, Callable[[int, int], None]] = {}
        self.done_at = 0.0

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

        child_fds: list[int] = []
        stdio: tuple[int, int, int] | None = None
        if not cfg.tty:
            if cfg.open_stdin:
                r, w = os.pipe2(os.O_CLOEXEC)
                self.stdin_fd = w
                child_fds.append(r)
            else:
                r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                child_fds.append(r)
            o_r, o_w = os.pipe2(os.O_CLOEXEC)
            e_r, e_w = os.pipe2(os.O_CLOEXEC)
            child_fds += [o_w, e_w]
            self.out_fds = {o_r: STDOUT, e_r: STDERR}
            stdio = (r, o_w, e_w)
        try:
            self.init = create(spec, stdio)
        finally:
            for fd in child_fds:
                os.close(fd)
        self.pid = self.init.pid
        if cfg.tty:
            master = self.init.pty_master
            self.out_fds = {master: STDOUT}
            if cfg.open_stdin:
                self.stdin_fd = master
        for fd in list(self.out_fds) + ([self.stdin_fd] if self.stdin_fd >= 0 else []):
            os.set_blocking(fd, False)
        self._listen()
        self._write_status()
        return {"ok": True, "pid": self.pid, "shim_pid": os.getpid()}

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
        self._watch(lsock.fileno(), selectors.EVENT_READ, self._on_accept)

    def _write_status(self) -> None:
        doc = {
            "id": self.cfg.id, "pid": self.pid, "shim_pid": os.getpid(), "status": self.status,
            "exit_code": self.exit_code, "started_at": self.started_at,
            "finished_at": self.finished_at, "error": self.error,
        }
        write_atomic(os.path.join(self.cfg.state_dir, "status.json"), json.dumps(doc),
                     durable=self.status == "exited")

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        sig_r, sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._watch(sig_r, selectors.EVENT_READ, self._on_signal)
        self._update_io()
        self._reap()  # the init may have died already
        while True:
            if self.status == "exited" and not self.out_fds and self._idle():
                break
            timeout = None
            if self.done_at:
                timeout = max(0.0, self.done_at + LINGER - time.monotonic())
                if timeout == 0.0:
                    break
            for key, mask in self.sel.select(timeout):
                handler = self.handlers.get(key.fd)
                if handler is not None:
                    handler(key.fd, mask)

    def close(self) -> None:
        """Remove the socket, so that clients see the shim is gone (status.json stays)."""
        try:
            os.unlink(os.path.join(self.cfg.state_dir, "shim.sock"))
        except FileNotFoundError:
            pass

    def _idle(self) -> bool:
        return all(c.mode == "done" and not c.outbuf for c in self.conns.values()) or not self.conns

    # --- signals and exit ---------------------------------------------------------------

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
            if pid == self.pid and self.exit_code is None:
                self.exit_code = code
                self.finished_at = rfc3339nano(time.time_ns())
                if not self.out_fds:
                    self._finish()
            else:
                self.exits[pid] = code

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
        self._cleanup_cgroup()
        reply = self._state()
        for conn in list(self.conns.values()):
            if conn.mode == "wait":
                self._reply(conn, reply)
                conn.mode, conn.closing = "done", True
            elif conn.mode == "attach":
                conn.mode, conn.closing = "done", True
                self._flush(conn)
        if self.stdin_fd >= 0 and self.stdin_fd not in self.out_fds:
            self._unwatch(self.stdin_fd)
            os.close(self.stdin_fd)
        self.stdin_fd = -1
        self.done_at = time.monotonic()

    def _cleanup_cgroup(self) -> None:
        """Kill what is left in the container's cgroup and remove it."""
        destroy = getattr(self.init, "destroy", None)
        if destroy is None:
            return
        try:
            destroy()
        except Exception as exc:  # never let cleanup take the shim down before it answers
            print(f"shim {self.cfg.id[:12]}: cgroup cleanup: {exc}", flush=True)

    # --- container output -----------------------------------------------------------------

    def _update_io(self) -> None:
        """Recompute what to wait for on the container's fds: output unless paused by a
        lagging client, stdin-writable while stdin bytes are pending. A pty master is both."""
        for fd in self.out_fds:
            want = 0 if self.paused_output else selectors.EVENT_READ
            if fd == self.stdin_fd and self.stdin_buf:
                want |= selectors.EVENT_WRITE
            self._watch(fd, want, self._on_io)
        if self.stdin_fd >= 0 and self.stdin_fd not in self.out_fds:
            self._watch(self.stdin_fd, selectors.EVENT_WRITE if self.stdin_buf else 0, self._on_io)

    def _on_io(self, fd: int, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._drain_stdin()
        if mask & selectors.EVENT_READ and fd in self.out_fds:
            self._read_output(fd)

    def _read_output(self, fd: int) -> None:
        stream = self.out_fds[fd]
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the pty's last slave fd closed
                raise
            data = b""
        if not data:
            self._unwatch(fd)
            del self.out_fds[fd]
            if fd == self.stdin_fd:
                self.stdin_fd = -1
            os.close(fd)
            if not self.out_fds and self.exit_code is not None:
                self._finish()
            return
        self._log_chunk(stream, data)
        self._broadcast(stream, data)

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
        frame = data if self.cfg.tty else struct.pack(">BxxxI", stream, len(data)) + data
        lagging = False
        for conn in self.conns.values():
            if conn.mode == "attach" and conn.streams[stream - 1]:
                conn.outbuf += frame
                self._flush(conn)
                lagging = lagging or len(conn.outbuf) > HIGH_WATER
        if lagging and not self.paused_output:
            self.paused_output = True
            self._update_io()

    def _maybe_resume_output(self) -> None:
        if not self.paused_output:
            return
        if any(len(c.outbuf) > LOW_WATER for c in self.conns.values() if c.mode == "attach"):
            return
        self.paused_output = False
        self._update_io()

    # --- container stdin ------------------------------------------------------------------

    def _feed_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0:
            return
        self.stdin_buf += data
        self._drain_stdin()

    def _drain_stdin(self) -> None:
        fd = self.stdin_fd
        if fd < 0:
            return
        while self.stdin_buf:
            try:
                n = os.write(fd, self.stdin_buf)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the container closed its stdin
                self.stdin_buf.clear()
                break
            del self.stdin_buf[:n]
        if not self.stdin_buf and self.stdin_close_pending and fd not in self.out_fds:
            self._unwatch(fd)
            os.close(fd)
            self.stdin_fd = -1
        self._update_io()
        for conn in self.conns.values():
            if conn.mode == "attach" and conn.stdin:
                self._update_mask(conn)

    # --- clients ---------------------------------------------------------------------------

    def _on_accept(self, fd: int, mask: int) -> None:
        while True:
            try:
                sock, _ = self.lsock.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self._watch(sock.fileno(), selectors.EVENT_READ, self._on_conn)

    def _on_conn(self, fd: int, mask: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(conn)
        if mask & selectors.EVENT_READ and conn.sock.fileno() >= 0:
            self._read_conn(conn)

    def _read_conn(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            conn.eof = True
            if conn.mode == "attach":
                # half-close: stdin ended; output keeps flowing until the container exits
                if conn.stdin and self.cfg.stdin_once:
                    self.stdin_close_pending = True
                    self._drain_stdin()
                self._update_mask(conn)
            elif conn.mode == "done" and conn.outbuf:
                conn.closing = True
                self._update_mask(conn)
            else:
                self._close(conn)  # a waiter or a caller that hung up is gone
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
                self._reply(conn, {"ok": False, "error": "request too long"})
                conn.mode, conn.closing = "done", True
            return
        line, rest = bytes(conn.inbuf[:nl]), bytes(conn.inbuf[nl + 1:])
        conn.inbuf.clear()
        try:
            req = json.loads(line)
            self._dispatch(conn, req)
        except Exception as exc:  # a bad request must not take the shim down
            self._reply(conn, {"ok": False, "error": str(exc), "kind": type(exc).__name__})
            conn.mode, conn.closing = "done", True
        if rest and conn.mode == "attach" and conn.stdin:
            self._feed_stdin(rest)

    def _dispatch(self, conn: _Conn, req: dict[str, Any]) -> None:
        op = req.get("op")
        if op == "state":
            self._reply(conn, self._state())
            conn.mode, conn.closing = "done", True
        elif op == "start":
            self._reply(conn, self._start())
            conn.mode, conn.closing = "done", True
        elif op == "wait":
            if self.status == "exited":
                self._reply(conn, self._state())
                conn.mode, conn.closing = "done", True
            else:
                conn.mode = "wait"
        elif op == "attach":
            conn.streams = (bool(req.get("stdout", True)), bool(req.get("stderr", True)))
            conn.stdin = bool(req.get("stdin")) and self.stdin_fd >= 0
            self._reply(conn, {"ok": True})
            if self.status == "exited":
                conn.mode, conn.closing = "done", True
            else:
                conn.mode = "attach"
        elif op == "kill":
            self._reply(conn, self._kill(int(req.get("signal", signal.SIGKILL)), bool(req.get("all"))))
            conn.mode, conn.closing = "done", True
        elif op == "resize":
            self._reply(conn, self._resize(int(req.get("height", 0)), int(req.get("width", 0))))
            conn.mode, conn.closing = "done", True
        else:
            self._reply(conn, {"ok": False, "error": f"unknown op: {op!r}", "kind": "InvalidArgument"})
            conn.mode, conn.closing = "done", True

    def _state(self) -> dict[str, Any]:
        return {
            "ok": True, "status": self.status, "pid": self.pid, "exit_code": self.exit_code,
            "started_at": self.started_at, "finished_at": self.finished_at, "error": self.error,
        }

    def _start(self) -> dict[str, Any]:
        if self.status != "created":
            return {"ok": False, "error": f"cannot start a container that is {self.status}",
                    "kind": "Conflict"}
        try:
            self.init.start()
        except Exception as exc:
            self.error = str(exc)
            return {"ok": False, "error": str(exc), "kind": type(exc).__name__}
        self.status = "running"
        self.started_at = rfc3339nano(time.time_ns())
        self._write_status()
        return self._state()

    def _kill(self, sig: int, all_: bool) -> dict[str, Any]:
        if self.exit_code is not None or self.status == "exited":
            return {"ok": False, "error": "container not running", "kind": "Conflict"}
        cgroup = getattr(self.init, "cgroup", None)
        if all_ and cgroup is not None:
            try:
                cgroup.kill_all(sig)
            except OSError:
                pass
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return {"ok": False, "error": "container not running", "kind": "Conflict"}
        return {"ok": True}

    def _resize(self, height: int, width: int) -> dict[str, Any]:
        if not self.cfg.tty or not self.out_fds:
            return {"ok": False, "error": "the container has no tty", "kind": "Conflict"}
        fd = next(iter(self.out_fds))
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
                self._close(conn)
                return
            del conn.outbuf[:n]
        if not conn.outbuf and conn.closing:
            self._close(conn)
            return
        self._update_mask(conn)
        self._maybe_resume_output()

    def _update_mask(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd < 0 or fd not in self.conns:
            return
        want = 0 if conn.eof else selectors.EVENT_READ
        if conn.outbuf:
            want |= selectors.EVENT_WRITE
        if conn.mode == "attach" and conn.stdin and len(self.stdin_buf) > HIGH_WATER:
            want &= ~selectors.EVENT_READ
        self._watch(fd, want, self._on_conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._unwatch(fd)
            self.conns.pop(fd, None)
        conn.sock.close()
        conn.mode = "done"
        self._maybe_resume_output()


def main(cfg: dict[str, Any], result_fd: int) -> int:
    """Entry point in the forked shim process (called by the launcher's child)."""
    shim = Shim(ShimConfig.from_json(cfg))
    _set_subreaper()
    try:
        result = shim.setup()
    except Exception as exc:
        result = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
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
