"""The exec shim: one ``docker exec`` session, served by a process of its own.

The container's shim is native code (``native/shim.c``) and cannot run what
``exec_process`` needs (setns, the container's cgroup, the user looked up in the
container's /etc/passwd, capabilities, a pty from the container's devpts). So every exec
session has a transient Python process: the launcher forks it (single-threaded, the
runtime pre-imported: a fork, no interpreter start), it calls ``exec_process``, serves the
session, reaps the process and exits. It costs memory only while the exec'd process runs,
and it survives a daemon restart like the container's shim (its own session, ``setsid``);
the exec's record does not (exec records live in the daemon's memory, as dockerd's do).

The daemon hands it two sockets through the launcher (SCM_RIGHTS):

``ctl``
    JSON lines. First the shim's report: ``{"ok": true, "pid": N}``, or
    ``{"ok": false, "error": "...", "kind": "OCIRuntimeError"}`` and it exits. Then
    requests from the daemon, each answered in order: ``{"op": "resize", "height": H,
    "width": W}``, ``{"op": "detach"}``. Last, once the process has exited and its output
    is drained: ``{"event": "exit", "exit_code": N}``.
``stream`` (none for a detached exec)
    The session's bytes, as with the container shim's attach: output out (docker's
    8-byte frame header, raw bytes with a tty), stdin in. The client's half-close ends the
    process's stdin; for a tty session it is a hang-up, as is the client going away: the
    pty is closed and the process gets SIGHUP, like a closed terminal. After ``detach``
    the hang-up is neither: the process runs on and its output is dropped.
"""

from __future__ import annotations

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
from typing import Any

from dockyard.runtime.shim import (
    HIGH_WATER,
    LINGER,
    LOW_WATER,
    READ_CHUNK,
    _make_stdio,
    _Stdio,
    _tty_stdio,
    exit_status,
    read_output,
    reaped,
)

__all__ = ["ExecConfig", "ExecShim", "main"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@dataclass
class ExecConfig:
    """What the engine tells an exec shim (sent through the launcher)."""

    id: str                                   # the exec's id (diagnostics only)
    init_pid: int                             # the container's init: its namespaces are joined
    process: dict[str, Any] = field(default_factory=dict)   # the OCI process object
    cgroup_path: str = ""                     # the container's cgroup ("" = the init's)
    user: str = ""                            # docker's --user, resolved in the container
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    detach: bool = False                      # no stream: output dropped, stdin /dev/null

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ExecConfig":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


class ExecShim:
    """One session: ``run()`` starts the process, serves ``ctl`` and ``stream``, returns
    when the process has exited and both are answered. ``spawn(process, stdio, user)``
    replaces ``exec_process`` (tests)."""

    def __init__(self, cfg: ExecConfig, ctl: socket.socket, stream: socket.socket | None,
                 spawn: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg
        self.ctl: socket.socket | None = ctl
        self.stream = stream
        self._spawn = spawn
        self.sel = selectors.DefaultSelector()
        self.masks: dict[int, int] = {}
        self.io = _Stdio({}, -1, cfg.tty)
        self.ctl_in = bytearray()
        self.ctl_out = bytearray()
        self.out = bytearray()            # output frames not yet sent on the stream
        self.stream_eof = False           # the client half-closed
        self.detached = False
        self.want_stdin = cfg.stdin and not cfg.detach and stream is not None
        self.pid = 0
        self.exit_code: int | None = None
        self.done_at = 0.0                # set once the exit is reported

    # --- set-up -------------------------------------------------------------------------

    def start(self) -> bool:
        """Start the process; report on ``ctl``. False (reported) when it failed."""
        cfg = self.cfg
        spawn = self._spawn
        if spawn is None:
            from dockyard.runtime.container import Stdio, exec_process

            def spawn(process: dict[str, Any], stdio: Any, user: str | None) -> Any:
                return exec_process(cfg.init_pid, process,
                                    stdio=None if stdio is None else Stdio(*stdio),
                                    cgroup_path=cfg.cgroup_path or None, user=user)
        stdio, child_fds, io = _make_stdio(cfg.tty, self.want_stdin, discard=cfg.detach)
        process = dict(cfg.process)
        process["terminal"] = cfg.tty
        try:
            proc = spawn(process, stdio, cfg.user or None)
        except Exception as exc:
            for fd in list(io.out) + ([io.stdin_fd] if io.stdin_fd >= 0 else []):
                os.close(fd)
            self._send_ctl({"ok": False, "error": str(exc), "kind": type(exc).__name__})
            return False
        finally:
            for fd in child_fds:
                os.close(fd)
        if cfg.tty:  # a detached tty exec's output is read and dropped, so it never blocks
            io = _tty_stdio(proc.pty_master, self.want_stdin)
        for fd in list(io.out) + ([io.stdin_fd] if io.stdin_fd >= 0 else []):
            os.set_blocking(fd, False)
        self.io = io
        self.pid = proc.pid
        self._send_ctl({"ok": True, "pid": self.pid})
        return True

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        sig_r, sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # before the fork: no exit is missed
        try:
            return self._run(sig_r)
        finally:
            signal.set_wakeup_fd(-1)
            os.close(sig_r)
            os.close(sig_w)
            self.sel.close()

    def _run(self, sig_r: int) -> int:
        for sock in (self.ctl, self.stream):
            if sock is not None:
                sock.setblocking(False)
        if not self.start():
            self._flush_ctl(block=True)
            return 1
        self._watch(sig_r, READ)
        self._reap()
        while self.exit_code is None or self.io.out or self.stream is not None or self.ctl_out:
            timeout = None
            if self.done_at:  # linger for a client still reading, not longer
                timeout = max(0.0, self.done_at + LINGER - time.monotonic())
                if timeout == 0.0:
                    break
            self._update()
            for key, mask in self.sel.select(timeout):
                fd = key.fd
                if fd == sig_r:
                    while True:
                        try:
                            os.read(sig_r, 512)
                        except BlockingIOError:
                            break
                    self._reap()
                elif self.ctl is not None and fd == self.ctl.fileno():
                    self._on_ctl(mask)
                elif self.stream is not None and fd == self.stream.fileno():
                    self._on_stream(mask)
                else:
                    self._on_io(fd, mask)
        return 0

    def _watch(self, fd: int, mask: int) -> None:
        old = self.masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            self.sel.unregister(fd)
            del self.masks[fd]
        elif old:
            self.sel.modify(fd, mask)
        else:
            self.sel.register(fd, mask)
        if mask:
            self.masks[fd] = mask

    def _update(self) -> None:
        """What each fd waits for, from the state (a handful of fds: recomputed each turn)."""
        io = self.io
        for fd in io.out:
            want = 0 if io.paused else READ
            if fd == io.stdin_fd and io.stdin_buf:
                want |= WRITE
            self._watch(fd, want)
        if io.stdin_fd >= 0 and io.stdin_fd not in io.out:
            self._watch(io.stdin_fd, WRITE if io.stdin_buf else 0)
        if self.stream is not None:
            want = 0 if self.stream_eof or len(io.stdin_buf) > HIGH_WATER else READ
            self._watch(self.stream.fileno(), want | (WRITE if self.out else 0))
        if self.ctl is not None:
            self._watch(self.ctl.fileno(), READ | (WRITE if self.ctl_out else 0))

    # --- the process ------------------------------------------------------------------------

    def _reap(self) -> None:
        for pid, status in reaped():
            if pid == self.pid:
                self.exit_code = exit_status(status)
                self._maybe_done()

    def _maybe_done(self) -> None:
        """Exited and drained: report the exit, then end the stream once it is flushed."""
        if self.exit_code is None or self.io.out or self.done_at:
            return
        self._close_stdin(now=True)
        self._send_ctl({"event": "exit", "exit_code": self.exit_code})
        self.done_at = time.monotonic()
        self._flush_stream()

    def _on_io(self, fd: int, mask: int) -> None:
        if mask & WRITE and fd == self.io.stdin_fd:
            self._drain_stdin()
        if mask & READ and fd in self.io.out:
            self._read_output(fd)

    def _read_output(self, fd: int) -> None:
        data = read_output(fd)
        if data is None:
            return
        if not data:
            self._drop_output(fd)
            self._maybe_done()
            return
        stream_no = self.io.out[fd]
        wanted = self.cfg.stdout if stream_no == 1 else self.cfg.stderr
        if self.stream is None or not wanted:
            return  # detached, or the client is gone: the output is dropped
        self.out += self.io.frame(stream_no, data)
        self._flush_stream()
        if len(self.out) > HIGH_WATER:
            self.io.paused = True  # backpressure: stop reading until the client catches up

    def _drop_output(self, fd: int) -> None:
        self._watch(fd, 0)
        self.io.out.pop(fd, None)
        if fd == self.io.stdin_fd:
            self.io.stdin_fd = -1
            self.io.stdin_buf.clear()
        os.close(fd)

    def _drain_stdin(self) -> None:
        io = self.io
        while io.stdin_buf and io.stdin_fd >= 0:
            try:
                n = os.write(io.stdin_fd, io.stdin_buf)
            except BlockingIOError:
                return
            except OSError:  # EPIPE: the process closed its stdin
                io.stdin_buf.clear()
                break
            del io.stdin_buf[:n]
        if io.stdin_close_pending:
            self._close_stdin()

    def _close_stdin(self, now: bool = False) -> None:
        """End the process's stdin once pending bytes are written (a pty, shared with the
        output, stays open)."""
        io = self.io
        fd = io.stdin_fd
        if fd < 0 or fd in io.out:
            return
        if io.stdin_buf and not now:
            io.stdin_close_pending = True
            return
        self._watch(fd, 0)
        os.close(fd)
        io.stdin_fd = -1
        io.stdin_buf.clear()

    # --- the stream -----------------------------------------------------------------------

    def _on_stream(self, mask: int) -> None:
        if mask & WRITE:
            self._flush_stream()
        if self.stream is None or not mask & READ:
            return
        try:
            data = self.stream.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            self._stream_gone()
            return
        if data:
            if self.want_stdin and self.io.stdin_fd >= 0:
                self.io.stdin_buf += data
                self._drain_stdin()
            return
        self.stream_eof = True
        if self.detached:
            self._stream_gone()
        elif self.want_stdin and self.exit_code is None:
            if self.io.tty:
                self._stream_gone()  # a terminal has no half-close: its client hung up
            else:
                self._close_stdin()

    def _flush_stream(self) -> None:
        if self.stream is None:
            return
        while self.out:
            try:
                n = self.stream.send(self.out)
            except BlockingIOError:
                break
            except OSError:
                self._stream_gone()
                return
            del self.out[:n]
        if self.io.paused and len(self.out) <= LOW_WATER:
            self.io.paused = False
        if not self.out and self.done_at:
            self._close_stream()  # the session's end: everything was sent

    def _close_stream(self) -> None:
        if self.stream is not None:
            self._watch(self.stream.fileno(), 0)
            self.stream.close()
            self.stream = None
        self.out.clear()
        self.io.paused = False

    def _stream_gone(self) -> None:
        """The client went away. Unless it detached first, that is a hang-up: a terminal
        session's pty is closed and the process gets SIGHUP; a pipe-fed process sees the
        end of its stdin. A detached session runs on, its output dropped."""
        self._close_stream()
        if self.detached or self.done_at:
            return
        if self.io.tty:
            for fd in list(self.io.out):
                self._drop_output(fd)
            try:
                os.kill(self.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            self._maybe_done()
        else:
            self._close_stdin(now=True)

    # --- the control socket ------------------------------------------------------------------

    def _send_ctl(self, msg: dict[str, Any]) -> None:
        if self.ctl is not None:
            self.ctl_out += json.dumps(msg).encode() + b"\n"
            self._flush_ctl()

    def _flush_ctl(self, block: bool = False) -> None:
        if self.ctl is None:
            return
        if block:
            self.ctl.setblocking(True)
        try:
            while self.ctl_out:
                try:
                    n = self.ctl.send(self.ctl_out)
                except BlockingIOError:
                    return
                del self.ctl_out[:n]
        except OSError:  # the daemon is gone: nobody to tell
            self._ctl_gone()

    def _ctl_gone(self) -> None:
        if self.ctl is not None:
            self._watch(self.ctl.fileno(), 0)
            self.ctl.close()
            self.ctl = None
        self.ctl_out.clear()

    def _on_ctl(self, mask: int) -> None:
        if mask & WRITE:
            self._flush_ctl()
        if self.ctl is None or not mask & READ:
            return
        try:
            data = self.ctl.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ctl_gone()  # the daemon went away; the session runs on
            return
        self.ctl_in += data
        while (nl := self.ctl_in.find(b"\n")) >= 0:
            line = bytes(self.ctl_in[:nl])
            del self.ctl_in[:nl + 1]
            try:
                req = json.loads(line)
            except ValueError as exc:
                self._send_ctl({"ok": False, "error": f"invalid request: {exc}",
                                "kind": "InvalidArgument"})
                continue
            try:
                reply = self._request(req)
            except Exception as exc:  # a failed request must not end the session
                reply = {"ok": False, "error": str(exc), "kind": "Internal"}
            self._send_ctl(reply)

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "detach":
            self.detached = True  # the coming hang-up is a detach
            return {"ok": True}
        if op == "resize":
            if self.done_at or self.exit_code is not None:
                return {"ok": False, "error": f"exec {self.cfg.id} has exited",
                        "kind": "Conflict"}
            if not self.io.tty or not self.io.out:
                return {"ok": False, "error": "no tty to resize", "kind": "Conflict"}
            size = struct.pack("HHHH", int(req.get("height", 0)), int(req.get("width", 0)), 0, 0)
            fcntl.ioctl(next(iter(self.io.out)), termios.TIOCSWINSZ, size)
            return {"ok": True}
        return {"ok": False, "error": f"unknown op: {op!r}", "kind": "InvalidArgument"}


def main(cfg: dict[str, Any], ctl_fd: int, stream_fd: int) -> int:
    """Entry point in the launcher's child (``stream_fd`` -1 for a detached exec)."""
    ctl = socket.socket(fileno=ctl_fd)
    stream = socket.socket(fileno=stream_fd) if stream_fd >= 0 else None
    return ExecShim(ExecConfig.from_json(cfg), ctl, stream).run()


def warm_up() -> None:
    """In a spare exec shim, before its job: a dry run of a session up to the fork (its
    spawn is refused at once) and of ``exec_process``'s planning, so that the copy-on-write
    faults on the launcher's pages are taken now rather than on the request's path."""
    from dockyard.oci.runtime_spec import default_process, validate_process
    from dockyard.runtime.cgroups import open_cgroup
    from dockyard.runtime.plan import build_process_plan

    def refuse(process: dict[str, Any], stdio: Any, user: str | None) -> Any:
        validate_process(process)
        build_process_plan(process, user_spec=user, preserve_fds=0)
        open_cgroup("/warm/up").procs_files()
        raise OSError("a dry run")

    ours, theirs = socket.socketpair()
    try:
        cfg = ExecConfig(id="warm-up", init_pid=0, process=default_process(["true"]))
        ExecShim(cfg, theirs, None, spawn=refuse).run()
        json.loads(ours.recv(65536).split(b"\n")[0])
    finally:
        ours.close()
        theirs.close()
