"""Interactive containers: exec, -it, attach, stdin, resize, detach. Terminal sessions are
driven through tmux (send-keys, capture-pane) for both our CLI and the docker CLI."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import VENV_BIN, Daemon, has_docker_cli

CLIS = [
    "dockyard",
    pytest.param("docker", marks=pytest.mark.skipif(not has_docker_cli(), reason="no docker CLI")),
]


class Tmux:
    """One private tmux server (its own socket) for the test; killed at the end."""

    def __init__(self, daemon: Daemon) -> None:
        self.sock = f"dockyard-test-{uuid.uuid4().hex[:8]}"
        self.env = daemon.env()
        self.host = daemon.host

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.sock, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=10,
        ).stdout

    def start(self, name: str, cli: str, args: str, width: int = 100, height: int = 30) -> None:
        exe = f"{VENV_BIN}/dockyard -H {self.host}" if cli == "dockyard" else "docker"
        cmd = f"{exe} {args}; echo EXITED=$?; sleep 60"
        self._tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), cmd)

    def keys(self, name: str, *keys: str) -> None:
        self._tmux("send-keys", "-t", name, *keys)

    def line(self, name: str, text: str) -> None:
        self._tmux("send-keys", "-t", name, "-l", text)
        self._tmux("send-keys", "-t", name, "Enter")

    def screen(self, name: str) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", name)

    def wait_for(self, name: str, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.screen(name)
            if text in out:
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear; screen:\n{out}")
            time.sleep(0.05)

    def kill(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def tmux(daemon: Daemon) -> Iterator[Tmux]:
    t = Tmux(daemon)
    try:
        yield t
    finally:
        t.kill()


@pytest.fixture
def running(daemon: Daemon) -> Iterator[str]:
    name = f"box-{uuid.uuid4().hex[:6]}"
    daemon.dockyard("run", "-d", "--name", name, "busybox", "sleep", "1000", check=True)
    try:
        yield name
    finally:
        daemon.dockyard("rm", "-f", name)


@pytest.mark.parametrize("cli", CLIS)
def test_exec_it_shell(tmux: Tmux, running: str, cli: str) -> None:
    tmux.start("s", cli, f"exec -it {running} sh", width=90, height=27)
    tmux.wait_for("s", "# ")
    tmux.line("s", "echo $((6*7)); tty; stty size")
    out = tmux.wait_for("s", "27 90")
    assert "\n42\n" in out.replace("\r", "")
    assert "/dev/pts/" in out
    tmux.line("s", "exit 3")
    tmux.wait_for("s", "EXITED=3")


@pytest.mark.parametrize("cli", CLIS)
def test_run_it_detach_and_reattach(daemon: Daemon, tmux: Tmux, cli: str) -> None:
    name = f"it-{cli}"
    try:
        tmux.start("run", cli, f"run -it --name {name} busybox sh", width=80, height=24)
        tmux.wait_for("run", "# ")
        tmux.line("run", "echo first $((1+1))")
        tmux.wait_for("run", "first 2")
        tmux.keys("run", "C-p", "C-q")
        tmux.wait_for("run", "EXITED=0")
        assert daemon.dockyard("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
        tmux.start("att", cli, f"attach {name}", width=70, height=20)
        time.sleep(0.5)
        tmux.line("att", "echo again; stty size")
        tmux.wait_for("att", "20 70")
        tmux.line("att", "exit 4")
        tmux.wait_for("att", "EXITED=4")
        assert daemon.dockyard("inspect", "-f", "{{.State.ExitCode}}", name).stdout == "4\n"
    finally:
        daemon.dockyard("rm", "-f", name)


def test_custom_detach_keys_and_ctrl_c(daemon: Daemon, tmux: Tmux) -> None:
    name = "it-keys"
    try:
        tmux.start("run", "dockyard", f"run -it --detach-keys ctrl-a,x --name {name} busybox sh")
        tmux.wait_for("run", "# ")
        tmux.line("run", "sleep 100")
        time.sleep(0.3)
        tmux.keys("run", "C-c")  # reaches the process through the tty
        tmux.line("run", "echo still here")
        tmux.wait_for("run", "still here")
        tmux.keys("run", "C-a", "x")
        tmux.wait_for("run", "EXITED=0")
        assert daemon.dockyard("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
    finally:
        daemon.dockyard("rm", "-f", name)


def test_start_ai(daemon: Daemon, tmux: Tmux) -> None:
    name = "startai"
    daemon.dockyard("create", "-it", "--name", name, "busybox", "sh", check=True)
    try:
        tmux.start("s", "dockyard", f"start -ai {name}")
        tmux.wait_for("s", "# ")
        tmux.line("s", "exit 6")
        tmux.wait_for("s", "EXITED=6")
    finally:
        daemon.dockyard("rm", "-f", name)


def test_tty_logs_are_raw(daemon: Daemon) -> None:
    cid = daemon.dockyard(
        "run", "-t", "-d", "busybox", "sh", "-c", "echo tty-out", check=True
    ).stdout.strip()
    try:
        assert daemon.dockyard("wait", cid).stdout == "0\n"
        status, body = daemon.request("GET", f"/v1.47/containers/{cid}/logs?stdout=1&stderr=1")
        assert status == 200 and body == b"tty-out\r\n"  # no multiplexing header
        assert daemon.dockyard("logs", cid).stdout == "tty-out\r\n"
    finally:
        daemon.dockyard("rm", "-f", cid)


def test_exec_plain(daemon: Daemon, running: str) -> None:
    d = daemon
    p = d.dockyard("exec", running, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    p = d.dockyard(
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        running,
        "sh",
        "-c",
        "id -u; pwd; echo $X",
    )
    assert p.stdout.split() == ["65534", "/tmp", "1"]
    p = d.dockyard("exec", "-i", running, "cat", input=b"via stdin\n")
    assert p.stdout == "via stdin\n"
    p = d.dockyard("exec", "-d", running, "sh", "-c", "echo detached > /tmp/d")
    assert p.returncode == 0
    time.sleep(0.3)
    assert d.dockyard("exec", running, "cat", "/tmp/d").stdout == "detached\n"
    p = d.dockyard("exec", running, "nosuch")
    assert p.returncode == 127 and "executable file not found" in (p.stdout + p.stderr)
    info = json.loads(d.dockyard("inspect", running).stdout)[0]
    assert info["State"]["Running"]


def test_exec_errors(daemon: Daemon, running: str) -> None:
    d = daemon
    status, body = d.request("POST", f"/v1.47/containers/{running}/exec", {"Cmd": []})
    assert status == 400 and b"No exec command specified" in body
    status, body = d.request("POST", "/v1.47/exec/" + "0" * 64 + "/start", {"Detach": True})
    assert status == 404 and b"No such exec instance" in body
    status, body = d.request("POST", "/v1.47/exec/nosuch/resize?h=10&w=10")
    assert status == 404
    eid = d.json("POST", f"/containers/{running}/exec", {"Cmd": ["true"], "AttachStdout": True})[
        "Id"
    ]
    assert d.request("POST", f"/v1.47/exec/{eid}/start", {"Detach": True})[0] == 200
    deadline = time.monotonic() + 5
    while d.json("GET", f"/exec/{eid}/json")["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    info = d.json("GET", f"/exec/{eid}/json")
    assert info["ExitCode"] == 0 and info["ContainerID"] and not info["Running"]
    status, _ = d.request("POST", f"/v1.47/exec/{eid}/resize?h=10&w=10")
    assert status == 409  # resize of a finished exec
    assert d.request("POST", f"/v1.47/exec/{eid}/start", {"Detach": True})[0] == 409
    stopped = d.dockyard("create", "busybox", "true", check=True).stdout.strip()
    try:
        status, body = d.request("POST", f"/v1.47/containers/{stopped}/exec", {"Cmd": ["true"]})
        assert status == 409 and b"is not running" in body
    finally:
        d.dockyard("rm", stopped)


def test_exec_client_disconnect_sends_sighup(daemon: Daemon, running: str, tmux: Tmux) -> None:
    script = (
        "trap 'echo got-hup > /tmp/hup; exit 0' HUP; echo ready; while true; do sleep 0.1; done"
    )
    tmux.start("s", "dockyard", f"exec -it {running} sh -c {shlex.quote(script)}")
    tmux.wait_for("s", "ready")
    pids = subprocess.run(
        ["tmux", "-L", tmux.sock, "list-panes", "-t", "s", "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    # kill the CLI (the pane's shell's child) as a vanished client would
    children = subprocess.run(
        ["pgrep", "-P", pids[0]], capture_output=True, text=True
    ).stdout.split()
    for pid in children:
        os.kill(int(pid), 9)
    deadline = time.monotonic() + 10
    while daemon.dockyard("exec", running, "cat", "/tmp/hup").stdout != "got-hup\n":
        assert time.monotonic() < deadline, "the exec'd process never got SIGHUP"
        time.sleep(0.1)


def test_docker_py_exec_run(daemon: Daemon, running: str) -> None:
    client = daemon.docker_py()
    try:
        c = client.containers.get(running)
        code, out = c.exec_run(["sh", "-c", "echo a; echo b >&2; exit 2"])
        assert code == 2 and out == b"a\nb\n"
        code, (out, err) = c.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True)
        assert (code, out, err) == (0, b"a\n", b"b\n")
        code, out = c.exec_run("tty", tty=True)
        assert code == 0 and out.startswith(b"/dev/pts/")
        result = c.exec_run(["sh", "-c", "echo 1; sleep 0.2; echo 2"], stream=True)
        assert b"".join(result.output) == b"1\n2\n"
    finally:
        client.close()
        # docker-py leaves a streamed exec's socket to the garbage collector
        import gc
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del result
            gc.collect()


@pytest.mark.parametrize("cli", CLIS)
def test_resize_of_running_tty_container(daemon: Daemon, cli: str) -> None:
    cid = daemon.dockyard("run", "-dit", "busybox", "sh", check=True).stdout.strip()
    try:
        assert daemon.request("POST", f"/v1.47/containers/{cid}/resize?h=33&w=77")[0] == 200
        out = daemon.dockyard("exec", cid, "sh", "-c", "stty size < /proc/1/fd/0").stdout
        assert out == "33 77\n"
    finally:
        daemon.dockyard("rm", "-f", cid)
