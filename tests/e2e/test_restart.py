"""Containers outlive the daemon: ``kill -9`` of dockyardd and a restart lose no running
container, no log line and no exit code."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.e2e.conftest import VENV_BIN, Daemon


def _wait_for(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _counter_lines(text: str) -> list[int]:
    return [int(x) for x in text.split()]


def test_kill_9_and_restart(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    ticker = d.dockyard(
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done",
        check=True,
    ).stdout.strip()
    d.dockyard(
        "run",
        "-d",
        "--name",
        "late",
        "busybox",
        "sh",
        "-c",
        "sleep 1.5; echo bye; exit 4",
        check=True,
    )
    d.dockyard("run", "--name", "done7", "busybox", "sh", "-c", "exit 7")
    pid_before = json.loads(d.dockyard("inspect", "ticker").stdout)[0]["State"]["Pid"]
    _wait_for(lambda: len(_counter_lines(d.dockyard("logs", "ticker").stdout)) >= 3)

    d.stop(signal.SIGKILL)  # the daemon dies; its launcher goes with it
    time.sleep(2.0)  # "late" exits and "ticker" keeps logging meanwhile
    d.start()

    info = json.loads(d.dockyard("inspect", "ticker").stdout)[0]
    assert info["State"]["Running"] and info["State"]["Pid"] == pid_before
    assert ticker[:12] in d.dockyard("ps", "-q").stdout.split()
    late = json.loads(d.dockyard("inspect", "late").stdout)[0]["State"]
    assert (late["Status"], late["ExitCode"]) == ("exited", 4)
    assert d.dockyard("logs", "late").stdout == "bye\n"
    assert json.loads(d.dockyard("inspect", "done7").stdout)[0]["State"]["ExitCode"] == 7
    # every line, including those written while the daemon was down, in order
    nums = _counter_lines(d.dockyard("logs", "ticker").stdout)
    assert len(nums) >= 20 and nums == list(range(len(nums)))
    # wait and stop work again against the re-adopted shim
    waiter = subprocess.Popen(
        [str(VENV_BIN / "dockyard"), "-H", d.host, "wait", "ticker"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)
        assert d.dockyard("kill", "ticker").returncode == 0
        out, _ = waiter.communicate(timeout=20)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert out == "137\n"
    assert d.dockyard("rm", "ticker", "late", "done7").returncode == 0


def test_a_second_daemon_on_the_same_root_is_refused(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    p = subprocess.run(
        [
            str(VENV_BIN / "dockyardd"),
            "-H",
            f"unix://{d.base}/other.sock",
            "--data-root",
            str(d.data_root),
            "--exec-root",
            str(d.base / "exec2"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1
    assert "another dockyardd" in p.stderr and str(d.data_root) in p.stderr
    assert d.request("GET", "/_ping")[0] == 200  # the first one is untouched


def test_graceful_stop_keeps_containers_running(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    d.dockyard("run", "-d", "--name", "keep", "busybox", "sleep", "100", check=True)
    pid = json.loads(d.dockyard("inspect", "keep").stdout)[0]["State"]["Pid"]
    d.stop(signal.SIGTERM)
    d.start()
    info = json.loads(d.dockyard("inspect", "keep").stdout)[0]["State"]
    assert info["Running"] and info["Pid"] == pid
    assert d.dockyard("rm", "-f", "keep").returncode == 0
