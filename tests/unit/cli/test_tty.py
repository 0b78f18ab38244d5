"""The CLI as a separate process: a real pseudo-terminal (-it, raw mode, resize, detach keys),
signal proxying, and what the start-up imports (the start-up time is a measured figure)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest

from tests.unit.cli.fakedaemon import FakeDaemon, Program

V = "/v1.47"
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")


def _env(daemon: FakeDaemon, cfgdir: str) -> dict[str, str]:
    env = dict(os.environ, DOCKER_HOST=daemon.host, DOCKER_CONFIG=cfgdir)
    env["PYTHONPATH"] = os.path.abspath(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli", *argv], stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        end = time.monotonic() + timeout
        while needle not in self.out and time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.out += data
        return self.out

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> int:
        try:
            rc = self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)
        return rc


@pytest.fixture
def tty_daemon(daemon: FakeDaemon) -> Iterator[FakeDaemon]:
    daemon.add_image("sh")
    daemon.programs["sh"] = Program(stdout=b"/ # ", echo_stdin=True)
    yield daemon


def _wait_for(daemon: FakeDaemon, suffix: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(r.path.endswith(suffix) or r.target.endswith(suffix)
               for r in daemon.requests):
            return
        time.sleep(0.02)
    raise AssertionError(f"no request ending in {suffix}: {daemon.lines()}")


def test_run_it_raw_mode_resize_and_detach(tty_daemon: FakeDaemon, cfgdir: str) -> None:
    d = tty_daemon
    t = Pty(["run", "-it", "sh"], _env(d, cfgdir))
    try:
        t.read_until(b"/ # ")
        _wait_for(d, "/resize")
        t.write(b"echo hi\r")  # raw mode: \r goes through untranslated, echoed by "the container"
        t.read_until(b"echo hi\r")
        t.write(b"\x10\x11")  # ctrl-p ctrl-q
    finally:
        rc = t.close()
    assert rc == 0
    c = next(iter(d.containers.values()))
    assert bytes(c.stdin) == b"echo hi\r"
    assert c.config["Tty"] and c.config["OpenStdin"] and c.config["AttachStdin"]
    assert c.config["HostConfig"]["ConsoleSize"] == [30, 100]
    cid = c.id
    assert d.lines() == [
        f"POST {V}/containers/create",
        f"POST {V}/containers/{cid}/attach?stderr=1&stdin=1&stdout=1&stream=1",
        f"POST {V}/containers/{cid}/wait?condition=next-exit",
        f"POST {V}/containers/{cid}/start",
        f"POST {V}/containers/{cid}/resize?h=30&w=100",
    ]


def test_run_it_custom_detach_keys_and_sigwinch(tty_daemon: FakeDaemon, cfgdir: str) -> None:
    d = tty_daemon
    t = Pty(["run", "-it", "--detach-keys", "ctrl-a,x", "sh"], _env(d, cfgdir), rows=24, cols=80)
    try:
        t.read_until(b"/ # ")
        _wait_for(d, "/resize")
        fcntl.ioctl(t.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        t.proc.send_signal(signal.SIGWINCH)
        _wait_for(d, "/resize?h=40&w=120")
        t.write(b"\x10\x11ab\x01x")  # docker's default keys are ordinary input now
    finally:
        rc = t.close()
    assert rc == 0
    c = next(iter(d.containers.values()))
    assert bytes(c.stdin) == b"\x10\x11ab"
    attach = next(r for r in d.requests if "/attach" in r.path)
    assert attach.q("detachKeys") == "ctrl-a,x"


def test_exec_it_uses_the_terminal(tty_daemon: FakeDaemon, cfgdir: str) -> None:
    d = tty_daemon
    d.add_image("busybox")
    d.programs["busybox"] = Program(block=True)
    env = _env(d, cfgdir)
    subprocess.run([sys.executable, "-m", "dockyard.cli", "run", "-d", "--name", "c", "busybox"],
                   env=env, check=True, capture_output=True)
    d.requests.clear()
    t = Pty(["exec", "-it", "c", "echo", "hello"], env, rows=30, cols=100)
    try:
        t.read_until(b"hello")
    finally:
        rc = t.close()
    assert rc == 0
    create = next(r for r in d.requests if r.path.endswith("/exec"))
    assert create.json()["ConsoleSize"] == [30, 100] and create.json()["Tty"] is True
    start = next(r for r in d.requests if r.path.endswith("/start"))
    assert start.json() == {"Detach": False, "Tty": True, "ConsoleSize": [30, 100]}


def test_signals_are_proxied_to_the_container(daemon: FakeDaemon, cfgdir: str) -> None:
    daemon.add_image("sleeper")
    daemon.programs["sleeper"] = Program(stdout=b"started\n", block=True)
    p = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "run", "sleeper"],
                         env=_env(daemon, cfgdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(daemon, "/start")
        time.sleep(0.3)  # the handlers are installed before start; give start time to return
        p.send_signal(signal.SIGUSR1)
        _wait_for(daemon, "/kill?signal=USR1")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert (p.returncode, out, err) == (143, b"started\n", b"")
    assert [r.q("signal") for r in daemon.requests if r.path.endswith("/kill")] == ["USR1", "TERM"]


def test_sig_proxy_false_leaves_signals_alone(daemon: FakeDaemon, cfgdir: str) -> None:
    daemon.add_image("sleeper")
    daemon.programs["sleeper"] = Program(block=True)
    p = subprocess.Popen([sys.executable, "-m", "dockyard.cli", "run", "--sig-proxy=false",
                          "sleeper"], env=_env(daemon, cfgdir), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        _wait_for(daemon, "/start")
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130
    assert not any(r.path.endswith("/kill") for r in daemon.requests)


def test_startup_imports_stay_light(daemon: FakeDaemon, cfgdir: str) -> None:
    """``dockyard ps``/``version`` must not import heavy modules (start-up time budget)."""
    code = ("import sys, io\n"
            "from dockyard.cli.main import run\n"
            "from dockyard.cli.app import Streams\n"
            "for argv in (['ps'], ['version'], ['--help']):\n"
            "    run(argv, Streams(io.BytesIO(), io.BytesIO(), io.BytesIO()))\n"
            "print(' '.join(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(daemon, cfgdir),
                       capture_output=True, text=True, check=True)
    mods = set(r.stdout.split())
    for heavy in ("http.client", "argparse", "aiohttp", "email", "ssl", "typing", "dataclasses",
                  "asyncio", "urllib.parse", "socket", "threading", "inspect", "signal"):
        assert heavy not in mods, f"{heavy} is imported on the ps/version path"
