"""A container's mounts from its HostConfig: ``-v /host:/ctr[:opts]`` (``Binds``),
``--mount`` (``Mounts``) and ``--tmpfs`` (``Tmpfs``), as OCI mount entries and as the
``Mounts`` docker shows in inspect and ps. Named volumes and port publishing need
subsystems dockyard does not have yet: they are refused with a clear message instead of
being ignored (``check_host_config``). Pure: no I/O except where a function says so."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["MountPoint", "check_host_config", "mount_points"]

_PROPAGATION = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}


@dataclass(frozen=True)
class MountPoint:
    type: str  # "bind" | "tmpfs"
    source: str
    destination: str
    rw: bool = True
    propagation: str = "rprivate"
    options: tuple[str, ...] = ()  # extra tmpfs options
    mode: str = ""  # the option text as given (docker's inspect "Mode")

    def oci(self) -> dict[str, Any]:
        if self.type == "tmpfs":
            opts = ["nosuid", "nodev", "noexec", *self.options]
            if not self.rw:
                opts.append("ro")
            return {"destination": self.destination, "type": "tmpfs", "source": "tmpfs",
                    "options": opts}
        return {"destination": self.destination, "type": "bind", "source": self.source,
                "options": ["rbind", self.propagation, "rw" if self.rw else "ro"]}

    def inspect(self) -> dict[str, Any]:
        return {"Type": self.type, "Source": self.source, "Destination": self.destination,
                "Mode": self.mode, "RW": self.rw,
                "Propagation": self.propagation if self.type == "bind" else ""}


def _absolute(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid mount config: {what} must be an absolute path: {path}")
    return os.path.normpath(path)


def _bind(spec: str) -> MountPoint:
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not src.startswith("/"):
        raise InvalidArgument(
            f"named volumes are not supported yet: '{src}' (bind-mount a host path instead)")
    rw, propagation = True, "rprivate"
    for opt in filter(None, mode.split(",")):
        if opt in ("ro", "rw"):
            rw = opt == "rw"
        elif opt in _PROPAGATION:
            propagation = opt
        elif opt not in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            raise InvalidArgument(f"invalid mode: {mode}")
    return MountPoint("bind", _absolute(src, "source"), _absolute(dst, "destination"), rw,
                      propagation, mode=mode)


def _from_mount(m: Any) -> MountPoint:
    if not isinstance(m, dict):
        raise InvalidArgument("invalid mount config: a mount must be an object")
    kind = m.get("Type") or ""
    target = _absolute(str(m.get("Target") or ""), "target")
    rw = not m.get("ReadOnly")
    if kind == "bind":
        src = _absolute(str(m.get("Source") or ""), "source")
        if not os.path.exists(src):
            raise InvalidArgument(f"invalid mount config for type \"bind\": "
                                  f"bind source path does not exist: {src}")
        prop = ((m.get("BindOptions") or {}).get("Propagation")) or "rprivate"
        return MountPoint("bind", src, target, rw, prop)
    if kind == "tmpfs":
        o = m.get("TmpfsOptions") or {}
        opts = []
        if o.get("SizeBytes"):
            opts.append(f"size={int(o['SizeBytes'])}")
        if o.get("Mode"):
            opts.append(f"mode={int(o['Mode']):o}")
        return MountPoint("tmpfs", "", target, rw, options=tuple(opts))
    if kind == "volume":
        raise InvalidArgument("named volumes are not supported yet (use a bind mount)")
    raise InvalidArgument(f"mount type not supported: {kind!r}")


def mount_points(hc: dict[str, Any]) -> list[MountPoint]:
    """Every mount the HostConfig asks for; InvalidArgument for a malformed or unsupported one."""
    out = [_bind(str(b)) for b in hc.get("Binds") or []]
    out += [_from_mount(m) for m in hc.get("Mounts") or []]
    for dst, opts in (hc.get("Tmpfs") or {}).items():
        extra = tuple(o for o in str(opts).split(",") if o and o not in ("rw", "ro"))
        out.append(MountPoint("tmpfs", "", _absolute(str(dst), "destination"),
                              "ro" not in str(opts).split(","), options=extra))
    seen: set[str] = set()
    for m in out:
        if m.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)
    return out


def check_host_config(hc: dict[str, Any]) -> None:
    """Refuse, with a clear message, what would otherwise silently do nothing."""
    mount_points(hc)
    published = any(b for b in (hc.get("PortBindings") or {}).values())
    if published or hc.get("PublishAllPorts"):
        raise InvalidArgument(
            "publishing ports is not supported yet: containers have their own network "
            "namespace with loopback only (use --network host to share the host's network)")
    mode = str(hc.get("NetworkMode") or "bridge")
    if mode not in ("bridge", "default", "none", "host") and not mode.startswith("container:"):
        # 400, not docker's 404: a 404 from create makes clients pull the image
        raise InvalidArgument(f"network {mode} not found (user-defined networks are not "
                              "supported yet)")
