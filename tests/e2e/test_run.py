"""``run`` and the container lifecycle, end to end, with our CLI and the docker CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, has_docker_cli

CLIS = [
    "dockyard",
    pytest.param("docker", marks=pytest.mark.skipif(not has_docker_cli(), reason="no docker CLI")),
]


def cli(d: Daemon, which: str, *args: str, **kw: object):  # type: ignore[no-untyped-def]
    return (d.dockyard if which == "dockyard" else d.docker)(*args, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("which", CLIS)
def test_run_rm_prints_output_and_exit_code(daemon: Daemon, which: str) -> None:
    p = cli(daemon, which, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"


@pytest.mark.parametrize("which", CLIS)
def test_run_rm_removes_the_container(daemon: Daemon, which: str) -> None:
    p = cli(daemon, which, "run", "--rm", "--name", f"gone-{which}", "busybox", "true")
    assert p.returncode == 0, p.stderr
    ps = cli(daemon, which, "ps", "-a", "--format", "{{.Names}}")
    assert f"gone-{which}" not in ps.stdout.split()


@pytest.mark.parametrize("which", CLIS)
@pytest.mark.parametrize(
    "cmd,code,text",
    [
        (["nosuch"], 127, "executable file not found"),
        (["/etc/passwd"], 126, "permission denied"),
    ],
)
def test_run_bad_command_exit_codes(
    daemon: Daemon, which: str, cmd: list[str], code: int, text: str
) -> None:
    p = cli(daemon, which, "run", "--rm", "busybox", *cmd)
    assert p.returncode == code, p.stderr
    assert text in p.stderr


@pytest.mark.parametrize("which", CLIS)
def test_killed_by_signal_is_128_plus(daemon: Daemon, which: str) -> None:
    """An attached ``run`` whose container is killed from outside exits 128 + 9."""
    import subprocess

    name = f"victim-{which}"
    argv = (
        [str(Path(__file__).resolve().parents[2] / ".venv/bin/dockyard"), "-H", daemon.host]
        if which == "dockyard"
        else ["docker"]
    )
    run = subprocess.Popen(
        [*argv, "run", "--rm", "--name", name, "busybox", "sleep", "100"],
        env=daemon.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while daemon.dockyard("inspect", "-f", "{{.State.Running}}", name).stdout != "true\n":
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.05)
        assert daemon.dockyard("kill", name).returncode == 0
        assert run.wait(20) == 137
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate()


def test_isolation_inside(daemon: Daemon) -> None:
    script = (
        "echo host=$(hostname); echo pid=$$; echo uid=$(id -u); "
        "echo ifaces=$(ls /sys/class/net | tr '\\n' ' '); "
        "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
        "echo keys=$(wc -c < /proc/keys) timer=$(wc -c < /proc/timer_list); "
        "touch /sys/x 2>/dev/null && echo sys=rw || echo sys=ro; "
        "ls /dev/pts/ptmx >/dev/null && echo pts=ok; ls -l /dev/ptmx"
    )
    p = daemon.dockyard("run", "--rm", "busybox", "sh", "-c", script, check=True)
    out = p.stdout
    assert "pid=1\n" in out
    assert "uid=0\n" in out
    assert "ifaces=lo\n" in out  # own network namespace, loopback only
    assert "CapEff:\t00000000a80425fb" in out  # docker's default capability set
    assert "NoNewPrivs:\t1" in out
    assert "keys=0 timer=0\n" in out  # masked with /dev/null (both non-empty on the host)
    assert "sys=ro" in out
    assert "pts=ok" in out and "/dev/ptmx -> pts/ptmx" in out
    host = [line for line in out.splitlines() if line.startswith("host=")][0][5:]
    assert len(host) == 12  # short id by default


@pytest.mark.parametrize("which", CLIS)
def test_run_options(daemon: Daemon, which: str, tmp_path: Path) -> None:
    envfile = tmp_path / "env"
    envfile.write_text("FROM_FILE=yes\n# comment\n")
    p = cli(
        daemon,
        which,
        "run",
        "--rm",
        "--hostname",
        "box",
        "-e",
        "A=1",
        "--env-file",
        str(envfile),
        "-w",
        "/tmp/work",
        "-u",
        "nobody",
        "-l",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "echo $(hostname) $A $FROM_FILE $(pwd) $(id -u):$(id -g) $HOME",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["box", "1", "yes", "/tmp/work", "65534:65534", "/home"]
    p = cli(daemon, which, "run", "--rm", "-u", "33:50", "busybox", "id")
    assert p.stdout.strip().startswith("uid=33(www-data) gid=50(staff)")
    p = cli(daemon, which, "run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
    assert p.stdout == "from entrypoint\n"
    p = cli(daemon, which, "run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert p.returncode != 0 and "nosuchuser" in p.stderr


def test_detached_lifecycle(daemon: Daemon) -> None:
    d = daemon
    p = d.dockyard(
        "run",
        "-d",
        "--name",
        "life",
        "-l",
        "tier=web",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    )
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    assert len(cid) == 64
    try:
        deadline = time.monotonic() + 5
        while "started" not in d.dockyard("logs", "life").stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        ps = d.dockyard(
            "ps", "--no-trunc", "--format", '{{.ID}} {{.Names}} {{.Status}} {{.Label "tier"}}'
        ).stdout
        assert f"{cid} life Up" in ps and ps.strip().endswith("web")
        assert cid[:12] in d.dockyard("ps", "-q").stdout.split()
        assert d.dockyard("ps", "-q", "--filter", "label=tier=web").stdout.split() == [cid[:12]]
        assert (
            d.dockyard("ps", "-q", "--filter", "status=exited", "--filter", "name=^life$").stdout
            == ""
        )
        info = json.loads(d.dockyard("inspect", "life").stdout)[0]
        assert info["Id"] == cid and info["Name"] == "/life" and info["State"]["Running"]
        assert info["State"]["Pid"] > 0 and info["Config"]["Labels"] == {"tier": "web"}
        assert info["HostConfig"]["LogConfig"]["Type"] == "json-file"
        assert d.dockyard("inspect", "-f", "{{.State.Status}}", cid[:8]).stdout == "running\n"
        top = d.dockyard("top", "life").stdout
        assert "PID" in top.splitlines()[0] and "sh -c" in top
        # a running container is not removed without force
        p = d.dockyard("rm", "life")
        assert p.returncode == 1 and "container is running" in p.stderr
        assert d.dockyard("stop", "life").stdout == "life\n"
        info = json.loads(d.dockyard("inspect", "life").stdout)[0]
        assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 0
        logs = d.dockyard("logs", "life").stdout
        assert logs == "started\nbye\n"
        assert d.dockyard("logs", "--tail", "1", "life").stdout == "bye\n"
        stamped = d.dockyard("logs", "-t", "life").stdout.splitlines()
        assert stamped[0].endswith("Z started") and stamped[0][:4].isdigit()
        # stopping a stopped container is not an error (304)
        assert d.dockyard("stop", "life").returncode == 0
        p = d.dockyard("kill", "life")
        assert p.returncode == 1 and "is not running" in p.stderr
        assert d.dockyard(
            "ps", "-a", "-q", "--filter", "exited=0", "--filter", "name=life"
        ).stdout.split() == [cid[:12]]
        # restart runs it again, and the log grows
        assert d.dockyard("restart", "-t", "1", "life").returncode == 0
        assert json.loads(d.dockyard("inspect", "life").stdout)[0]["State"]["Running"]
        assert d.dockyard("rename", "life", "life2").returncode == 0
        assert d.dockyard("inspect", "-f", "{{.Name}}", cid).stdout == "/life2\n"
        assert d.dockyard("kill", "-s", "KILL", "life2").returncode == 0
        assert d.dockyard("wait", "life2").stdout == "137\n"
    finally:
        d.dockyard("rm", "-f", "life", "life2")
    assert d.dockyard("inspect", cid).returncode == 1


def test_create_start_attach(daemon: Daemon) -> None:
    d = daemon
    cid = d.dockyard(
        "create", "--name", "cs", "busybox", "echo", "created-then-started", check=True
    ).stdout.strip()
    try:
        assert (
            d.dockyard("ps", "-a", "--filter", "name=cs", "--format", "{{.Status}}").stdout
            == "Created\n"
        )
        p = d.dockyard("start", "-a", "cs")
        assert p.returncode == 0 and p.stdout == "created-then-started\n"
        assert d.dockyard("wait", cid).stdout == "0\n"
    finally:
        d.dockyard("rm", "-f", "cs")


def test_name_conflict_and_invalid_names(daemon: Daemon) -> None:
    d = daemon
    d.dockyard("create", "--name", "dup", "busybox", "true", check=True)
    try:
        # as the docker CLI: create fails with 1, run with 125
        p = d.dockyard("create", "--name", "dup", "busybox", "true")
        assert p.returncode == 1 and "is already in use" in p.stderr
        p = d.dockyard("run", "--name", "dup", "busybox", "true")
        assert p.returncode == 125 and "is already in use" in p.stderr
        p = d.dockyard("create", "--name", "bad/name", "busybox", "true")
        assert p.returncode == 1 and "Invalid container name" in p.stderr
    finally:
        d.dockyard("rm", "dup")


def test_missing_image_fails_clearly(daemon: Daemon) -> None:
    # a loopback registry that is not there: nothing leaves the machine
    p = daemon.dockyard("run", "--rm", "127.0.0.1:1/nosuch:1", "true")
    assert p.returncode == 125
    assert "Unable to find image '127.0.0.1:1/nosuch:1' locally" in p.stderr


def test_stdin_pipe(daemon: Daemon) -> None:
    p = daemon.dockyard(
        "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done", input=b"piped\n"
    )
    assert p.returncode == 0 and p.stdout == "piped\ndone\n"
    if has_docker_cli():
        p = daemon.docker("run", "--rm", "-i", "busybox", "cat", input=b"hi\n")
        assert p.returncode == 0 and p.stdout == "hi\n"


def test_prune(daemon: Daemon) -> None:
    d = daemon
    cid = d.dockyard("create", "-l", "prune=me", "busybox", "true", check=True).stdout.strip()
    p = d.dockyard("container", "prune", "-f", "--filter", "label=prune=me")
    assert p.returncode == 0 and cid in p.stdout
    assert d.dockyard("inspect", cid).returncode == 1


def test_big_output_is_exact(daemon: Daemon) -> None:
    p = daemon.dockyard(
        "run", "--rm", "busybox", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"
    )
    assert p.returncode == 0 and len(p.stdout) == 3_000_000
