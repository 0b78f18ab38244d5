"""The cgroup manager against a fake cgroupfs under tmp_path (v1 and v2)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dockyard.runtime.cgroups import (
    CgroupV1,
    CgroupV2,
    device_rule,
    discover,
    open_cgroup,
    parse_proc_cgroup,
    shares_to_weight,
)

MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def _v1(root: Path) -> Path:
    for name in ("cpu", "cpuset", "memory", "pids", "freezer", "devices"):
        (root / name).mkdir(parents=True)
        (root / name / "cgroup.procs").write_text("")
    (root / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    return root


def _v2(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "cgroup.procs").write_text("")
    return root


def _seed(root: Path, rel: str, files: dict[str, str]) -> Path:
    """What the kernel does on mkdir: the directory with its (empty) control files."""
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (d / name).write_text(value)
    return d


def test_discover_from_mountinfo() -> None:
    version, hs = discover(Path("/sys/fs/cgroup"), MOUNTINFO)
    assert version == "v1"
    assert [(h.key, h.mount.name, h.fstype) for h in hs] == [
        ("cpu,cpuacct", "cpu,cpuacct", "cgroup"),
        ("memory", "memory", "cgroup"),
        ("name=systemd", "systemd", "cgroup"),
        ("", "unified", "cgroup2"),
    ]
    assert hs[2].options == "none,name=systemd" and hs[0].controllers == {"cpu", "cpuacct"}
    v2 = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert discover(Path("/sys/fs/cgroup"), v2)[0] == "v2"


def test_v1_create_copies_cpuset_and_lists_procs(tmp_path: Path) -> None:
    root = _v1(tmp_path / "cg")
    _seed(root, "cpuset/dockyard", {"cpuset.cpus": "0-1", "cpuset.mems": "0"})
    d = _seed(root, "cpuset/dockyard/c1", {"cpuset.cpus": "", "cpuset.mems": ""})
    cg = open_cgroup("/dockyard/c1", root, mountinfo="")
    assert isinstance(cg, CgroupV1)
    cg.create()
    assert (root / "memory/dockyard/c1").is_dir()
    assert (d / "cpuset.cpus").read_text() == "0-1"
    assert (d / "cpuset.mems").read_text() == "0"
    assert cg.procs_files() == [
        str(tmp_path / f"cg/{n}/dockyard/c1/cgroup.procs")
        for n in ("cpu", "cpuset", "devices", "freezer", "memory", "pids")
    ]


def test_v1_create_fills_an_ancestor_made_a_moment_ago_too(tmp_path: Path) -> None:
    """The parent was just made by another process that has not given it cpus and mems
    yet: the new cgroup takes them from the nearest ancestor that has them, and the
    parent gets them too (else no process could join either)."""
    root = _v1(tmp_path / "cg")
    parent = _seed(root, "cpuset/dockyard", {"cpuset.cpus": "", "cpuset.mems": ""})
    d = _seed(root, "cpuset/dockyard/spare-1", {"cpuset.cpus": "", "cpuset.mems": ""})
    open_cgroup("/dockyard/spare-1", root, mountinfo="").create()
    for level in (parent, d):
        assert (level / "cpuset.cpus").read_text() == "0-1"
        assert (level / "cpuset.mems").read_text() == "0"


def test_v1_apply_writes_files(tmp_path: Path) -> None:
    root = _v1(tmp_path / "cg")
    _seed(root, "memory/c1", {"memory.limit_in_bytes": "", "memory.soft_limit_in_bytes": ""})
    _seed(root, "cpu/c1", {"cpu.shares": "", "cpu.cfs_quota_us": "", "cpu.cfs_period_us": ""})
    _seed(root, "cpuset/c1", {"cpuset.cpus": "0-1", "cpuset.mems": "0"})
    _seed(root, "pids/c1", {"pids.max": ""})
    _seed(root, "devices/c1", {"devices.allow": "", "devices.deny": ""})
    cg = open_cgroup("/c1", root, mountinfo="")
    cg.create()
    cg.apply(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 10},
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ],
        }
    )
    assert (root / "memory/c1/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (root / "memory/c1/memory.soft_limit_in_bytes").read_text() == str(32 << 20)
    assert (root / "cpu/c1/cpu.shares").read_text() == "512"
    assert (root / "cpu/c1/cpu.cfs_quota_us").read_text() == "50000"
    assert (root / "cpuset/c1/cpuset.cpus").read_text() == "0"
    assert (root / "pids/c1/pids.max").read_text() == "10"
    assert (root / "devices/c1/devices.allow").read_text() == "c 1:3 rwm"
    assert (root / "devices/c1/devices.deny").read_text() == "a *:* rwm"


def test_v1_pids_freeze_and_destroy(tmp_path: Path) -> None:
    root = _v1(tmp_path / "cg")
    _seed(root, "freezer/dockyard/c1", {"freezer.state": "THAWED"})
    cg = open_cgroup("/dockyard/c1", root, mountinfo="")
    cg.create()
    (root / "pids/dockyard/c1/cgroup.procs").write_text("7\n9\n")
    (root / "memory/dockyard/c1/cgroup.procs").write_text("9\n")
    assert cg.pids() == [7, 9]
    cg.freeze()
    assert cg.frozen()
    cg.thaw()
    assert not cg.frozen()
    for d in cg.dirs():
        for f in d.iterdir():
            f.unlink()
    cg.destroy(timeout=0.1)
    assert not cg.exists()
    # the emptied parent is pruned, the hierarchy root stays
    assert not (root / "pids" / "dockyard").exists() and (root / "pids").is_dir()


def test_v2_create_enables_controllers_and_applies(tmp_path: Path) -> None:
    root = _v2(tmp_path / "cg")
    _seed(root, "dockyard", {"cgroup.subtree_control": ""})
    _seed(
        root,
        "dockyard/c1",
        {
            n: ""
            for n in (
                "memory.max",
                "memory.swap.max",
                "cpu.weight",
                "cpu.max",
                "pids.max",
                "memory.high",
                "cgroup.procs",
            )
        },
    )
    cg = open_cgroup("/dockyard/c1", root, mountinfo="")
    assert isinstance(cg, CgroupV2)
    cg.create()
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    assert (
        root / "dockyard/cgroup.subtree_control"
    ).read_text() == "+cpu +cpuset +io +memory +pids"
    cg.apply(
        {
            "memory": {"limit": 1 << 20, "swap": 3 << 20},
            "cpu": {"shares": 1024, "quota": 20000},
            "pids": {"limit": 0},
            "unified": {"memory.high": "900000"},
        }
    )
    d = root / "dockyard/c1"
    assert (d / "memory.max").read_text() == str(1 << 20)
    assert (d / "memory.swap.max").read_text() == str(2 << 20)
    assert (d / "cpu.weight").read_text() == "39"
    assert (d / "cpu.max").read_text() == "20000 100000"
    assert (d / "pids.max").read_text() == "max"
    assert (d / "memory.high").read_text() == "900000"
    assert cg.procs_files() == [str(d / "cgroup.procs")]


def test_v2_kill_uses_cgroup_kill(tmp_path: Path) -> None:
    root = _v2(tmp_path / "cg")
    _seed(root, "c1", {"cgroup.kill": ""})
    cg = open_cgroup("/c1", root, mountinfo="")
    cg.create()
    cg.kill_all(signal.SIGKILL)
    assert (root / "c1" / "cgroup.kill").read_text() == "1"


def test_helpers() -> None:
    assert (
        shares_to_weight(2) == 1
        and shares_to_weight(262144) == 10000
        and shares_to_weight(1024) == 39
    )
    assert device_rule({"type": "c", "major": 136, "minor": -1, "access": "rwm"}) == "c 136:* rwm"
    assert parse_proc_cgroup("4:memory:/a\n9:name=systemd:/b\n0::/c\n") == {
        "memory": "/a",
        "name=systemd": "/b",
        "": "/c",
    }


def test_bad_path_is_refused(tmp_path: Path) -> None:
    from dockyard.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        open_cgroup("/a/../b", _v1(tmp_path / "cg"), mountinfo="")
