"""Spec → plan (pure): namespaces, mount steps, devices, capabilities, rlimits."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument, Unsupported
from dockyard.linux import ns
from dockyard.linux.caps import mask_of
from dockyard.linux.mount import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_SLAVE,
)
from dockyard.oci.mount import Mount
from dockyard.oci.runtime_spec import DEFAULT_CAPABILITIES, default_spec
from dockyard.runtime.cgroups import Hierarchy
from dockyard.runtime.plan import build_init_plan

V1 = (
    Hierarchy("cpu,cpuacct", Path("/sys/fs/cgroup/cpu,cpuacct"), "cgroup"),
    Hierarchy("name=systemd", Path("/sys/fs/cgroup/systemd"), "cgroup"),
    Hierarchy("", Path("/sys/fs/cgroup/unified"), "cgroup2"),
)


def _plan(**kw: object):  # type: ignore[no-untyped-def]
    spec = default_spec(["sh"], hostname="h1", **kw)  # type: ignore[arg-type]
    return build_init_plan(
        spec,
        Path("/b"),
        hierarchies=V1,
        cgroup_version="v1",
        cgroup_procs=["/cg/cgroup.procs"],
        last_cap=40,
        is_dir=lambda p: True,
    )


def test_namespaces_new_and_joined() -> None:
    p = _plan()
    assert p.new_pid_ns and p.pid_ns_path is None
    assert (
        p.unshare_flags
        == ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC | ns.CLONE_NEWNET | ns.CLONE_NEWCGROUP
    )
    assert p.loopback and p.hostname == "h1"
    p = _plan(namespaces={"mount": None, "pid": None, "network": "/run/netns/x", "uts": None})
    assert p.join == (("/run/netns/x", ns.CLONE_NEWNET),)
    assert not p.loopback and not p.unshare_flags & ns.CLONE_NEWNET


def test_user_namespace_is_refused() -> None:
    with pytest.raises(Unsupported):
        _plan(namespaces=["mount", "user"])
    with pytest.raises(InvalidArgument, match="mount namespace"):
        _plan(namespaces=["pid"])


def test_default_mounts_become_steps_in_order() -> None:
    steps = _plan().rootfs.mounts
    assert [s.target for s in steps][:4] == ["/proc", "/dev", "/dev/pts", "/sys"]
    proc, dev, pts, sysfs = steps[:4]
    assert (proc.fstype, proc.flags) == ("proc", MS_NOSUID | MS_NOEXEC | MS_NODEV)
    assert dev.data == "mode=755,size=65536k"
    assert pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert sysfs.flags & MS_RDONLY


def test_v1_cgroup_mount_expands_per_hierarchy_and_goes_ro_last() -> None:
    steps = [s for s in _plan().rootfs.mounts if s.target.startswith("/sys/fs/cgroup")]
    assert [(s.target, s.fstype, s.data) for s in steps[:4]] == [
        ("/sys/fs/cgroup", "tmpfs", "mode=755"),
        ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct"),
        ("/sys/fs/cgroup/systemd", "cgroup", "none,name=systemd"),
        ("/sys/fs/cgroup/unified", "cgroup2", None),
    ]
    last = steps[-1]
    assert last.target == "/sys/fs/cgroup" and last.remount & MS_RDONLY and not last.mkdir


def test_v2_cgroup_mount_is_one_cgroup2() -> None:
    spec = default_spec(["sh"])
    p = build_init_plan(spec, Path("/b"), cgroup_version="v2", last_cap=40)
    (step,) = [s for s in p.rootfs.mounts if s.target == "/sys/fs/cgroup"]
    assert step.fstype == "cgroup2" and step.flags & MS_RDONLY


def test_bind_mount_with_ro_needs_a_remount_and_knows_files() -> None:
    spec = default_spec(
        ["sh"],
        mounts=[
            {
                "destination": "/etc/hosts",
                "type": "bind",
                "source": "hosts",
                "options": ["rbind", "ro", "rslave"],
            },
        ],
    )
    p = build_init_plan(spec, Path("/b"), last_cap=40, is_dir=lambda path: False)
    (step,) = [s for s in p.rootfs.mounts if s.target == "/etc/hosts"]
    assert step.source == "/b/hosts" and step.flags == MS_BIND | MS_REC
    assert step.remount == MS_RDONLY and step.propagation == MS_SLAVE | MS_REC and step.is_file


def test_rootfs_mounts_go_on_the_root_and_default_is_a_self_bind() -> None:
    p = _plan()
    (root,) = p.rootfs.rootfs_mounts
    assert (root.source, root.flags) == ("/b/rootfs", MS_BIND | MS_REC)
    spec = default_spec(["sh"])
    overlay = Mount("overlay", "overlay", ("lowerdir=/l", "upperdir=/u", "workdir=/w"))
    p = build_init_plan(spec, Path("/b"), rootfs_mounts=[overlay], last_cap=40)
    (root,) = p.rootfs.rootfs_mounts
    assert (root.fstype, root.data) == ("overlay", "lowerdir=/l,upperdir=/u,workdir=/w")


def test_devices_and_console() -> None:
    p = _plan(terminal=True)
    assert [d.path for d in p.rootfs.devices] == [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ]
    assert ("pts/ptmx", "/dev/ptmx") in p.rootfs.dev_symlinks
    assert p.rootfs.console


def test_process_plan() -> None:
    p = _plan(
        user="mail",
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
        env=["A=1"],
        cwd="/tmp",
        additional_gids=[7],
    )
    pp = p.process
    assert pp.args == ("sh",) and pp.cwd == "/tmp" and "A=1" in pp.env
    assert pp.user_spec == "mail" and pp.additional_gids == (7,)
    assert pp.rlimits == ((7, 100, 200),)
    assert pp.caps is not None and pp.caps.bounding == mask_of(DEFAULT_CAPABILITIES)
    assert pp.caps.inheritable == 0 and pp.no_new_privileges and pp.umask == 0o022
    assert _plan(user=None).process.user_spec is None


def test_cgroup_mounts_and_what_lies_below_them_wait_for_the_cgroup_namespace() -> None:
    spec = default_spec(
        ["sh"],
        mounts=[
            {
                "destination": "/sys/fs/cgroup/extra",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": [],
            },
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": []},
        ],
    )
    steps = build_init_plan(
        spec, Path("/b"), hierarchies=V1, cgroup_version="v1", last_cap=40
    ).rootfs.mounts
    late = [s.target for s in steps if s.after_cgroupns]
    assert late[0] == "/sys/fs/cgroup" and "/sys/fs/cgroup/extra" in late
    assert "/data" not in late and "/proc" not in late


def test_which_specs_a_spare_init_fits() -> None:
    from dockyard.oci.runtime_spec import default_spec
    from dockyard.runtime.plan import spec_fits_spare

    spec = default_spec(["sh"])
    assert spec_fits_spare(spec)
    with_cgroupns = default_spec(["sh"])
    with_cgroupns["linux"]["namespaces"].append({"type": "cgroup"})
    assert spec_fits_spare(with_cgroupns)
    for kind in ("network", "pid", "ipc", "uts"):
        other = default_spec(["sh"])
        other["linux"]["namespaces"] = [n for n in other["linux"]["namespaces"]
                                        if n["type"] != kind]  # the host's
        assert not spec_fits_spare(other), kind
        joined = default_spec(["sh"])
        for n in joined["linux"]["namespaces"]:
            if n["type"] == kind:
                n["path"] = "/proc/1/ns/" + kind  # another container's
        assert not spec_fits_spare(joined), kind
