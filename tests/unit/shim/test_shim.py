"""The container shim's protocol and stdio handling, run against both builds: the Python
``Shim`` and the native ``dockyard-shim`` (started as the launcher starts it, through
``shim.exec_native``). The init is a fake (a plain fork+exec, no namespaces), so this runs
without root; the real runtime is covered by tests/integration/shim and the e2e tests."""

from __future__ import annotations

import dataclasses
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

from dockyard.runtime.shim import ShimConfig, exec_native, exit_status, native_binary
from dockyard.runtime.shim import main as shim_main
from tests.requires import require

NATIVE = native_binary()  # None when dockyard-shim is not built
IMPLS = ["python", "native"]


def require_native() -> str:
    require(NATIVE is not None, "dockyard-shim is not built (make venv)")
    assert NATIVE is not None
    return NATIVE


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

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def fake_create(spec: dict[str, Any], stdio: tuple[int, int, int]) -> FakeInit:
    return FakeInit(spec["process"]["args"], stdio)


def run_shim_process(impl: str, cfg: ShimConfig,
                     create: Any = fake_create) -> tuple[int, dict[str, Any]]:
    """Start a shim for ``cfg`` in a child process, as the launcher does; (its pid, its
    set-up result)."""
    binary = require_native() if impl == "native" else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            if binary:
                exec_native(cfg, w, binary, create=create)  # never returns
            code = shim_main(dataclasses.asdict(cfg), w, create=create)
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while not data.endswith(b"\n") and (chunk := os.read(r, 4096)):  # the helper has the
        data += chunk                                                  # pipe too: no EOF
    os.close(r)
    return pid, json.loads(data)


def stop_shim_process(pid: int, state: Path) -> None:
    """Kill the shim and its init (a test that failed half-way leaves them running)."""
    try:
        init = json.loads((state / "status.json").read_text())["pid"]
        if init:
            os.kill(init, signal.SIGKILL)
    except (OSError, ValueError, KeyError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_shim(tmp_path: Path, impl: str) -> Iterator[Any]:
    started: list[tuple[int, Path]] = []

    def start(args: list[str], create: Any = fake_create, **cfg: Any) -> tuple[Path, Path]:
        bundle = tmp_path / "bundle"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(json.dumps({"process": {"args": args}}))
        state = tmp_path / "state"
        log = tmp_path / "ctr-json.log"
        pid, result = run_shim_process(impl, ShimConfig(
            id="c1", bundle=str(bundle), state_dir=str(state), log_path=str(log), **cfg),
            create=create)
        started.append((pid, state))
        assert result["ok"], result
        assert result["shim_pid"] == pid and result["pid"] > 0
        return state, log

    yield start
    for pid, state in started:
        stop_shim_process(pid, state)


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


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream (8-byte headers) as (stream, payload) pairs."""
    out = []
    while data:
        stream, n = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + n]))
        data = data[8 + n:]
    return out


def read_frames(s: socket.socket) -> list[tuple[int, bytes]]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return split_frames(data)


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


def wait_gone(state: Path, timeout: float = 10) -> dict[str, Any]:
    """Wait for the shim to wind down (its socket removed); its last status."""
    deadline = time.monotonic() + timeout
    while (state / "shim.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (state / "shim.sock").exists()
    return dict(json.loads((state / "status.json").read_text()))


def log_entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in log.read_text().splitlines()]


def test_long_lines_are_split_and_bad_utf8_replaced(run_shim: Any) -> None:
    state, log = run_shim(["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; "
                                       "printf '\\377\\376 ok \\342\\202\\n\\342\\202\\254\\n'"])
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    call(state, {"op": "start"})
    assert readline(w)["exit_code"] == 0
    logged = [e["log"] for e in log_entries(log)]
    assert [len(x) for x in logged[:3]] == [16384, 16384, 40000 - 2 * 16384 + 1]
    assert "".join(logged[:3]) == "a" * 40000 + "\n"
    # Python's errors="replace": one U+FFFD per maximal invalid sequence
    assert logged[3:] == ["\ufffd\ufffd ok \ufffd\n", "\u20ac\n"]


def test_tty(run_shim: Any) -> None:
    """With a tty the pty master is both the output (raw bytes, no frames) and stdin;
    resize sets its window size."""
    state, log = run_shim(["sh", "-c", "read a; stty size; echo got $a"], create=fake_tty_create,
                          tty=True, open_stdin=True)
    att, _ = call(state, {"op": "attach", "stdin": True, "stdout": True, "stderr": True})
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    _, r = call(state, {"op": "resize", "height": 33, "width": 77})
    assert r == {"ok": True}
    _, r = call(state, {"op": "resize", "exec": "nope", "height": 1, "width": 1})
    assert r["ok"] is False and r["kind"] == "NotFound"  # exec sessions have shims of their own
    call(state, {"op": "start"})
    att.sendall(b"x\n")
    out = b""
    while chunk := att.recv(4096):
        out += chunk
    assert b"33 77\r\n" in out and b"got x\r\n" in out  # raw bytes, the tty's CRLF
    assert readline(w)["exit_code"] == 0
    assert "got x\r\n" in [e["log"] for e in log_entries(log)]


def test_backpressure_from_a_lagging_client(run_shim: Any) -> None:
    """An attach client that does not read makes the shim stop reading the container, so
    the log stops growing; once the client reads, everything flows."""
    total = 8 << 20
    state, log = run_shim(["sh", "-c", f"head -c {total} /dev/zero"])
    lag, _ = call(state, {"op": "attach", "stdout": True, "stderr": True})
    lag.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    w = connect(state)
    w.sendall(b'{"op":"wait"}\n')
    call(state, {"op": "start"})
    time.sleep(1.0)
    assert log.stat().st_size < total  # paused at about 1 MiB (+ socket buffers)
    got = sum(len(d) for stream, d in read_frames(lag))
    assert got == total
    assert readline(w)["exit_code"] == 0
    assert sum(len(e["log"]) for e in log_entries(log)) == total


def test_kill_before_start_ends_the_container_at_once(run_shim: Any) -> None:
    """The engine kills a container whose start failed or that a dead daemon left created:
    the helper holding the init is let go, so the shim need not wait for its start timeout."""
    state, _ = run_shim(["sleep", "30"])
    _, r = call(state, {"op": "kill", "signal": 9})
    assert r == {"ok": True}
    assert wait_gone(state)["exit_code"] == 137


class FailingStart(FakeInit):
    def start(self) -> None:
        self.kill()
        os.waitpid(self.pid, 0)  # as InitProcess.start does after ExecFailed
        raise RuntimeError('exec: "nosuch": executable file not found in $PATH')


def test_a_failed_start_ends_the_container(run_shim: Any) -> None:
    state, _ = run_shim(["sleep", "30"], create=lambda spec, stdio: FailingStart(
        spec["process"]["args"], stdio))
    _, r = call(state, {"op": "start"})
    assert r["ok"] is False and "executable file not found" in r["error"]
    assert r["kind"] == "RuntimeError"
    st = wait_gone(state)
    assert st["status"] == "exited" and "executable file not found" in st["error"]


def test_creation_failure_is_reported(impl: str, tmp_path: Path) -> None:
    def broken(spec: dict[str, Any], stdio: Any) -> Any:
        raise ValueError("no such rootfs")

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text("{}")
    pid, result = run_shim_process(impl, ShimConfig(
        id="c1", bundle=str(bundle), state_dir=str(tmp_path / "state"),
        log_path=str(tmp_path / "log")), create=broken)
    _, status = os.waitpid(pid, 0)
    assert result == {"ok": False, "error": "no such rootfs", "kind": "ValueError"}
    assert os.WEXITSTATUS(status) == 1
    assert not (tmp_path / "state" / "shim.sock").exists()


class FakeTtyInit(FakeInit):
    """A fake init on a pty: the slave is its stdio and controlling terminal."""

    def __init__(self, args: list[str], stdio: Any) -> None:
        master, slave = os.openpty()
        super().__init__(["sh", "-c", 'exec "$@"', "sh", *args], (slave, slave, slave))
        os.close(slave)
        self.pty_master = master


def fake_tty_create(spec: dict[str, Any], stdio: Any) -> FakeTtyInit:
    assert stdio is None  # with a tty, the runtime makes the pty
    return FakeTtyInit(spec["process"]["args"], stdio)


@pytest.mark.parametrize("line", [
    b'{"op":"state","x":{"a":1}}', b'{"x":[1,{"y":"]}"},[]],"op":"state"}',
    b'{"op":"state","x":{"s":"\\"}{"}}',
])
def test_nested_values_in_unread_fields_are_skipped(run_shim: Any, line: bytes) -> None:
    """A nested object or array in a field the shim does not read is skipped (brackets in
    its strings included), as Python's json.loads would take it: the daemon's job for a
    spare native shim carries the rootfs mounts that way."""
    state, _ = run_shim(["true"])
    s = connect(state)
    s.sendall(line + b"\n")
    reply = readline(s)
    assert reply["ok"] is True and reply["status"] == "created"


@pytest.mark.parametrize("line", [
    b'{"op":["state"]}', b"[1, 2]", b'"state"', b"{}", b'{"op":"state","x":{"a":1}',
    b'{"op":"state",}', b'{"op":"state"} trailing', b'{"op":1}', b'{"op":"\\ud800"}',
    b'{"op":"state","s":"\x01"}', b'{"op":"state","x":["]"}', b'{"x":[},"op":"state"}',
])
def test_malformed_requests_are_refused(run_shim: Any, impl: str, line: bytes) -> None:
    """Requests are JSON objects whose fields the shim reads are flat: anything else gets
    an error reply, and the shim serves on."""
    state, _ = run_shim(["true"])
    s = connect(state)
    s.sendall(line + b"\n")
    reply = readline(s)
    assert reply["ok"] is False and reply["error"]
    s2, st = call(state, {"op": "st\u0061te", "pad": "\u00e9\U0001F600", "n": -1.5e3,
                          "b": True, "z": None})
    assert st["ok"] is True and st["status"] == "created"
    big = connect(state)
    big.sendall(b'{"op":"' + b"x" * 70000)
    assert readline(big) == {"ok": False, "error": "request too long", "kind": "InvalidArgument"}
    call(state, {"op": "kill", "signal": 9})
