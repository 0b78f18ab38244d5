"""The shim's protocol and stdio handling, with a fake spawner (plain fork+exec, no
namespaces), so it runs without root. The real runtime is covered by the e2e tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.shim import Shim, ShimConfig, _set_subreaper, exit_status


class FakeInit:
    def __init__(self, args: list[str], stdio: tuple[int, int, int]) -> None:
        self._go_r, self._go_w = os.pipe()
        self.pty_master = None
        pid = os.fork()
        if pid == 0:
            os.close(self._go_w)
            os.read(self._go_r, 1)
            for i, fd in enumerate(stdio):
                os.dup2(fd, i)
            try:
                os.execvp(args[0], args)
            finally:
                os._exit(127)
        os.close(self._go_r)
        self.pid = pid

    def start(self) -> None:
        os.write(self._go_w, b"x")
        os.close(self._go_w)


def fake_create(spec: dict[str, Any], stdio: tuple[int, int, int]) -> FakeInit:
    return FakeInit(spec["process"]["args"], stdio)


class FakeExec:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pty_master = None


def fake_exec(process: dict[str, Any], stdio: tuple[int, int, int], user: str | None) -> FakeExec:
    pid = os.fork()
    if pid == 0:
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        try:
            os.execvp(process["args"][0], process["args"])
        finally:
            os._exit(127)
    return FakeExec(pid)


@pytest.fixture
def run_shim(tmp_path: Path) -> Iterator[Any]:
    pids: list[int] = []

    def start(args: list[str], **cfg: Any) -> tuple[Path, Path]:
        bundle = tmp_path / "bundle"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(json.dumps({"process": {"args": args}}))
        state = tmp_path / "state"
        log = tmp_path / "ctr-json.log"
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _set_subreaper()  # as main() does: what the helper forks is reparented here
                start_timeout = cfg.pop("start_timeout", None)
                shim = Shim(ShimConfig(id="c1", bundle=str(bundle), state_dir=str(state),
                                       log_path=str(log), **cfg), create=fake_create,
                            spawn_exec=fake_exec)
                if start_timeout is not None:
                    shim.start_timeout = start_timeout
                os.write(w, json.dumps(shim.setup()).encode() + b"\n")
                os.close(w)
                shim.run()
                shim.close()
            finally:
                os._exit(0)
        os.close(w)
        result = json.loads(os.read(r, 4096))
        os.close(r)
        assert result["ok"], result
        pids.append(pid)
        return state, log

    yield start
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


_OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def connect(state: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    _OPEN.append(s)
    s.connect(str(state / "shim.sock"))
    return s


def readline(s: socket.socket) -> dict[str, Any]:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        buf += chunk
    return dict(json.loads(buf))


def call(state: Path, req: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
    s = connect(state)
    s.sendall(json.dumps(req).encode() + b"\n")
    return s, readline(s)


def read_frames(s: socket.socket) -> list[tuple[int, bytes]]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    out = []
    while data:
        stream, n = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + n]))
        data = data[8 + n:]
    return out


def test_exit_status() -> None:
    assert exit_status(3 << 8) == 3
    assert exit_status(signal.SIGKILL) == 128 + 9


def test_attach_start_wait_and_log(run_shim: Any) -> None:
    state, log = run_shim(["sh", "-c", "echo out; echo err >&2; exit 3"])
    _, st = call(state, {"op": "state"})
    assert st["status"] == "created" and st["exit_code"] is None
    att, reply = call(state, {"op": "attach", "stdout": True, "stderr": True})
    assert reply["ok"] is True and reply["token"] > 0
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    _, started = call(state, {"op": "start"})
    assert started["status"] == "running"
    frames = read_frames(att)
    assert (1, b"out\n") in frames and (2, b"err\n") in frames
    done = readline(w)
    assert done["exit_code"] == 3 and done["status"] == "exited"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert {(x["stream"], x["log"]) for x in lines} == {("stdout", "out\n"), ("stderr", "err\n")}
    assert all(x["time"].endswith("Z") for x in lines)
    status = json.loads((state / "status.json").read_text())
    assert status["exit_code"] == 3 and status["status"] == "exited"


def test_stdin_once_half_close(run_shim: Any) -> None:
    state, _ = run_shim(["sh", "-c", "cat; echo done"], open_stdin=True, stdin_once=True)
    att, _ = call(state, {"op": "attach", "stdin": True, "stdout": True, "stderr": True})
    call(state, {"op": "start"})
    att.sendall(b"piped\n")
    att.shutdown(socket.SHUT_WR)
    frames = read_frames(att)
    assert b"".join(d for s, d in frames if s == 1) == b"piped\ndone\n"


def test_kill_and_partial_lines(run_shim: Any) -> None:
    state, log = run_shim(["sh", "-c", "printf 'no newline'; exec sleep 30"])
    call(state, {"op": "start"})
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    time.sleep(0.2)
    _, reply = call(state, {"op": "kill", "signal": 9})
    assert reply == {"ok": True}
    done = readline(w)
    assert done["exit_code"] == 137
    # the unterminated line reaches the log when the output ends
    assert [json.loads(x)["log"] for x in log.read_text().splitlines()] == ["no newline"]
    # the shim winds down after the exit and removes its socket; the exit code stays
    deadline = time.monotonic() + 5
    while (state / "shim.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (state / "shim.sock").exists()
    assert json.loads((state / "status.json").read_text())["exit_code"] == 137


def test_bad_request_keeps_shim_alive(run_shim: Any) -> None:
    state, _ = run_shim(["true"])
    s = connect(state)
    s.sendall(b"not json\n")
    reply = readline(s)
    assert reply["ok"] is False
    _, st = call(state, {"op": "bogus"})
    assert st["ok"] is False and "unknown op" in st["error"]
    _, st = call(state, {"op": "state"})
    assert st["status"] == "created"
    # a waiter registered before the start (as the engine does) cannot miss the exit
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    call(state, {"op": "start"})
    assert readline(w)["exit_code"] == 0


def test_exec_session_streams_and_reports_its_exit_code(run_shim: Any) -> None:
    state, log = run_shim(["sleep", "30"])
    call(state, {"op": "start"})
    s, reply = call(state, {"op": "exec", "id": "e1", "process": {"args": ["sh", "-c", "echo x; echo y >&2; exit 4"]},
                            "stdout": True, "stderr": True})
    assert reply["ok"] and reply["pid"] > 0
    w = connect(state)
    w.sendall(b'{"op":"exec_wait","id":"e1"}\n')
    frames = read_frames(s)
    assert (1, b"x\n") in frames and (2, b"y\n") in frames
    assert readline(w) == {"ok": True, "exit_code": 4}
    _, again = call(state, {"op": "exec_wait", "id": "e1"})   # remembered after the end
    assert again == {"ok": True, "exit_code": 4}
    assert "x" not in log.read_text()                        # exec output is not logged
    _, dup = call(state, {"op": "exec", "id": "e1", "process": {"args": ["true"]}})
    assert dup["ok"] is False
    _, nope = call(state, {"op": "exec_wait", "id": "nope"})
    assert nope["kind"] == "NotFound"
    _, r = call(state, {"op": "resize", "exec": "e1", "height": 10, "width": 10})
    assert r["ok"] is False and r["kind"] == "Conflict"
    call(state, {"op": "kill", "signal": 9})


def test_exec_stdin_and_client_hangup(run_shim: Any) -> None:
    state, _ = run_shim(["sleep", "30"])
    call(state, {"op": "start"})
    s, reply = call(state, {"op": "exec", "id": "cat", "process": {"args": ["cat"]},
                            "stdin": True, "stdout": True, "stderr": True})
    assert reply["ok"]
    s.sendall(b"hello\n")
    s.shutdown(socket.SHUT_WR)
    assert read_frames(s) == [(1, b"hello\n")]
    # a client that hangs up mid-session ends the process's stdin
    s2, reply = call(state, {"op": "exec", "id": "cat2", "process": {"args": ["cat"]},
                             "stdin": True, "stdout": True, "stderr": True})
    w = connect(state)
    w.sendall(b'{"op":"exec_wait","id":"cat2"}\n')
    s2.close()
    assert readline(w) == {"ok": True, "exit_code": 0}
    call(state, {"op": "kill", "signal": 9})


def test_detach_keeps_stdin_open(run_shim: Any) -> None:
    state, _ = run_shim(["sh", "-c", "read a; echo got $a"], open_stdin=True, stdin_once=True)
    att, reply = call(state, {"op": "attach", "stdin": True, "stdout": True, "stderr": True})
    call(state, {"op": "start"})
    _, r = call(state, {"op": "detach", "token": reply["token"]})
    assert r == {"ok": True}
    att.close()                                   # a detach, not the end of stdin
    time.sleep(0.2)
    _, st = call(state, {"op": "state"})
    assert st["status"] == "running"
    att2, _ = call(state, {"op": "attach", "stdin": True, "stdout": True, "stderr": True})
    att2.sendall(b"it\n")
    assert read_frames(att2) == [(1, b"got it\n")]


def test_a_vanished_attach_client_does_not_take_the_shim_down(run_shim: Any) -> None:
    state, _ = run_shim(["sh", "-c", "while true; do echo tick; sleep 0.05; done"])
    gone, _ = call(state, {"op": "attach", "stdout": True, "stderr": True})
    stays, _ = call(state, {"op": "attach", "stdout": True, "stderr": True})
    call(state, {"op": "start"})
    gone.close()                     # the next output to it fails with EPIPE
    time.sleep(0.3)
    _, st = call(state, {"op": "state"})
    assert st["status"] == "running"
    assert b"tick" in stays.recv(4096)
    call(state, {"op": "kill", "signal": 9})


def test_a_container_never_started_is_given_up(run_shim: Any) -> None:
    """Its daemon died between spawning the shim and starting it: nothing would ever
    start or kill it, so the shim ends the init and exits on its own."""
    state, _ = run_shim(["sleep", "30"], start_timeout=0.3)
    deadline = time.monotonic() + 10
    while (state / "shim.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (state / "shim.sock").exists()
    status = json.loads((state / "status.json").read_text())
    assert status["status"] == "exited" and status["exit_code"] == 137
