"""Container cgroups on cgroup v1 (one hierarchy per controller) and v2 (unified).

The cgroupfs root is a parameter (``root``, default ``/sys/fs/cgroup``), so unit tests run
against a directory under ``tmp_path`` seeded with the control files they need.

Vocabulary: a *hierarchy* is one mounted cgroup filesystem (v1: ``/sys/fs/cgroup/memory``,
``.../name=systemd``, the hybrid ``.../unified``; v2: the root itself). A cgroup *path*
(``/dockyard/<id>``, the spec's ``linux.cgroupsPath``) is relative to each hierarchy's root.

Lifecycle::

    cg = open_cgroup("/dockyard/abc")       # detects v1 / v2 under root
    cg.create(); cg.apply(spec["linux"]["resources"])
    cg.procs_files()                          # the child writes "0" to each to join
    cg.pids(); cg.freeze(); cg.thaw(); cg.kill_all(signal.SIGKILL)
    cg.destroy()                              # after the processes are gone: rmdir

Resource files written (``linux.resources``):

=================  ============================================  ==========================
OCI field          v1 file                                       v2 file
=================  ============================================  ==========================
memory.limit       memory.limit_in_bytes                         memory.max
memory.reservation memory.soft_limit_in_bytes                    memory.low
memory.swap        memory.memsw.limit_in_bytes (if present)      memory.swap.max (swap-limit)
cpu.shares         cpu.shares                                    cpu.weight (converted)
cpu.quota/period   cpu.cfs_quota_us / cpu.cfs_period_us          cpu.max
cpu.cpus/mems      cpuset.cpus / cpuset.mems                     cpuset.cpus / cpuset.mems
pids.limit         pids.max                                      pids.max
devices[]          devices.allow / devices.deny                  (not applied: needs eBPF)
unified{}          (ignored)                                     raw file writes
=================  ============================================  ==========================
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from dockyard.errors import DockyardError, FailedPrecondition, InvalidArgument

__all__ = [
    "DEFAULT_ROOT",
    "Cgroup",
    "CgroupV1",
    "CgroupV2",
    "Hierarchy",
    "discover",
    "open_cgroup",
    "parse_proc_cgroup",
    "shares_to_weight",
]

DEFAULT_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = frozenset(
    {
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "blkio",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    }
)
_V2_ENABLE = ("cpu", "cpuset", "io", "memory", "pids", "hugetlb")


class Hierarchy(NamedTuple):
    """One mounted cgroup filesystem.

    ``key`` is the hierarchy's name as in ``/proc/<pid>/cgroup`` (``cpu,cpuacct``,
    ``name=systemd``, ``""`` for cgroup2); ``options`` the data to mount it again inside
    a container (``cpu,cpuacct``, ``none,name=systemd``)."""

    key: str
    mount: Path
    fstype: str  # "cgroup" | "cgroup2"

    @property
    def options(self) -> str:
        return "none," + self.key if self.key.startswith("name=") else self.key

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(c for c in self.key.split(",") if c and not c.startswith("name="))


def _from_mountinfo(root: Path, text: str) -> list[Hierarchy]:
    found = []
    rootstr = str(root).rstrip("/") or "/"
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4]
        if point != rootstr and not point.startswith(rootstr + "/"):
            continue
        if rfields[0] == "cgroup2":
            found.append(Hierarchy("", Path(point), "cgroup2"))
            continue
        opts = [o for o in rfields[2].split(",") if o in _V1_CONTROLLERS or o.startswith("name=")]
        found.append(Hierarchy(",".join(opts), Path(point), "cgroup"))
    return found


def _from_dirs(root: Path) -> list[Hierarchy]:
    if (root / "cgroup.controllers").exists():
        return [Hierarchy("", root, "cgroup2")]
    found = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.is_symlink() or not d.is_dir():
            continue
        if (d / "cgroup.controllers").exists():
            found.append(Hierarchy("", d, "cgroup2"))
        elif (d / "cgroup.procs").exists():
            key = (
                "name=" + d.name if d.name not in _V1_CONTROLLERS and "," not in d.name else d.name
            )
            found.append(Hierarchy(key, d, "cgroup"))
    return found


_CACHE: dict[str, tuple[str, tuple[Hierarchy, ...]]] = {}


def discover(
    root: Path = DEFAULT_ROOT, mountinfo: str | None = None
) -> tuple[str, tuple[Hierarchy, ...]]:
    """("v1" | "v2", hierarchies) under ``root``.

    Reads the mounts under ``root`` from ``mountinfo`` (default: /proc/self/mountinfo); a
    root with no cgroup mount under it (a test directory) is read from its directory tree.
    The answer for the default root is cached: the host's cgroup mounts do not move."""
    from_host = mountinfo is None
    cached = _CACHE.get(str(root)) if from_host else None
    if cached:
        return cached
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        except OSError:
            mountinfo = ""
    hs = _from_mountinfo(root, mountinfo) or _from_dirs(root)
    version = "v2" if any(h.fstype == "cgroup2" and h.mount == root for h in hs) else "v1"
    result = (version, tuple(hs))
    if hs and from_host:
        _CACHE[str(root)] = result
    return result


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as hierarchy key → path (``""`` is the cgroup2 line)."""
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) → cpu.weight (1..10000), the conversion runc and crun use."""
    if shares <= 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _write(path: str | Path, value: str | int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def _read(path: str | Path) -> str:
    with open(path) as f:
        return f.read()


def _clean_path(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup path {path!r}")
    return "/" + "/".join(parts)


class Cgroup:
    """One container cgroup across every hierarchy (see the module docstring)."""

    version = ""

    def __init__(self, path: str, hierarchies: tuple[Hierarchy, ...], root: Path = DEFAULT_ROOT):
        self.path = _clean_path(path)
        self.root = root
        self.hierarchies = hierarchies
        self._rel = self.path.lstrip("/")
        # plain strings: this is on the container start path, pathlib costs
        self._dirs = [f"{h.mount}/{self._rel}" for h in hierarchies]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    def dirs(self) -> list[Path]:
        """The cgroup's directory in each hierarchy."""
        return [Path(d) for d in self._dirs]

    def dir_of(self, controller: str) -> Path | None:
        """The directory in the hierarchy holding ``controller``, None if not mounted."""
        for h, d in zip(self.hierarchies, self._dirs, strict=True):
            if controller in h.controllers or (self.version == "v2" and h.fstype == "cgroup2"):
                return Path(d)
        return None

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files to write a pid (or ``0`` = the writer) into."""
        return [d + "/cgroup.procs" for d in self._dirs]

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs)

    def create(self) -> None:
        """mkdir -p the cgroup in every hierarchy (idempotent)."""
        for h, d in zip(self.hierarchies, self._dirs, strict=True):
            try:
                os.mkdir(d, 0o755)
            except FileExistsError:
                pass
            except FileNotFoundError:
                self._mkdirs(h)
                continue
            self._init_dir(h, d)

    def _mkdirs(self, h: Hierarchy) -> None:
        """mkdir each missing level of the path, retrying when a concurrent ``destroy``
        prunes a parent between two steps."""
        for _attempt in range(3):
            cur = str(h.mount)
            try:
                for part in self._rel.split("/"):
                    cur = f"{cur}/{part}"
                    try:
                        os.mkdir(cur, 0o755)
                    except FileExistsError:
                        pass
                    self._init_dir(h, cur)
                return
            except FileNotFoundError:
                continue
        raise FailedPrecondition(f"create cgroup {h.mount}/{self._rel}: parent keeps vanishing")

    def _init_dir(self, h: Hierarchy, d: str) -> None:
        """Per-directory set-up after mkdir (v1 cpuset needs cpus and mems)."""

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the cgroup in every hierarchy."""
        for f in self.procs_files():
            _write(f, pid)

    def pids(self) -> list[int]:
        """Every pid in the cgroup (union over the hierarchies), sorted."""
        out: set[int] = set()
        for d in self._dirs:
            try:
                out.update(int(x) for x in _read(Path(d) / "cgroup.procs").split())
            except FileNotFoundError:
                continue
        return sorted(out)

    def apply(self, resources: Mapping[str, Any] | None) -> None:
        """Write ``linux.resources`` into the control files (see the module table)."""
        raise NotImplementedError

    def freeze(self, timeout: float = 5.0) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process in the cgroup. For SIGKILL the cgroup is frozen
        first so nothing forks out of the way, then thawed."""
        freeze = sig == signal.SIGKILL and self._can_freeze()
        if freeze:
            try:
                self.freeze()
            except OSError:
                freeze = False
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if freeze:
                self.thaw()

    def _can_freeze(self) -> bool:
        return False

    def destroy(self, timeout: float = 5.0, prune: bool = True) -> None:
        """rmdir the cgroup everywhere, waiting up to ``timeout`` for exiting processes
        to leave it; with ``prune`` also remove ancestors left empty (``/dockyard``).

        Raises FailedPrecondition when processes are still in it after ``timeout``."""
        deadline = time.monotonic() + timeout
        for h, dstr in zip(self.hierarchies, self._dirs, strict=True):
            d = Path(dstr)
            while True:
                try:
                    os.rmdir(dstr)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise FailedPrecondition(
                            f"remove cgroup {d}: {(exc.strerror or str(exc)).lower()}"
                        ) from exc
                    time.sleep(0.002)
            if prune:
                parent = d.parent
                while parent != h.mount and h.mount in parent.parents:
                    try:
                        os.rmdir(parent)
                    except OSError:
                        break
                    parent = parent.parent


class CgroupV1(Cgroup):
    """cgroup v1: one directory per hierarchy, the hybrid ``unified`` one included."""

    version = "v1"

    def _init_dir(self, h: Hierarchy, d: str) -> None:
        """A new cpuset cgroup has no cpus or mems (no process can join it): give it its
        parent's. An ancestor made a moment ago by another process may not have them yet
        either; then they come from the nearest ancestor that has them, for every empty
        level on the way."""
        if "cpuset" not in h.controllers:
            return
        root = str(h.mount)
        for name in ("cpuset.cpus", "cpuset.mems"):
            try:
                empty = []
                cur = d
                value = _read(f"{cur}/{name}").strip()
                while not value and len(cur) > len(root):
                    empty.append(cur)
                    cur = cur.rsplit("/", 1)[0]
                    value = _read(f"{cur}/{name}").strip()
                for level in reversed(empty):
                    if not _read(f"{level}/{name}").strip():
                        _write(f"{level}/{name}", value)
            except FileNotFoundError:
                continue

    def apply(self, resources: Mapping[str, Any] | None) -> None:
        r = resources or {}
        self._memory(r.get("memory") or {})
        cpu = r.get("cpu") or {}
        d = self.dir_of("cpu")
        if d is not None:
            if cpu.get("shares"):
                _write(d / "cpu.shares", cpu["shares"])
            if cpu.get("period"):
                _write(d / "cpu.cfs_period_us", cpu["period"])
            if cpu.get("quota"):
                _write(d / "cpu.cfs_quota_us", cpu["quota"])
        d = self.dir_of("cpuset")
        if d is not None:
            if cpu.get("cpus"):
                _write(d / "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                _write(d / "cpuset.mems", cpu["mems"])
        pids = r.get("pids") or {}
        d = self.dir_of("pids")
        if d is not None and "limit" in pids:
            _write(d / "pids.max", pids["limit"] if pids["limit"] > 0 else "max")
        d = self.dir_of("devices")
        if d is not None:
            allow, deny = f"{d}/devices.allow", f"{d}/devices.deny"
            for rule in r.get("devices") or []:
                _write(allow if rule.get("allow") else deny, device_rule(rule))
        weight = (r.get("blockIO") or {}).get("weight")
        d = self.dir_of("blkio")
        if d is not None and weight:
            _write(d / "blkio.weight", weight)

    def _memory(self, mem: Mapping[str, Any]) -> None:
        d = self.dir_of("memory")
        if d is None or not mem:
            return
        limit, swap = mem.get("limit"), mem.get("swap")
        memsw = d / "memory.memsw.limit_in_bytes"
        if limit is not None:
            try:
                _write(d / "memory.limit_in_bytes", limit)
            except OSError as exc:
                # a limit above the current memsw limit must wait for memsw to go up first
                if exc.errno != errno.EINVAL or swap is None or not memsw.exists():
                    raise
                _write(memsw, swap)
                _write(d / "memory.limit_in_bytes", limit)
        if swap is not None and memsw.exists():
            _write(memsw, swap)
        if mem.get("reservation") is not None:
            _write(d / "memory.soft_limit_in_bytes", mem["reservation"])
        if mem.get("swappiness") is not None and 0 <= mem["swappiness"] <= 100:
            _write(d / "memory.swappiness", mem["swappiness"])
        if mem.get("disableOOMKiller"):
            _write(d / "memory.oom_control", 1)

    def _can_freeze(self) -> bool:
        return self.dir_of("freezer") is not None

    def freeze(self, timeout: float = 5.0) -> None:
        d = self.dir_of("freezer")
        if d is None:
            raise FailedPrecondition(f"cgroup {self.path}: no freezer hierarchy")
        deadline = time.monotonic() + timeout
        while True:
            _write(d / "freezer.state", "FROZEN")
            if _read(d / "freezer.state").strip() == "FROZEN":
                return
            if time.monotonic() > deadline:
                raise FailedPrecondition(f"cgroup {self.path}: freezing timed out")
            time.sleep(0.001)

    def thaw(self) -> None:
        d = self.dir_of("freezer")
        if d is not None:
            _write(d / "freezer.state", "THAWED")

    def frozen(self) -> bool:
        d = self.dir_of("freezer")
        try:
            return d is not None and _read(d / "freezer.state").strip() == "FROZEN"
        except FileNotFoundError:
            return False


class CgroupV2(Cgroup):
    """cgroup v2: one directory; controllers enabled down the ancestors on create."""

    version = "v2"

    def create(self) -> None:
        h = self.hierarchies[0]
        available = (
            set(_read(h.mount / "cgroup.controllers").split())
            if (h.mount / "cgroup.controllers").exists()
            else set()
        )
        want = " ".join("+" + c for c in _V2_ENABLE if c in available)
        cur = h.mount
        for part in self._rel.split("/"):
            if want:
                try:
                    _write(cur / "cgroup.subtree_control", want)
                except FileNotFoundError:
                    pass
            cur = cur / part
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                pass

    def apply(self, resources: Mapping[str, Any] | None) -> None:
        r = resources or {}
        d = self.dirs()[0]
        mem = r.get("memory") or {}
        limit, swap = mem.get("limit"), mem.get("swap")
        if limit is not None:
            _write(d / "memory.max", limit if limit > 0 else "max")
        if swap is not None:
            if swap == -1:
                _write(d / "memory.swap.max", "max")
            elif limit is not None and limit > 0 and swap >= limit:
                _write(d / "memory.swap.max", swap - limit)
        if mem.get("reservation") is not None:
            _write(d / "memory.low", mem["reservation"])
        cpu = r.get("cpu") or {}
        if cpu.get("shares"):
            _write(d / "cpu.weight", shares_to_weight(cpu["shares"]))
        if cpu.get("quota") or cpu.get("period"):
            quota = cpu.get("quota") or 0
            _write(d / "cpu.max", f"{quota if quota > 0 else 'max'} {cpu.get('period') or 100000}")
        if cpu.get("cpus"):
            _write(d / "cpuset.cpus", cpu["cpus"])
        if cpu.get("mems"):
            _write(d / "cpuset.mems", cpu["mems"])
        pids = r.get("pids") or {}
        if "limit" in pids:
            _write(d / "pids.max", pids["limit"] if pids["limit"] > 0 else "max")
        for name, value in (r.get("unified") or {}).items():
            if "/" in name or name.startswith("."):
                raise InvalidArgument(f"invalid cgroup file name {name!r}")
            _write(d / name, value)

    def _can_freeze(self) -> bool:
        return (self.dirs()[0] / "cgroup.freeze").exists()

    def freeze(self, timeout: float = 5.0) -> None:
        d = self.dirs()[0]
        _write(d / "cgroup.freeze", 1)
        deadline = time.monotonic() + timeout
        while "frozen 1" not in _read(d / "cgroup.events"):
            if time.monotonic() > deadline:
                raise FailedPrecondition(f"cgroup {self.path}: freezing timed out")
            time.sleep(0.001)

    def thaw(self) -> None:
        _write(self.dirs()[0] / "cgroup.freeze", 0)

    def frozen(self) -> bool:
        try:
            return _read(self.dirs()[0] / "cgroup.freeze").strip() == "1"
        except FileNotFoundError:
            return False

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        kill_file = self.dirs()[0] / "cgroup.kill"
        if sig == signal.SIGKILL and kill_file.exists():
            _write(kill_file, 1)
            return
        super().kill_all(sig)


def device_rule(rule: Mapping[str, Any]) -> str:
    """An OCI device cgroup rule as a v1 devices.allow/deny line (``c 1:3 rwm``)."""
    kind = rule.get("type") or "a"
    major = rule.get("major")
    minor = rule.get("minor")
    maj = "*" if major is None or major < 0 else str(major)
    mnr = "*" if minor is None or minor < 0 else str(minor)
    return f"{kind} {maj}:{mnr} {rule.get('access') or 'rwm'}"


def open_cgroup(path: str, root: Path = DEFAULT_ROOT, mountinfo: str | None = None) -> Cgroup:
    """The cgroup ``path`` under ``root``, as v1 or v2 depending on what is mounted."""
    version, hs = discover(root, mountinfo)
    if not hs:
        raise FailedPrecondition(f"no cgroup filesystem mounted under {root}")
    return (CgroupV2 if version == "v2" else CgroupV1)(path, hs, root)


def procs_files_of_pid(pid: int, root: Path = DEFAULT_ROOT, proc_root: str = "/proc") -> list[str]:
    """The ``cgroup.procs`` files of every cgroup process ``pid`` is in (to join them)."""
    _version, hs = discover(root)
    with open(f"{proc_root}/{pid}/cgroup") as f:
        paths = parse_proc_cgroup(f.read())
    out = []
    for h in hs:
        p = paths.get(h.key)
        if p is not None:
            out.append(str(h.mount / p.lstrip("/") / "cgroup.procs"))
    return out


__all__ += ["device_rule", "procs_files_of_pid"]


def prune_spare_cgroups(parent: str, root: Path = DEFAULT_ROOT) -> list[str]:
    """Remove the empty ``spare-<pid>`` cgroups under ``parent`` (what a spare shim killed
    before it could clean up leaves; see ``shim.spare_cgroup``); the ones removed."""
    out = []
    try:
        _version, hs = discover(root)
        for h in hs:
            base = h.mount / parent.strip("/")
            for d in base.glob("spare-*") if base.is_dir() else ():
                try:
                    d.rmdir()
                    out.append(str(d))
                except OSError:
                    continue  # still in use, or gone
    except (OSError, DockyardError):
        pass
    return out


__all__ += ["prune_spare_cgroups"]


def warm_up(root: Path = DEFAULT_ROOT) -> None:
    """Move the calling process into the cgroup it is already in (a no-op move).

    Moving a process between cgroups takes a global lock whose first writer after a quiet
    spell waits for an RCU grace period (about 10 ms here); writers that follow shortly
    after are fast. A container start calls this in the background just before it spawns
    the shim, so the wait overlaps the rest of the start instead of delaying the init's
    move into its cgroup. Errors are ignored: this is only an optimisation."""
    try:
        _version, hs = discover(root)
        own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        for h in hs:
            rel = own.get(h.key)
            if rel is None:
                continue
            procs = h.mount / rel.lstrip("/") / "cgroup.procs"
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            return
    except (OSError, ValueError, DockyardError):
        pass
