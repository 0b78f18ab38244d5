"""The engine's configuration: every path is a parameter, so daemons and tests can run
side by side on temporary directories."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EngineConfig"]


@dataclass
class EngineConfig:
    data_root: Path = Path("/var/lib/dockyard")
    exec_root: Path = Path("/run/dockyard")
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    bip: str = ""  # default bridge address (network milestone)
    cgroup_parent: str = "/dockyard"  # containers' cgroups live under this path
    shim: str = ""  # "native" | "python" | "" (native when built, else python)

    @property
    def db_path(self) -> Path:
        return self.data_root / "state.db"

    @property
    def containers_dir(self) -> Path:
        return self.data_root / "containers"

    @property
    def shim_dir(self) -> Path:
        return self.exec_root / "shim"
