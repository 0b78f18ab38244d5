"""The rootfs sequence against RecordingSyscalls: order of mounts, pivot_root, masks."""

from __future__ import annotations

import stat
from pathlib import Path

from dockyard.linux.fake import RecordingSyscalls
from dockyard.linux.mount import (
    MNT_DETACH,
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
)
from dockyard.oci.mount import Mount
from dockyard.oci.runtime_spec import default_spec
from dockyard.runtime.plan import build_rootfs_plan
from dockyard.runtime.rootfs import finalize_rootfs, mount_cgroups, mount_root, pivot, secure_join

ROOT = "/b/rootfs"


def _plan(**kw: object):  # type: ignore[no-untyped-def]
    spec = default_spec(["sh"], **kw)  # type: ignore[arg-type]
    overlay = Mount("overlay", "overlay", ("lowerdir=/l", "upperdir=/u", "workdir=/w"))
    return build_rootfs_plan(spec, Path("/b"), [overlay], cgroup_version="v2")


def test_prepare_order() -> None:
    sc = RecordingSyscalls(dirs={ROOT, ROOT + "/proc", ROOT + "/dev", ROOT + "/sys"})
    mount_root(sc, _plan())
    pivot(sc, _plan())
    assert sc.calls[0] == ("umask", (0,))
    mounts = sc.args("mount")
    assert mounts[0] == (None, "/", None, MS_SLAVE | MS_REC, None)
    assert mounts[1] == ("overlay", ROOT, "overlay", 0, "lowerdir=/l,upperdir=/u,workdir=/w")
    assert mounts[2][:3] == ("proc", ROOT + "/proc", "proc")
    # /dev/pts is created inside the fresh /dev tmpfs before it is mounted
    assert ("mkdir", (ROOT + "/dev/pts", 0o755)) in sc.calls
    assert ("mknod", (ROOT + "/dev/null", stat.S_IFCHR | 0o666, 0x103)) in sc.calls
    assert ("symlink", ("pts/ptmx", ROOT + "/dev/ptmx")) in sc.calls
    assert sc.calls[-5:] == [
        ("chdir", (ROOT,)),
        ("pivot_root", (".", ".")),
        ("mount", (None, ".", None, MS_SLAVE | MS_REC, None)),
        ("umount2", (".", MNT_DETACH)),
        ("chdir", ("/",)),
    ]


def test_no_pivot_moves_and_chroots() -> None:
    spec = default_spec(["sh"], mounts=())
    plan = build_rootfs_plan(spec, Path("/b"), [], no_pivot=True)
    sc = RecordingSyscalls(dirs={ROOT})
    mount_root(sc, plan)
    pivot(sc, plan)
    assert "pivot_root" not in sc.names() and ("chroot", (".",)) in sc.calls


def test_mount_points_do_not_follow_symlinks_out_of_the_root() -> None:
    sc = RecordingSyscalls(
        dirs={ROOT}, links={ROOT + "/proc": "/etc", ROOT + "/evil": "../../../host"}
    )
    assert secure_join(sc, ROOT, "/proc/x") == ROOT + "/etc/x"
    assert secure_join(sc, ROOT, "/evil/y") == ROOT + "/host/y"
    assert secure_join(sc, ROOT, "/../../a") == ROOT + "/a"


def test_known_paths_skip_readlink_until_mounted_over() -> None:
    sc = RecordingSyscalls(dirs={ROOT, ROOT + "/sys"})
    known: set[str] = set()
    secure_join(sc, ROOT, "/sys/fs", known)
    assert known == {ROOT + "/sys"}
    calls = len(sc.calls)
    assert secure_join(sc, ROOT, "/sys/x", known) == ROOT + "/sys/x"
    assert len(sc.calls) == calls  # queries are not recorded; the cache is what matters


def test_finalize_masks_readonly_and_root() -> None:
    sc = RecordingSyscalls(
        dirs={"/proc", "/proc/acpi", "/proc/sys", "/sys/firmware"},
        files={"/proc/kcore": b""},
        statvfs=14,
    )
    plan = _plan(readonly_rootfs=True, sysctl={"net.ipv4.ip_forward": "1"})
    finalize_rootfs(sc, plan)
    calls = sc.calls
    assert calls[0] == ("write_file", ("/proc/sys/net/ipv4/ip_forward", "1"))
    assert ("mount", ("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC, None)) in calls
    assert (
        "mount",
        (None, "/proc/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY | 14, None),
    ) in calls
    assert ("mount", ("tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY, None)) in calls
    assert ("mount", ("/dev/null", "/proc/kcore", None, MS_BIND, None)) in calls
    # paths that do not exist are skipped
    assert not any(a[1] == "/proc/keys" for a in sc.args("mount"))
    assert calls[-1] == ("mount", (None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | 14, None))


def test_cgroup_mounts_come_after_the_rest() -> None:
    spec = default_spec(["sh"])
    plan = build_rootfs_plan(spec, Path("/b"), [], cgroup_version="v2")
    sc = RecordingSyscalls(dirs={ROOT})
    mount_root(sc, plan)
    assert not any(a[2] == "cgroup2" for a in sc.args("mount"))
    assert any(a[2] == "mqueue" for a in sc.args("mount"))  # listed after the cgroup mount
    pivot(sc, plan)
    mount_cgroups(sc, plan)
    # after pivot_root: the path is inside the new root
    assert sc.calls[-1] == ("mount", ("cgroup", "/sys/fs/cgroup", "cgroup2", MS_RDONLY | 14, None))


def test_use_staged_moves_the_trees_in_when_the_plan_wants_what_was_staged() -> None:
    from dockyard.linux.mount import MS_MOVE
    from dockyard.oci.runtime_spec import default_spec
    from dockyard.runtime.plan import build_init_plan
    from dockyard.runtime.rootfs import Staged, use_staged

    def rootfs(spec: dict) -> object:  # type: ignore[type-arg]
        return build_init_plan(spec, Path("/b"), last_cap=40).rootfs

    staged = Staged("/st", rootfs(default_spec(["sh"])))  # type: ignore[arg-type]
    spec = default_spec(["sh"])
    for m in spec["mounts"]:
        if m["destination"] == "/dev/shm":
            m["options"] = [o if not o.startswith("size=") else "size=1g" for o in m["options"]]
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/tmp",
                           "options": ["rbind"]})
    plan = use_staged(rootfs(spec), staged)  # type: ignore[arg-type]
    assert plan is not None and plan.devices == () and plan.masked == () == plan.readonly
    moves = [(m.source, m.target) for m in plan.mounts if m.flags == MS_MOVE]
    assert moves == [("/st/proc", "/proc"), ("/st/dev", "/dev"), ("/st/sys", "/sys")]
    targets = [m.target for m in plan.mounts if not m.after_cgroupns]
    assert targets == ["/proc", "/dev", "/sys", "/dev/shm", "/data"]  # shm made at start
    shm = next(m for m in plan.mounts if m.target == "/dev/shm")
    assert "size=1g" in (shm.data or "")

    for change in ("sysctl", "proc-mount", "masked"):
        other = default_spec(["sh"])
        if change == "sysctl":
            other["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        elif change == "proc-mount":
            other["mounts"].append({"destination": "/proc/x", "type": "bind", "source": "/tmp",
                                    "options": ["rbind"]})
        else:
            other["linux"]["maskedPaths"] = []  # --privileged
        assert use_staged(rootfs(other), staged) is None, change  # type: ignore[arg-type]


def test_stage_builds_the_trees_under_the_staging_directory_only() -> None:
    from dockyard.linux.fake import RecordingSyscalls
    from dockyard.oci.runtime_spec import default_spec
    from dockyard.runtime.plan import build_init_plan
    from dockyard.runtime.rootfs import stage

    std = build_init_plan(default_spec(["sh"]), Path("/b"), last_cap=40).rootfs
    sc = RecordingSyscalls(dirs={"/st", "/st/proc/sys", "/st/proc/acpi"},
                           files={"/st/proc/keys": b""})
    staged = stage(sc, "/st", std)
    assert staged.staging == "/st" and staged.plan == std
    mounts = sc.args("mount")
    assert mounts[0] == (None, "/", None, std.root_propagation, None)  # rslave first
    assert mounts[1] == ("tmpfs", "/st", "tmpfs", 0, "mode=755")
    assert all(m[1].startswith("/st") for m in mounts[1:])  # nothing outside the staging
    assert ("/st/dev/null", "/st/proc/keys", None, 4096, None) in mounts  # masked with its null
    assert not any(m[1] == "/st/dev/shm" for m in mounts)  # the container's own size
    assert any(m[0] == "/st/proc/sys" and m[1] == "/st/proc/sys" for m in mounts)  # read-only
    assert [a[0] for a in sc.args("mknod")][:2] == ["/st/dev/null", "/st/dev/zero"]
