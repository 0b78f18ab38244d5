"""Build the container's filesystem inside its new mount namespace (runs in the child).

Order (runc's): make ``/`` rslave (or the spec's rootfsPropagation) → mount the rootfs
mounts (the engine's overlay) at root.path, or bind root.path onto itself → spec mounts
in order, mount points created inside the root without following symlinks out of it →
device nodes and /dev symlinks → /dev/console placeholder (``mount_root``) →
pivot_root(".", ".") and detach the old root (``pivot``) → sysctls, read-only and masked
paths, read-only root (``finalize_rootfs``) → the cgroup mounts, inside the new root,
once the container's cgroup namespace exists (``mount_cgroups``: on cgroup v1 the parent's
move of the child into its cgroup can take an RCU grace period, so everything that does
not need it is done first). After the terminal is set up, ``finalize_rootfs`` applies sysctls,
read-only paths, masked paths and the read-only root.

Every kernel call goes through ``MountSyscalls``/``FileSyscalls``; failures raise
OCIRuntimeError with runc-like wording naming the mount.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from typing import NamedTuple

from dockyard.errors import OCIRuntimeError
from dockyard.linux.mount import (
    MNT_DETACH,
    MS_BIND,
    MS_MOVE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
)
from dockyard.linux.syscalls import Syscalls
from dockyard.runtime.plan import MountStep, RootfsPlan

__all__ = [
    "STAGED_TREES",
    "Staged",
    "finalize_rootfs",
    "mount_cgroups",
    "mount_root",
    "pivot",
    "secure_join",
    "stage",
    "use_staged",
    "why",
]

_MAX_LINKS = 255


def why(exc: OSError) -> str:
    """The lower-case reason of an OSError (``no such file or directory``)."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def secure_join(sc: Syscalls, root: str, unsafe: str, known: set[str] | None = None) -> str:
    """``root`` + ``unsafe`` with every symlink on the way resolved as if ``root`` were
    ``/``, so the result never leaves ``root`` (securejoin's rule). Missing components
    are kept as they are. ``known``: paths already found not to be symlinks (skipped)."""
    parts = [p for p in unsafe.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root + "/" + "/".join(done + [part]) if done else root + "/" + part
        if known is not None and candidate in known:
            done.append(part)
            continue
        target = sc.readlink(candidate)
        if target is None and known is not None and sc.stat(candidate) is not None:
            known.add(candidate)
        if target is None:
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OCIRuntimeError(f"secure join {unsafe}: too many levels of symbolic links")
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return root + ("/" + "/".join(done) if done else "")


def _mkdir_p(sc: Syscalls, root: str, path: str, mode: int = 0o755) -> None:
    """mkdir -p of ``path`` (already inside ``root``), creating only what is missing."""
    if sc.stat(path) is not None:
        return
    rel = path[len(root) :].strip("/").split("/")
    cur = root
    for part in rel:
        cur = cur + "/" + part
        if sc.stat(cur) is None:
            try:
                sc.mkdir(cur, mode)
            except FileExistsError:
                pass


def _make_mountpoint(sc: Syscalls, root: str, target: str, is_file: bool) -> None:
    if sc.stat(target) is not None:
        return
    if is_file:
        parent = target.rsplit("/", 1)[0] or "/"
        _mkdir_p(sc, root, parent)
        sc.create_file(target, 0o644)
    else:
        _mkdir_p(sc, root, target)


def _do_step(sc: Syscalls, step: MountStep, target: str) -> None:
    """The one to three mount(2) calls of a step at ``target``."""
    try:
        if step.flags or step.fstype or step.source:
            sc.mount(step.source, target, step.fstype, step.flags, step.data)
        if step.remount:
            sc.mount(None, target, None, MS_REMOUNT | MS_BIND | step.remount, None)
        if step.propagation:
            sc.mount(None, target, None, step.propagation, None)
    except OSError as exc:
        raise OCIRuntimeError(
            f'error mounting "{step.source or step.fstype}" to rootfs at "{step.target or "/"}": '
            f"{why(exc)}"
        ) from exc


def _mount_all(sc: Syscalls, root: str, steps: tuple[MountStep, ...], after_cgroupns: bool) -> None:
    known: set[str] = set()  # existing non-symlink paths, until something is mounted over them
    for step in steps:
        if step.after_cgroupns != after_cgroupns:
            continue
        target = secure_join(sc, root, step.target, known)
        if step.mkdir:
            _make_mountpoint(sc, root, target, step.is_file)
        _do_step(sc, step, target)
        if known:
            below = target + "/"
            known.difference_update([k for k in known if k.startswith(below)])


def _devices(sc: Syscalls, plan: RootfsPlan) -> None:
    root = plan.root
    for dev in plan.devices:
        path = secure_join(sc, root, dev.path)
        _mkdir_p(sc, root, path.rsplit("/", 1)[0])
        try:
            sc.mknod(path, dev.mode, os.makedev(dev.major, dev.minor))
            if dev.uid or dev.gid:
                sc.chown(path, dev.uid, dev.gid)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OCIRuntimeError(f"mknod {dev.path}: {why(exc)}") from exc
    for target, link in plan.dev_symlinks:
        try:
            sc.symlink(target, root + link)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OCIRuntimeError(f"symlink {link}: {why(exc)}") from exc
    if plan.console:
        try:
            sc.create_file(root + "/dev/console", 0o666)
        except OSError as exc:
            raise OCIRuntimeError(f"create /dev/console: {why(exc)}") from exc


def _pivot(sc: Syscalls, plan: RootfsPlan) -> None:
    try:
        sc.chdir(plan.root)
        if plan.no_pivot:
            sc.mount(plan.root, "/", None, MS_MOVE, None)
            sc.chroot(".")
        else:
            sc.pivot_root(".", ".")
            # the old root is stacked on the new one: keep its unmount from propagating
            sc.mount(None, ".", None, MS_SLAVE | MS_REC, None)
            sc.umount2(".", MNT_DETACH)
        sc.chdir("/")
    except OSError as exc:
        raise OCIRuntimeError(f"pivot_root {plan.root}: {why(exc)}") from exc


def mount_root(sc: Syscalls, plan: RootfsPlan) -> None:
    """Before the cgroup namespace: ``/`` made rslave (or the spec's propagation), the
    rootfs mounts (the engine's overlay) at root.path, every spec mount but the cgroup
    ones, devices. The caller is in a fresh mount namespace. Sets umask 0 (device and
    mount point modes are exact); ``prepare_process`` sets the process's umask later."""
    sc.umask(0)
    try:
        sc.mount(None, "/", None, plan.root_propagation, None)
    except OSError as exc:
        raise OCIRuntimeError(f"set / propagation: {why(exc)}") from exc
    for step in plan.rootfs_mounts:
        _do_step(sc, step, plan.root)
    _mount_all(sc, plan.root, plan.mounts, after_cgroupns=False)
    _devices(sc, plan)


def pivot(sc: Syscalls, plan: RootfsPlan) -> None:
    """pivot_root into root.path and detach the old root (or move + chroot)."""
    _pivot(sc, plan)


def mount_cgroups(sc: Syscalls, plan: RootfsPlan) -> None:
    """After pivot_root, in the container's cgroup namespace (so the mounts show the
    container's cgroup as their root): the cgroup mounts and what lies below them."""
    _mount_all(sc, "", plan.mounts, after_cgroupns=True)


def _mask(sc: Syscalls, path: str, null: str = "/dev/null") -> None:
    st = sc.stat(path)
    if st is None:
        return
    try:
        if stat_mod.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
        else:
            sc.mount(null, path, None, MS_BIND, None)
    except OSError as exc:
        raise OCIRuntimeError(f"mask {path}: {why(exc)}") from exc


def _readonly(sc: Syscalls, path: str) -> None:
    if sc.stat(path) is None:
        return
    try:
        sc.mount(path, path, None, MS_BIND | MS_REC, None)
        sc.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | sc.statvfs_flags(path), None)
    except OSError as exc:
        raise OCIRuntimeError(f"make {path} read-only: {why(exc)}") from exc


def finalize_rootfs(sc: Syscalls, plan: RootfsPlan) -> None:
    """After pivot_root: sysctls, read-only paths, masked paths, read-only root,
    and the final root propagation."""
    for path, value in plan.sysctl:
        try:
            sc.write_file(path, value)
        except OSError as exc:
            raise OCIRuntimeError(f"write sysctl {path}: {why(exc)}") from exc
    for path in plan.readonly:
        _readonly(sc, path)
    for path in plan.masked:
        _mask(sc, path)
    if plan.readonly_root:
        try:
            sc.mount(
                None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | sc.statvfs_flags("/"), None
            )
        except OSError as exc:
            raise OCIRuntimeError(f"make / read-only: {why(exc)}") from exc
    if plan.final_propagation:
        try:
            sc.mount(None, "/", None, plan.final_propagation, None)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise OCIRuntimeError(f"set / propagation: {why(exc)}") from exc


# ---- staged trees: /proc, /dev and /sys made before the container is known ------------------

#: the trees a spare init mounts ahead (``stage``) and moves into a rootfs (``use_staged``)
STAGED_TREES = ("/proc", "/dev", "/sys")
#: mounts in those trees that differ between containers (``--shm-size``): made at start
UNSTAGED = ("/dev/shm",)


def _in_trees(target: str) -> bool:
    return target not in UNSTAGED and any(
        target == t or target.startswith(t + "/") for t in STAGED_TREES)


class Staged(NamedTuple):
    """What ``stage`` mounted under ``staging``, for ``use_staged`` to compare a container's
    plan with: the standard plan it was made from."""

    staging: str
    plan: RootfsPlan


def stage(sc: Syscalls, staging: str, standard: RootfsPlan) -> Staged:
    """In a spare init's own mount namespace, before its container is known: make ``/``
    as ``standard`` says (rslave: nothing here reaches the host), mount a tmpfs at
    ``staging`` (an empty directory that nothing else uses), and build there the /proc,
    /dev and /sys of ``standard`` (docker's defaults): its mounts in those trees, the
    device nodes and /dev symlinks, the read-only and masked paths — all but /dev/shm,
    whose size is the container's (``UNSTAGED``). These are the same for every container
    started with docker's defaults (the spare init is already in the
    container's pid, ipc and network namespaces, which proc, mqueue and sysfs show), and
    they are half of an init's mount calls. Raises OCIRuntimeError."""
    sc.umask(0)
    try:
        sc.mount(None, "/", None, standard.root_propagation, None)
        sc.mount("tmpfs", staging, "tmpfs", 0, "mode=755")
    except OSError as exc:
        raise OCIRuntimeError(f"staging at {staging}: {why(exc)}") from exc
    steps = tuple(m for m in standard.mounts if not m.after_cgroupns and _in_trees(m.target))
    _mount_all(sc, staging, steps, after_cgroupns=False)
    _devices(sc, standard._replace(root=staging, console=False))
    for path in standard.readonly:
        _readonly(sc, staging + path)
    for path in standard.masked:
        _mask(sc, staging + path, null=staging + "/dev/null")
    return Staged(staging, standard)


def use_staged(plan: RootfsPlan, staged: Staged) -> RootfsPlan | None:
    """``plan`` with the staged trees moved into its root instead of made there, or None
    when it wants other than what was staged: other mounts, devices, masked or read-only
    paths in those trees, sysctls (they are written before /proc/sys turns read-only),
    another propagation, or a mount of its own inside /proc or /sys (docker's order masks
    those after every mount)."""
    std = staged.plan
    if (plan.root_propagation != std.root_propagation or plan.sysctl
            or plan.devices != std.devices or plan.dev_symlinks != std.dev_symlinks
            or plan.masked != std.masked or plan.readonly != std.readonly):
        return None
    ours = [m for m in plan.mounts if not m.after_cgroupns and _in_trees(m.target)]
    theirs = [m for m in std.mounts if not m.after_cgroupns and _in_trees(m.target)]
    if ours != theirs:
        return None
    mounts: list[MountStep] = []
    for m in plan.mounts:
        if m.after_cgroupns or not _in_trees(m.target):
            mounts.append(m)
        elif m.target in STAGED_TREES:  # the tree's own mount: moved in whole, in its place
            mounts.append(MountStep(staged.staging + m.target, m.target, None, MS_MOVE, None))
    return plan._replace(mounts=tuple(mounts), devices=(), dev_symlinks=(), masked=(),
                         readonly=())
