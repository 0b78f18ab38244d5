"""The OCI runtime config (``config.json``) as the engine writes it and the runtime reads it.

``default_spec(...)`` builds the dict that docker's daemon would hand to runc for
``docker run``: Docker's default capabilities (with ``noNewPrivileges``), mounts,
masked and read-only paths, namespaces (mount, uts, ipc, pid, network, cgroup), the device
cgroup rules, rlimits and ``linux.cgroupsPath``. The spec stays a plain dict (it is JSON on
disk and the runtime reads fields it does not model); ``validate_spec`` checks the fields
the runtime relies on and raises ``InvalidArgument`` naming the field.

Vocabulary: a *spec* is the whole config dict, a *process* its ``process`` object (also
the ``exec --process`` file), a *bundle* the directory holding ``config.json``.

The annotation ``org.dockyard.user`` carries docker's ``--user`` string (``name``, ``uid``,
``name:group``, ``uid:gid``); the runtime resolves it in the container's ``/etc/passwd``
and ``/etc/group`` after pivot_root, as docker does, and it then takes precedence over
``process.user.uid/gid``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICE_RULES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_MOUNTS",
    "DEFAULT_NAMESPACES",
    "DEFAULT_PATH",
    "DEFAULT_READONLY_PATHS",
    "DEFAULT_RLIMITS",
    "NAMESPACE_TYPES",
    "OCI_VERSION",
    "USER_ANNOTATION",
    "default_process",
    "default_spec",
    "load_spec",
    "merge_env",
    "spec_namespaces",
    "validate_process",
    "validate_spec",
]

OCI_VERSION = "1.2.0"
USER_ANNOTATION = "org.dockyard.user"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: docker's default capability set (moby ``oci/caps/defaults.go``)
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

DEFAULT_NAMESPACES: tuple[str, ...] = ("pid", "network", "ipc", "uts", "mount", "cgroup")
NAMESPACE_TYPES = frozenset({"pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"})

DEFAULT_MOUNTS: tuple[dict[str, Any], ...] = (
    {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["ro", "nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
)

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _dev(
    allow: bool, major: int | None = None, minor: int | None = None, kind: str | None = "c"
) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow, "type": "a", "access": "rwm"}
    if major is not None:
        rule.update(type=kind, major=major)
    if minor is not None:
        rule["minor"] = minor  # omitted = every minor (the spec's wildcard)
    return rule


#: docker's device cgroup rules: deny all, then the default devices and ptys
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    _dev(False),
    _dev(True, 1, 3),
    _dev(True, 1, 5),
    _dev(True, 1, 7),
    _dev(True, 1, 8),
    _dev(True, 1, 9),
    _dev(True, 5, 0),
    _dev(True, 5, 1),
    _dev(True, 5, 2),
    _dev(True, 136),
    _dev(False, 10, 229),
)

#: docker sets no rlimits unless asked (``--ulimit``, daemon ``default-ulimits``): the
#: container inherits the shim's limits
DEFAULT_RLIMITS: tuple[dict[str, Any], ...] = ()


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def merge_env(base: Iterable[str], overrides: Iterable[str]) -> list[str]:
    """``base`` with each ``KEY=value`` of ``overrides`` replacing the same key or appended
    (docker's ``ReplaceOrAppendEnvValues``); order of first appearance is kept."""
    out: list[str] = []
    index: dict[str, int] = {}
    for item in [*base, *overrides]:
        key = item.split("=", 1)[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def default_process(
    args: Sequence[str],
    *,
    env: Iterable[str] = (),
    cwd: str = "/",
    terminal: bool = False,
    console_size: tuple[int, int] | None = None,
    uid: int = 0,
    gid: int = 0,
    additional_gids: Sequence[int] = (),
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    no_new_privileges: bool = True,
    rlimits: Sequence[Mapping[str, Any]] = DEFAULT_RLIMITS,
    hostname: str = "",
    oom_score_adj: int | None = None,
    umask: int | None = None,
) -> dict[str, Any]:
    """An OCI ``process`` object the way docker builds it (``console_size`` = (rows, cols)).

    The environment is docker's: ``PATH`` (default), ``HOSTNAME`` and ``TERM=xterm`` (with a
    terminal) first, then ``env`` replacing or appending."""
    base = [f"PATH={DEFAULT_PATH}"]
    if hostname:
        base.append(f"HOSTNAME={hostname}")
    if terminal:
        base.append("TERM=xterm")
    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if additional_gids:
        user["additionalGids"] = list(additional_gids)
    if umask is not None:
        user["umask"] = umask
    caps = list(capabilities)
    process: dict[str, Any] = {
        "terminal": terminal,
        "user": user,
        "args": list(args),
        "env": merge_env(base, env),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "rlimits": [dict(r) for r in rlimits],
        "noNewPrivileges": no_new_privileges,
    }
    if console_size is not None:
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    if oom_score_adj is not None:
        process["oomScoreAdj"] = oom_score_adj
    return process


def default_spec(
    args: Sequence[str],
    *,
    env: Iterable[str] = (),
    cwd: str = "/",
    hostname: str = "",
    domainname: str = "",
    terminal: bool = False,
    console_size: tuple[int, int] | None = None,
    uid: int = 0,
    gid: int = 0,
    additional_gids: Sequence[int] = (),
    user: str | None = "",
    root_path: str = "rootfs",
    readonly_rootfs: bool = False,
    namespaces: Iterable[str] | Mapping[str, str | None] = DEFAULT_NAMESPACES,
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    no_new_privileges: bool = True,
    rlimits: Sequence[Mapping[str, Any]] = DEFAULT_RLIMITS,
    mounts: Sequence[Mapping[str, Any]] = (),
    masked_paths: Sequence[str] = DEFAULT_MASKED_PATHS,
    readonly_paths: Sequence[str] = DEFAULT_READONLY_PATHS,
    resources: Mapping[str, Any] | None = None,
    cgroups_path: str | None = None,
    annotations: Mapping[str, str] | None = None,
    oom_score_adj: int | None = None,
    sysctl: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A docker-like ``config.json`` dict for running ``args``.

    ``user`` is docker's ``--user`` string (``""`` = docker's default, root with the
    supplementary groups /etc/group gives it); it goes into the ``org.dockyard.user``
    annotation and is resolved inside the container. ``user=None`` leaves the annotation
    out: then ``uid``/``gid``/``additional_gids`` are used as they are (runc's behaviour).
    ``namespaces`` is a list of types to create, or a mapping type → path (``None`` =
    create, a path = join with setns).
    ``mounts`` are appended after docker's default mounts (a mount with the same
    destination replaces the default one, as docker's volumes do). ``resources`` is merged
    over the default device rules (``linux.resources``)."""
    ns_items = (
        namespaces.items() if isinstance(namespaces, Mapping) else ((t, None) for t in namespaces)
    )
    ns_list = [{"type": t, "path": p} if p else {"type": t} for t, p in ns_items]
    extra_dests = {m["destination"] for m in mounts}
    all_mounts = [_copy(m) for m in DEFAULT_MOUNTS if m["destination"] not in extra_dests]
    all_mounts += [_copy(m) for m in mounts]
    res: dict[str, Any] = {"devices": [dict(r) for r in DEFAULT_DEVICE_RULES]}
    res.update(_copy(resources or {}))
    linux: dict[str, Any] = {
        "namespaces": ns_list,
        "resources": res,
        "maskedPaths": list(masked_paths),
        "readonlyPaths": list(readonly_paths),
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    if sysctl:
        linux["sysctl"] = dict(sysctl)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": default_process(
            args,
            env=env,
            cwd=cwd,
            terminal=terminal,
            console_size=console_size,
            uid=uid,
            gid=gid,
            additional_gids=additional_gids,
            capabilities=capabilities,
            no_new_privileges=no_new_privileges,
            rlimits=rlimits,
            hostname=hostname,
            oom_score_adj=oom_score_adj,
        ),
        "root": {"path": root_path, "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": all_mounts,
        "linux": linux,
    }
    if domainname:
        spec["domainname"] = domainname
    ann = dict(annotations or {})
    if user is not None:
        ann[USER_ANNOTATION] = user
    if ann:
        spec["annotations"] = ann
    return spec


_VERSION_RE = re.compile(r"^1\.[0-2]\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_RLIMIT_RE = re.compile(r"^RLIMIT_[A-Z]+$")


def _need(cond: bool, field: str, why: str) -> None:
    if not cond:
        raise InvalidArgument(f"invalid runtime spec: {field}: {why}")


def validate_process(process: Any, field: str = "process") -> None:
    """Check an OCI ``process`` object; raise InvalidArgument naming the bad field."""
    _need(isinstance(process, dict), field, "must be an object")
    args = process.get("args")
    _need(
        isinstance(args, list) and len(args) > 0 and all(isinstance(a, str) for a in args),
        f"{field}.args",
        "must be a non-empty list of strings",
    )
    cwd = process.get("cwd", "/")
    _need(isinstance(cwd, str) and cwd.startswith("/"), f"{field}.cwd", "must be an absolute path")
    env = process.get("env", [])
    _need(
        isinstance(env, list) and all(isinstance(e, str) for e in env),
        f"{field}.env",
        "must be a list of strings",
    )
    user = process.get("user", {})
    _need(isinstance(user, dict), f"{field}.user", "must be an object")
    for key in ("uid", "gid"):
        _need(
            isinstance(user.get(key, 0), int) and user.get(key, 0) >= 0,
            f"{field}.user.{key}",
            "must be a non-negative integer",
        )
    gids = user.get("additionalGids") or []
    _need(
        isinstance(gids, list) and all(isinstance(g, int) and g >= 0 for g in gids),
        f"{field}.user.additionalGids",
        "must be a list of non-negative integers",
    )
    for i, rl in enumerate(process.get("rlimits") or []):
        _need(
            isinstance(rl, dict)
            and isinstance(rl.get("type"), str)
            and bool(_RLIMIT_RE.match(rl["type"])),
            f"{field}.rlimits[{i}].type",
            "must be RLIMIT_*",
        )
        for key in ("soft", "hard"):
            _need(
                isinstance(rl.get(key), int) and rl[key] >= 0,
                f"{field}.rlimits[{i}].{key}",
                "must be a non-negative integer",
            )
    caps = process.get("capabilities") or {}
    _need(isinstance(caps, dict), f"{field}.capabilities", "must be an object")
    for kind, names in caps.items():
        _need(
            isinstance(names, list) and all(isinstance(n, str) for n in names),
            f"{field}.capabilities.{kind}",
            "must be a list of names",
        )
    size = process.get("consoleSize")
    if size is not None:
        _need(
            isinstance(size, dict)
            and all(isinstance(size.get(k, 0), int) for k in ("height", "width")),
            f"{field}.consoleSize",
            "must have integer height and width",
        )


def validate_spec(spec: Any) -> None:
    """Check the fields of a config dict the runtime relies on; raise InvalidArgument
    (``invalid runtime spec: <field>: <why>``) on the first bad one."""
    _need(isinstance(spec, dict), "config", "must be an object")
    version = spec.get("ociVersion")
    _need(
        isinstance(version, str) and bool(_VERSION_RE.match(version)),
        "ociVersion",
        f"unsupported version {version!r} (want 1.0.x-1.2.x)",
    )
    root = spec.get("root")
    _need(
        isinstance(root, dict) and isinstance(root.get("path"), str) and bool(root["path"]),
        "root.path",
        "is required",
    )
    validate_process(spec.get("process"))
    for i, m in enumerate(spec.get("mounts") or []):
        _need(
            isinstance(m, dict)
            and isinstance(m.get("destination"), str)
            and m["destination"].startswith("/"),
            f"mounts[{i}].destination",
            "must be an absolute path",
        )
        _need(isinstance(m.get("options", []), list), f"mounts[{i}].options", "must be a list")
    linux = spec.get("linux") or {}
    _need(isinstance(linux, dict), "linux", "must be an object")
    seen: set[str] = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        t = ns.get("type") if isinstance(ns, dict) else None
        _need(t in NAMESPACE_TYPES, f"linux.namespaces[{i}].type", f"unknown type {t!r}")
        _need(t not in seen, f"linux.namespaces[{i}].type", f"duplicate type {t!r}")
        seen.add(str(t))
    cg = linux.get("cgroupsPath")
    _need(cg is None or isinstance(cg, str), "linux.cgroupsPath", "must be a string")
    for key in ("maskedPaths", "readonlyPaths"):
        paths = linux.get(key) or []
        _need(
            isinstance(paths, list)
            and all(isinstance(p, str) and p.startswith("/") for p in paths),
            f"linux.{key}",
            "must be a list of absolute paths",
        )


def load_spec(bundle: str | Path) -> dict[str, Any]:
    """Read and validate ``<bundle>/config.json``.

    Raises InvalidArgument when the file is missing, not JSON, or fails ``validate_spec``."""
    path = Path(bundle) / "config.json"
    try:
        spec = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise InvalidArgument(f"open {path}: no such file or directory") from exc
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"read {path}: {exc}") from exc
    validate_spec(spec)
    return spec  # type: ignore[no-any-return]


def spec_namespaces(spec: Mapping[str, Any]) -> dict[str, str | None]:
    """``linux.namespaces`` as type → path (None = create a new one)."""
    out: dict[str, str | None] = {}
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        out[ns["type"]] = ns.get("path") or None
    return out
