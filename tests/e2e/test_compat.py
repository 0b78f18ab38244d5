"""The real docker CLI 28.2.2 and docker-py drive dockyardd unchanged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import BUSYBOX_TAR, Daemon, has_docker_cli

needs_docker = pytest.mark.skipif(not has_docker_cli(), reason="the docker CLI is not installed")


@needs_docker
def test_docker_cli_flow(daemon: Daemon) -> None:
    d = daemon
    p = d.docker("run", "--rm", "busybox", "echo", "hi")
    assert (p.returncode, p.stdout) == (0, "hi\n")
    cid = d.docker(
        "run",
        "-d",
        "--name",
        "dk",
        "busybox",
        "sh",
        "-c",
        "echo line1; echo line2 >&2; exec sleep 100",
        check=True,
    ).stdout.strip()
    try:
        assert len(cid) == 64
        ps = d.docker("ps", "-a", check=True).stdout.splitlines()
        assert ps[0].split() == [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        row = [line for line in ps if line.startswith(cid[:12])][0]
        assert "busybox" in row and "Up " in row and row.endswith("dk")
        info = json.loads(d.docker("inspect", "dk", check=True).stdout)[0]
        assert info["Id"] == cid and info["State"]["Status"] == "running"
        assert (
            d.docker("container", "inspect", "-f", "{{.Config.Image}} {{.Name}}", "dk").stdout
            == "busybox /dk\n"
        )
        deadline = time.monotonic() + 5
        while True:
            logs = d.docker("logs", "dk")
            if logs.stdout == "line1\n" and logs.stderr == "line2\n" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (logs.stdout, logs.stderr) == ("line1\n", "line2\n")
        assert d.docker("stop", "-t", "1", "dk").stdout == "dk\n"
        assert d.docker("inspect", "-f", "{{.State.ExitCode}}", "dk").stdout == "137\n"
        assert d.docker("rm", "dk").stdout == "dk\n"
        p = d.docker("inspect", "dk")
        assert p.returncode == 1 and "No such object: dk" in p.stderr
    finally:
        d.docker("rm", "-f", "dk")


@needs_docker
def test_docker_cli_images(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon
    p = d.docker(
        "import",
        "-c",
        'CMD ["echo", "from-import"]',
        "-m",
        "via docker",
        str(BUSYBOX_TAR),
        "imported:v1",
    )
    assert p.returncode == 0, p.stderr
    try:
        images = d.docker("images", check=True).stdout
        assert any(line.split()[:2] == ["imported", "v1"] for line in images.splitlines())
        assert d.docker("run", "--rm", "imported:v1").stdout == "from-import\n"
        hist = d.docker("history", "--no-trunc", "--format", "{{.Comment}}", "imported:v1").stdout
        assert "via docker" in hist
        assert d.docker("tag", "imported:v1", "imported:v2").returncode == 0
        out = d.docker("rmi", "imported:v2", check=True).stdout
        assert out == "Untagged: imported:v2\n"
    finally:
        out = d.docker("rmi", "imported:v1").stdout
    assert "Untagged: imported:v1" in out and "Deleted: sha256:" in out


def test_docker_py(daemon: Daemon) -> None:
    client = daemon.docker_py()
    try:
        out = client.containers.run("busybox", ["echo", "from docker-py"], remove=True)
        assert out == b"from docker-py\n"
        c = client.containers.create(
            "busybox",
            ["sh", "-c", "echo started; exec sleep 100"],
            name="py1",
            labels={"via": "docker-py"},
        )
        try:
            assert c.status == "created"
            c.start()
            c.reload()
            assert c.status == "running" and c.attrs["Config"]["Labels"] == {"via": "docker-py"}
            assert any(x.id == c.id for x in client.containers.list())
            assert client.containers.get("py1").id == c.id
            deadline = time.monotonic() + 5
            while c.logs() != b"started\n" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.logs() == b"started\n"
            c.stop(timeout=1)
            c.reload()
            assert c.status == "exited"
            assert c.wait()["StatusCode"] == 137
        finally:
            c.remove(force=True)
        assert not any(x.name == "py1" for x in client.containers.list(all=True))
        images = client.images.list()
        assert any("busybox:latest" in i.tags for i in images)
        img = client.images.get("busybox")
        assert img.id.startswith("sha256:") and "busybox:latest" in img.tags
        with pytest.raises(Exception) as exc:
            client.images.get("127.0.0.1:1/nosuch:1")
        assert type(exc.value).__name__ == "ImageNotFound"
        with pytest.raises(Exception) as exc2:
            client.containers.get("nosuchcontainer")
        assert type(exc2.value).__name__ == "NotFound"
    finally:
        client.close()


def test_docker_py_nonzero_exit(daemon: Daemon) -> None:
    import docker.errors

    client = daemon.docker_py()
    try:
        with pytest.raises(docker.errors.ContainerError) as exc:
            client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 5"], remove=True)
        assert exc.value.exit_status == 5 and b"oops" in exc.value.stderr
    finally:
        client.close()
