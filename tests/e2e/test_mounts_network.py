"""Bind mounts (-v, --mount, --tmpfs) and network modes (host, none, container:X); what
cannot work yet (named volumes, published ports, user networks) is refused clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, has_docker_cli


def test_bind_mounts(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon
    host = tmp_path / "data"
    host.mkdir()
    (host / "in").write_text("from the host\n")
    p = d.dockyard("run", "--rm", "-v", f"{host}:/data", "busybox",
                   "sh", "-c", "cat /data/in; echo from the container > /data/out")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from the host\n"
    assert (host / "out").read_text() == "from the container\n"
    p = d.dockyard("run", "--rm", "-v", f"{host}:/data:ro", "busybox", "touch", "/data/nope")
    assert p.returncode != 0 and not (host / "nope").exists()
    missing = tmp_path / "created-by-v"
    assert d.dockyard("run", "--rm", "-v", f"{missing}:/m", "busybox", "true").returncode == 0
    assert missing.is_dir()                              # docker's -v creates the source
    p = d.dockyard("run", "--rm", "--mount", f"type=bind,source={host},target=/mnt,readonly",
                   "--tmpfs", "/scratch", "busybox",
                   "sh", "-c", "cat /mnt/in; touch /scratch/ok && grep -c ' /scratch tmpfs' /proc/mounts")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from the host\n1\n"
    p = d.dockyard("run", "--rm", "--mount", f"type=bind,source={tmp_path}/absent,target=/x",
                   "busybox", "true")
    assert p.returncode == 125 and "bind source path does not exist" in p.stderr
    p = d.dockyard("run", "--rm", "--mount", "type=volume,source=v1,target=/v", "busybox", "true")
    assert p.returncode == 125 and "named volumes are not supported yet" in p.stderr


def test_mounts_in_inspect(daemon: Daemon, tmp_path: Path) -> None:
    cid = daemon.dockyard("create", "-v", f"{tmp_path}:/data:ro", "busybox", "true",
                          check=True).stdout.strip()
    try:
        mounts = json.loads(daemon.dockyard("inspect", cid).stdout)[0]["Mounts"]
        assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/data",
                           "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
    finally:
        daemon.dockyard("rm", cid)


@pytest.mark.parametrize("args,needle", [
    (["-v", "myvolume:/data"], "named volumes are not supported yet"),
    (["-v", "relative/path:/data"], "named volumes are not supported yet"),
    (["-v", "/tmp:relative"], "invalid volume specification"),   # the CLI checks it
    (["-p", "8080:80"], "publishing ports is not supported yet"),
    (["--network", "mynet"], "network mynet not found"),
])
def test_unsupported_is_refused(daemon: Daemon, args: list[str], needle: str) -> None:
    before = daemon.dockyard("ps", "-aq").stdout
    p = daemon.dockyard("run", "--rm", *args, "busybox", "true")
    assert p.returncode == 125 and needle in p.stderr, p.stderr
    assert daemon.dockyard("ps", "-aq").stdout == before       # nothing half-created


def test_network_modes(daemon: Daemon) -> None:
    d = daemon
    mine = os.readlink("/proc/self/ns/net")
    own = d.dockyard("run", "--rm", "busybox", "readlink", "/proc/self/ns/net").stdout.strip()
    assert own and own != mine                          # bridge: a namespace of its own
    host = d.dockyard("run", "--rm", "--network", "host", "busybox",
                      "readlink", "/proc/self/ns/net").stdout.strip()
    assert host == mine
    none = d.dockyard("run", "--rm", "--network", "none", "busybox",
                      "sh", "-c", "ls /sys/class/net").stdout.split()
    assert none == ["lo"]
    first = d.dockyard("run", "-d", "--name", "netowner", "busybox", "sleep", "100",
                       check=True).stdout.strip()
    try:
        pid = json.loads(d.dockyard("inspect", first).stdout)[0]["State"]["Pid"]
        theirs = os.readlink(f"/proc/{pid}/ns/net")
        joined = d.dockyard("run", "--rm", "--network", "container:netowner", "busybox",
                            "readlink", "/proc/self/ns/net").stdout.strip()
        assert joined == theirs
    finally:
        d.dockyard("rm", "-f", "netowner")


@pytest.mark.skipif(not has_docker_cli(), reason="no docker CLI")
def test_docker_cli_bind(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\n")
    p = daemon.docker("run", "--rm", "-v", f"{tmp_path}:/w", "busybox", "cat", "/w/f")
    assert (p.returncode, p.stdout) == (0, "x\n")
