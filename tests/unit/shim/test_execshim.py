"""The exec shim (one ``docker exec`` session per process) with a fake spawner (plain
fork+exec, no namespaces), so it runs without root. The real runtime is covered by the e2e
tests (tests/e2e/test_interactive.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.runtime.execshim import ExecConfig, ExecShim
from tests.unit.shim.test_shim import read_frames


class FakeExec:
    def __init__(self, pid: int, pty_master: int | None = None) -> None:
        self.pid = pid
        self.pty_master = pty_master


def fake_exec(process: dict[str, Any], stdio: tuple[int, int, int] | None,
              user: str | None) -> FakeExec:
    args = process["args"]
    if args[0] == "nosuch":
        raise RuntimeError('exec: "nosuch": executable file not found in $PATH')
    master = slave = -1
    if process.get("terminal"):
        master, slave = os.openpty()
        stdio = (slave, slave, slave)
    assert stdio is not None
    pid = os.fork()
    if pid == 0:
        if slave >= 0:
            os.setsid()
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        try:
            os.execvp(args[0], args)
        finally:
            os._exit(127)
    if slave >= 0:
        os.close(slave)
        return FakeExec(pid, master)
    return FakeExec(pid)


class Session:
    """The daemon's side of one exec shim: its control socket and stream."""

    def __init__(self, ctl: socket.socket, stream: socket.socket | None, pid: int) -> None:
        self.ctl = ctl
        self.stream = stream
        self.shim_pid = pid
        self.reaped = False
        self.buf = b""

    def reap(self) -> int:
        """Wait for the exec shim to exit; its wait status."""
        _, status = os.waitpid(self.shim_pid, 0)
        self.reaped = True
        return status

    def line(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = self.ctl.recv(4096)
            if not chunk:
                raise EOFError("the exec shim closed its control socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return dict(json.loads(line))

    def call(self, **req: Any) -> dict[str, Any]:
        self.ctl.sendall(json.dumps(req).encode() + b"\n")
        return self.line()

    def frames(self) -> list[tuple[int, bytes]]:
        assert self.stream is not None
        return read_frames(self.stream)

    def exit_code(self) -> int:
        msg = self.line()
        assert msg["event"] == "exit", msg
        return int(msg["exit_code"])


@pytest.fixture
def start_exec() -> Iterator[Any]:
    sessions: list[Session] = []

    def start(args: list[str], **cfg: Any) -> tuple[Session, dict[str, Any]]:
        ctl, ctl_theirs = socket.socketpair()
        stream = theirs = None
        if not cfg.get("detach"):
            stream, theirs = socket.socketpair()
        config = ExecConfig(id="e1", init_pid=1, process={"args": args}, **cfg)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ctl.close()
                if stream is not None:
                    stream.close()
                code = ExecShim(config, ctl_theirs, theirs, spawn=fake_exec).run()
            finally:
                os._exit(code)
        ctl_theirs.close()
        if theirs is not None:
            theirs.close()
        s = Session(ctl, stream, pid)
        sessions.append(s)
        return s, s.line()

    yield start
    for s in sessions:
        if not s.reaped:
            os.kill(s.shim_pid, signal.SIGKILL)
            s.reap()
        s.ctl.close()
        if s.stream is not None:
            s.stream.close()


def test_streams_and_reports_the_exit_code(start_exec: Any) -> None:
    s, first = start_exec(["sh", "-c", "echo x; echo y >&2; exit 4"])
    assert first["ok"] is True and first["pid"] > 0
    frames = s.frames()
    assert (1, b"x\n") in frames and (2, b"y\n") in frames
    assert s.exit_code() == 4
    status = s.reap()                         # the exec shim exits after the session
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_process_that_cannot_start(start_exec: Any) -> None:
    s, first = start_exec(["nosuch"])
    assert first == {"ok": False, "kind": "RuntimeError",
                     "error": 'exec: "nosuch": executable file not found in $PATH'}


def test_only_the_wanted_streams(start_exec: Any) -> None:
    s, _ = start_exec(["sh", "-c", "echo x; echo y >&2"], stderr=False)
    assert s.frames() == [(1, b"x\n")]
    assert s.exit_code() == 0


def test_stdin_and_half_close(start_exec: Any) -> None:
    s, _ = start_exec(["cat"], stdin=True)
    s.stream.sendall(b"hello\n")
    s.stream.shutdown(socket.SHUT_WR)        # the end of its stdin; the output flows on
    assert s.frames() == [(1, b"hello\n")]
    assert s.exit_code() == 0


def test_a_client_that_hangs_up_ends_stdin(start_exec: Any) -> None:
    s, _ = start_exec(["cat"], stdin=True)
    s.stream.close()
    s.stream = None
    assert s.exit_code() == 0


def test_tty_hang_up_is_a_sighup(start_exec: Any) -> None:
    """``docker exec -it``: a client that goes away is a closed terminal."""
    s, _ = start_exec(["sleep", "30"], tty=True, stdin=True)
    assert s.call(op="resize", height=20, width=30) == {"ok": True}
    s.stream.shutdown(socket.SHUT_WR)
    assert s.exit_code() == 128 + signal.SIGHUP


def test_tty_output_is_raw(start_exec: Any) -> None:
    s, _ = start_exec(["sh", "-c", "stty size; read a; echo got $a"], tty=True, stdin=True)
    s.stream.sendall(b"it\n")
    out = b""
    while chunk := s.stream.recv(4096):
        out += chunk
    assert b"got it\r\n" in out
    assert s.exit_code() == 0


def test_detach_keeps_the_process_running(start_exec: Any, tmp_path: Any) -> None:
    mark = tmp_path / "mark"
    s, _ = start_exec(["sh", "-c", f"sleep 0.5; echo late; touch {mark}"], tty=True, stdin=True)
    assert s.call(op="detach") == {"ok": True}
    s.stream.close()                          # a detach, not a hang-up
    s.stream = None
    assert s.exit_code() == 0
    assert mark.exists()


def test_detached_exec(start_exec: Any, tmp_path: Any) -> None:
    mark = tmp_path / "mark"
    s, first = start_exec(["sh", "-c", f"echo dropped; touch {mark}; exit 3"], detach=True)
    assert first["ok"]
    assert s.exit_code() == 3
    assert mark.exists()


def test_resize_errors(start_exec: Any) -> None:
    s, _ = start_exec(["sleep", "30"])
    r = s.call(op="resize", height=10, width=10)
    assert r["ok"] is False and r["kind"] == "Conflict"      # no tty
    assert s.call(op="bogus")["kind"] == "InvalidArgument"
    s.ctl.sendall(b"not json\n")
    assert s.line()["ok"] is False
    os.kill(first_child(s.shim_pid), signal.SIGKILL)
    assert s.exit_code() == 137


def test_the_daemon_going_away_does_not_end_the_session(start_exec: Any, tmp_path: Any) -> None:
    mark = tmp_path / "mark"
    s, _ = start_exec(["sh", "-c", f"sleep 0.3; touch {mark}"])
    s.ctl.close()
    deadline = time.monotonic() + 10
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists()
    assert os.WEXITSTATUS(s.reap()) == 0


def first_child(pid: int) -> int:
    """The exec'd process: the exec shim's only child."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return int(f.read().split()[0])
