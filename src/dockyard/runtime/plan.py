"""Everything the container process needs, computed in the parent before fork.

The child of ``create_init``/``exec_process`` runs in a copy of the caller's interpreter
and must do as little Python work as it can (no imports, no parsing): this module turns a
spec into frozen plans of plain values — mount steps with their flags already parsed,
capability masks, rlimit numbers, the env list, the cgroup files to join — and
``dockyard.runtime.init`` only walks them.

Pure apart from two host queries, both made here in the parent: whether a bind mount's
source is a directory, and which cgroup hierarchies are mounted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dockyard.errors import InvalidArgument, Unsupported
from dockyard.linux import caps as capsmod
from dockyard.linux.mount import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
    parse_options,
)
from dockyard.linux.ns import NAMESPACES
from dockyard.linux.proc import RLIMITS
from dockyard.oci.runtime_spec import USER_ANNOTATION
from dockyard.runtime.cgroups import Hierarchy

if TYPE_CHECKING:
    from dockyard.oci.mount import Mount

__all__ = [
    "CapPlan",
    "DeviceNode",
    "InitPlan",
    "MountStep",
    "ProcessPlan",
    "RootfsPlan",
    "SPARE_NAMESPACE_TYPES",
    "build_init_plan",
    "build_process_plan",
    "mount_steps",
    "spec_fits_spare",
]

_S_IFCHR = 0o020000
_S_IFBLK = 0o060000
_S_IFIFO = 0o010000


class MountStep(NamedTuple):
    """One mount(2) call at ``target`` (a path inside the container, ``""`` = the root).

    ``remount``: flags for a second ``MS_REMOUNT|MS_BIND`` call (a bind mount that is also
    ro/nosuid/...); ``propagation``: flags for a third call; ``is_file``: the mount point
    is created as a file (bind of a file)."""

    source: str | None
    target: str
    fstype: str | None
    flags: int
    data: str | None
    remount: int = 0
    propagation: int = 0
    is_file: bool = False
    mkdir: bool = True
    after_cgroupns: bool = False  # mounted once the cgroup namespace exists (cgroup mounts)


class DeviceNode(NamedTuple):
    path: str  # inside the container, e.g. /dev/null
    mode: int  # S_IFCHR|0666 ...
    major: int
    minor: int
    uid: int = 0
    gid: int = 0


class RootfsPlan(NamedTuple):
    root: str  # the host path of root.path (absolute)
    root_propagation: int  # applied to / first (default rslave)
    final_propagation: int  # applied to / after pivot_root (rshared), or 0
    rootfs_mounts: tuple[MountStep, ...]  # mounted onto root before anything else
    mounts: tuple[MountStep, ...]  # spec mounts, targets inside the container
    devices: tuple[DeviceNode, ...]
    dev_symlinks: tuple[tuple[str, str], ...]  # (target, link path inside the container)
    console: bool  # create /dev/console for the pty bind
    masked: tuple[str, ...]
    readonly: tuple[str, ...]
    readonly_root: bool
    sysctl: tuple[tuple[str, str], ...]  # (/proc/sys/... path, value)
    no_pivot: bool = False


class CapPlan(NamedTuple):
    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


class ProcessPlan(NamedTuple):
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    terminal: bool
    console_size: tuple[int, int] | None  # (rows, cols)
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    user_spec: str | None  # docker --user, resolved in the container
    umask: int
    rlimits: tuple[tuple[int, int, int], ...]
    caps: CapPlan | None  # None: leave the capabilities as they are
    no_new_privileges: bool
    oom_score_adj: int | None
    last_cap: int
    preserve_fds: int = 0


class InitPlan(NamedTuple):
    unshare_flags: int  # every new namespace except pid
    new_pid_ns: bool
    pid_ns_path: str | None  # join this pid namespace instead
    join: tuple[tuple[str, int], ...]  # (namespace path, CLONE_NEW*) to setns, not pid
    loopback: bool  # a new network namespace: bring lo up
    hostname: str | None
    domainname: str | None
    cgroup_procs: tuple[str, ...]  # the child writes 0 into these (empty: the parent
    # moves the child into its cgroup itself)
    rootfs: RootfsPlan
    process: ProcessPlan
    exec_fifo: str | None = None
    annotations: Mapping[str, str] = {}  # noqa: RUF012 - never mutated


_DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
_DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)
# runc links /dev/core only when the kernel has /proc/kcore
_DEV_CORE = (("/proc/kcore", "/dev/core"),) if os.path.exists("/proc/kcore") else ()


def _bind_step(
    source: str, dest: str, opts: Sequence[str], is_dir: Callable[[str], bool]
) -> MountStep:
    mo = parse_options(tuple(opts))
    flags = mo.flags | MS_BIND
    rest = flags & ~(MS_BIND | MS_REC)
    return MountStep(
        source,
        dest,
        None,
        flags & (MS_BIND | MS_REC),
        None,
        remount=rest,
        propagation=mo.propagation,
        is_file=not is_dir(source),
    )


def _cgroup_steps(
    dest: str, opts: Sequence[str], hierarchies: Sequence[Hierarchy], version: str
) -> list[MountStep]:
    mo = parse_options(tuple(opts))
    if version == "v2":
        return [MountStep("cgroup", dest, "cgroup2", mo.flags, None, after_cgroupns=True)]
    base = mo.flags & ~MS_RDONLY
    steps = [
        MountStep(
            "tmpfs",
            dest,
            "tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=755",
            after_cgroupns=True,
        )
    ]
    for h in hierarchies:
        sub = f"{dest}/{h.mount.name}"
        if h.fstype == "cgroup2":
            steps.append(MountStep("cgroup2", sub, "cgroup2", mo.flags, None, after_cgroupns=True))
        else:
            steps.append(
                MountStep("cgroup", sub, "cgroup", mo.flags, h.options, after_cgroupns=True)
            )
    if mo.flags & MS_RDONLY:
        # the tmpfs holding the mount points goes read-only last
        steps.append(
            MountStep(
                None,
                dest,
                None,
                0,
                None,
                remount=base | MS_RDONLY,
                mkdir=False,
                after_cgroupns=True,
            )
        )
    return steps


def _defer_below_cgroup(steps: list[MountStep]) -> list[MountStep]:
    """Mounts that come after a cgroup mount and lie below it wait with it, so that the
    split into before/after the cgroup namespace keeps their relative order."""
    out: list[MountStep] = []
    roots: list[str] = []
    for s in steps:
        if s.after_cgroupns:
            roots.append(s.target + "/")
        elif any(s.target.startswith(r) for r in roots):
            s = s._replace(after_cgroupns=True)
        out.append(s)
    return out


def mount_steps(
    mounts: Iterable[Mapping[str, Any]],
    bundle: Path,
    *,
    hierarchies: Sequence[Hierarchy] = (),
    cgroup_version: str = "v1",
    is_dir: Callable[[str], bool] = os.path.isdir,
) -> list[MountStep]:
    """The spec's ``mounts[]`` as mount steps, in order (relative bind sources are
    relative to the bundle; a ``cgroup`` mount expands to one mount per hierarchy)."""
    steps: list[MountStep] = []
    for m in mounts:
        dest = os.path.normpath(m["destination"])
        kind = m.get("type") or ""
        opts = list(m.get("options") or [])
        source = m.get("source") or ""
        if kind == "bind" or "bind" in opts or "rbind" in opts:
            if not source:
                raise InvalidArgument(f"invalid runtime spec: mount {dest}: bind without source")
            src = source if source.startswith("/") else str(bundle / source)
            steps.append(_bind_step(src, dest, opts, is_dir))
        elif kind == "cgroup":
            steps.extend(_cgroup_steps(dest, opts, hierarchies, cgroup_version))
        else:
            mo = parse_options(tuple(opts))
            steps.append(
                MountStep(
                    source or kind,
                    dest,
                    kind,
                    mo.flags,
                    mo.data or None,
                    propagation=mo.propagation,
                )
            )
    return _defer_below_cgroup(steps)


def _rootfs_mount_steps(rootfs_mounts: Sequence[Mount], root: str) -> tuple[MountStep, ...]:
    if not rootfs_mounts:
        return (MountStep(root, "", None, MS_BIND | MS_REC, None, mkdir=False),)
    out = []
    for m in rootfs_mounts:
        mo = parse_options(m.options)
        if m.type == "bind" or mo.bind:
            flags = mo.flags | MS_BIND
            out.append(
                MountStep(
                    m.source,
                    "",
                    None,
                    flags & (MS_BIND | MS_REC),
                    None,
                    remount=flags & ~(MS_BIND | MS_REC),
                    mkdir=False,
                )
            )
        else:
            out.append(MountStep(m.source, "", m.type, mo.flags, mo.data or None, mkdir=False))
    return tuple(out)


def _devices(
    spec_devices: Iterable[Mapping[str, Any]], has_dev_tmpfs: bool
) -> tuple[DeviceNode, ...]:
    out: list[DeviceNode] = []
    if has_dev_tmpfs:
        out += [DeviceNode(p, _S_IFCHR | 0o666, ma, mi) for p, ma, mi in _DEFAULT_DEVICES]
    known = {d.path for d in out}
    for d in spec_devices:
        kind = d.get("type", "c")
        ftype = {"c": _S_IFCHR, "u": _S_IFCHR, "b": _S_IFBLK, "p": _S_IFIFO}.get(kind)
        if ftype is None:
            raise InvalidArgument(
                f"invalid runtime spec: linux.devices {d.get('path')}: type {kind!r}"
            )
        node = DeviceNode(
            d["path"],
            ftype | (d.get("fileMode") or 0o666) & 0o7777,
            int(d.get("major") or 0),
            int(d.get("minor") or 0),
            int(d.get("uid") or 0),
            int(d.get("gid") or 0),
        )
        if node.path in known:
            out = [n for n in out if n.path != node.path]
        out.append(node)
    return tuple(out)


def _propagation(spec_value: str | None) -> tuple[int, int]:
    """(for / before pivot, for / after pivot)."""
    table = {
        "": MS_SLAVE | MS_REC,
        "slave": MS_SLAVE,
        "rslave": MS_SLAVE | MS_REC,
        "private": MS_PRIVATE,
        "rprivate": MS_PRIVATE | MS_REC,
    }
    value = spec_value or ""
    if value in table:
        return table[value], 0
    if value in ("shared", "rshared"):
        return MS_SLAVE | MS_REC, MS_SHARED | (MS_REC if value == "rshared" else 0)
    raise InvalidArgument(f"invalid runtime spec: linux.rootfsPropagation {value!r}")


def build_rootfs_plan(
    spec: Mapping[str, Any],
    bundle: Path,
    rootfs_mounts: Sequence[Mount],
    *,
    hierarchies: Sequence[Hierarchy] = (),
    cgroup_version: str = "v1",
    is_dir: Callable[[str], bool] = os.path.isdir,
    no_pivot: bool = False,
) -> RootfsPlan:
    """The mount plan of a new container (pure but for ``is_dir`` on bind sources)."""
    root = spec["root"]["path"]
    root_abs = os.path.normpath(root if root.startswith("/") else str(bundle / root))
    linux = spec.get("linux") or {}
    mounts = spec.get("mounts") or []
    steps = mount_steps(
        mounts, bundle, hierarchies=hierarchies, cgroup_version=cgroup_version, is_dir=is_dir
    )
    has_dev = any(
        os.path.normpath(m["destination"]) == "/dev" and m.get("type") == "tmpfs" for m in mounts
    )
    before, after = _propagation(linux.get("rootfsPropagation"))
    sysctl = tuple(
        (f"/proc/sys/{k.replace('.', '/')}", str(v)) for k, v in (linux.get("sysctl") or {}).items()
    )
    terminal = bool((spec.get("process") or {}).get("terminal"))
    return RootfsPlan(
        root=root_abs,
        root_propagation=before,
        final_propagation=after,
        rootfs_mounts=_rootfs_mount_steps(rootfs_mounts, root_abs),
        mounts=tuple(steps),
        devices=_devices(linux.get("devices") or [], has_dev),
        dev_symlinks=_DEV_SYMLINKS + _DEV_CORE if has_dev else (),
        console=terminal and has_dev,
        masked=tuple(linux.get("maskedPaths") or ()),
        readonly=tuple(linux.get("readonlyPaths") or ()),
        readonly_root=bool(spec["root"].get("readonly")),
        sysctl=sysctl,
        no_pivot=no_pivot,
    )


def _cap_plan(caps: Mapping[str, Any] | None) -> CapPlan | None:
    if caps is None:
        return None

    def mask(kind: str) -> int:
        try:
            return capsmod.mask_of(caps.get(kind) or ())
        except KeyError as exc:
            raise InvalidArgument(f"unknown capability {exc.args[0]!r}") from exc

    return CapPlan(
        mask("bounding"), mask("effective"), mask("permitted"), mask("inheritable"), mask("ambient")
    )


def _rlimits(items: Iterable[Mapping[str, Any]]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for rl in items:
        number = RLIMITS.get(rl["type"])
        if number is None:
            raise InvalidArgument(f"invalid runtime spec: unknown rlimit {rl['type']!r}")
        out.append((number, int(rl["soft"]), int(rl["hard"])))
    return tuple(out)


def build_process_plan(
    process: Mapping[str, Any],
    *,
    user_spec: str | None = None,
    last_cap: int | None = None,
    preserve_fds: int = 0,
) -> ProcessPlan:
    """The OCI ``process`` object as a plan (pure)."""
    user = process.get("user") or {}
    size = process.get("consoleSize")
    console = (int(size.get("height", 0)), int(size.get("width", 0))) if size else None
    umask = user.get("umask")
    return ProcessPlan(
        args=tuple(process["args"]),
        env=tuple(process.get("env") or ()),
        cwd=process.get("cwd") or "/",
        terminal=bool(process.get("terminal")),
        console_size=console if console and all(console) else None,
        uid=int(user.get("uid", 0)),
        gid=int(user.get("gid", 0)),
        additional_gids=tuple(int(g) for g in user.get("additionalGids") or ()),
        user_spec=user_spec,
        umask=0o022 if umask is None else int(umask),
        rlimits=_rlimits(process.get("rlimits") or ()),
        caps=_cap_plan(process.get("capabilities")),
        no_new_privileges=bool(process.get("noNewPrivileges")),
        oom_score_adj=process.get("oomScoreAdj"),
        last_cap=capsmod.last_cap() if last_cap is None else last_cap,
        preserve_fds=preserve_fds,
    )


SPARE_NAMESPACE_TYPES = frozenset({"pid", "mount", "uts", "ipc", "network"})


def spec_fits_spare(spec: Mapping[str, Any]) -> bool:
    """Whether the init of ``spec`` can be a spare init (``container.SpareInit``): new pid,
    mount, uts, ipc and network namespaces (and maybe cgroup), none joined by path — docker's
    default set. Anything else needs an init forked for it."""
    namespaces = (spec.get("linux") or {}).get("namespaces") or []
    if any(ns.get("path") for ns in namespaces):
        return False
    return {ns.get("type") for ns in namespaces} - {"cgroup"} == SPARE_NAMESPACE_TYPES


def build_init_plan(
    spec: Mapping[str, Any],
    bundle: Path,
    *,
    rootfs_mounts: Sequence[Mount] = (),
    cgroup_procs: Sequence[str] = (),
    hierarchies: Sequence[Hierarchy] = (),
    cgroup_version: str = "v1",
    exec_fifo: str | None = None,
    is_dir: Callable[[str], bool] = os.path.isdir,
    last_cap: int | None = None,
    preserve_fds: int = 0,
    no_pivot: bool = False,
) -> InitPlan:
    """The whole plan of a container init (pure but for ``is_dir``)."""
    linux = spec.get("linux") or {}
    flags = 0
    join: list[tuple[str, int]] = []
    new_pid = False
    pid_path = None
    types: dict[str, str | None] = {}
    for ns in linux.get("namespaces") or []:
        types[ns["type"]] = ns.get("path") or None
    if "user" in types:
        raise Unsupported("user namespaces are not supported by dockyard-runtime")
    if "time" in types:
        raise Unsupported("time namespaces are not supported by dockyard-runtime")
    if "mount" not in types:
        raise InvalidArgument(
            "invalid runtime spec: linux.namespaces: a mount namespace is required"
        )
    for t, path in types.items():
        flag = NAMESPACES[t][0]
        if t == "pid":
            new_pid, pid_path = path is None, path
        elif path is None:
            flags |= flag
        else:
            join.append((path, flag))
    annotations = dict(spec.get("annotations") or {})
    hostname = spec.get("hostname") or None
    domainname = spec.get("domainname") or None
    if (hostname or domainname) and "uts" not in types:
        raise InvalidArgument("invalid runtime spec: hostname needs a uts namespace")
    return InitPlan(
        unshare_flags=flags,
        new_pid_ns=new_pid,
        pid_ns_path=pid_path,
        join=tuple(join),
        loopback="network" in types and types["network"] is None,
        hostname=hostname if "uts" in types and types["uts"] is None else None,
        domainname=domainname if "uts" in types and types["uts"] is None else None,
        cgroup_procs=tuple(cgroup_procs),
        rootfs=build_rootfs_plan(
            spec,
            bundle,
            rootfs_mounts,
            hierarchies=hierarchies,
            cgroup_version=cgroup_version,
            is_dir=is_dir,
            no_pivot=no_pivot,
        ),
        process=build_process_plan(
            spec["process"],
            user_spec=annotations.get(USER_ANNOTATION),
            last_cap=last_cap,
            preserve_fds=preserve_fds,
        ),
        exec_fifo=exec_fifo,
        annotations=annotations,
    )
