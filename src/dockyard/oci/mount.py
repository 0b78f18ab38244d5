"""A mount as plain data, shared by the snapshotter (which returns mounts), the image
unpacker and differ (which mount them briefly) and the runtime (which mounts a container's
rootfs inside the container's own mount namespace).

This is the OCI runtime-spec ``mounts[]`` entry and containerd's ``mount.Mount``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mount"]


@dataclass(frozen=True)
class Mount:
    type: str  # "overlay", "bind", "tmpfs", "proc", ...
    source: str  # "overlay", a host path for binds, "tmpfs", ...
    options: tuple[str, ...] = field(default_factory=tuple)
    destination: str = ""  # empty when the caller chooses the target (rootfs mounts)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }
        if self.destination:
            d["destination"] = self.destination
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Mount":
        return cls(
            type=str(d.get("type", "")),
            source=str(d.get("source", "")),
            options=tuple(str(o) for o in d.get("options") or ()),
            destination=str(d.get("destination", "")),
        )
