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

__all__ = ["finalize_rootfs", "mount_cgroups", "mount_root", "pivot", "secure_join", "why"]

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


def _mask(sc: Syscalls, path: str) -> None:
    st = sc.stat(path)
    if st is None:
        return
    try:
        if stat_mod.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
        else:
            sc.mount("/dev/null", path, None, MS_BIND, None)
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
