"""The Engine: the one place that composes the subsystems (STYLE.md §2.2).

On-disk map (docs/architecture.md §4)::

    <data-root>/                    default /var/lib/dockyard
      dockyardd.lock                flock held by the live daemon (daemon/__main__.py)
      daemon-id                     stable id reported by /info
      state.db                      SQLite (store/schema.py)
      content/ snapshots/           image store (image/, content/, snapshot/)
      containers/<id>/              config.json (the OCI bundle spec), rootfs/ (mount point
                                    used inside the container's mount namespace), hostname,
                                    hosts, resolv.conf, <id>-json.log
    <exec-root>/                    default /run/dockyard
      shim/<id>/                    shim.sock, status.json, shim.log

Every dependency is built here from ``EngineConfig`` and passed in; nothing below reaches
for a global.
"""

from __future__ import annotations

import functools
import os

from dockyard.engine.config import EngineConfig
from dockyard.engine.containers import ContainerService
from dockyard.engine.images import ImageBackend
from dockyard.engine.spec import build_spec
from dockyard.engine.system import SystemInfo
from dockyard.image.service import ImageService
from dockyard.runtime.shimclient import Launcher
from dockyard.store.containers import ContainerRecords
from dockyard.store.db import Database
from dockyard.util.atomicfile import write_atomic

__all__ = ["Engine"]


def _daemon_id(cfg: EngineConfig) -> str:
    path = cfg.data_root / "daemon-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        ident = os.urandom(16).hex()
        write_atomic(path, ident)
        return ident


class Engine:
    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        cfg.data_root.mkdir(parents=True, exist_ok=True)
        cfg.exec_root.mkdir(parents=True, exist_ok=True)
        self.db = Database(cfg.db_path)
        self.image_service = ImageService(cfg.data_root, self.db)
        self.launcher = Launcher()
        self.containers = ContainerService(
            cfg, ContainerRecords(self.db), self.image_service, self.launcher,
            functools.partial(build_spec, cgroup_parent=cfg.cgroup_parent))
        self.images = ImageBackend(self.image_service, self._containers_using)
        self.system = SystemInfo(cfg, _daemon_id(cfg), self.containers.counts, self._image_count)

    def _containers_using(self, image_id: str) -> list[tuple[str, bool]]:
        return self.containers.containers_using(image_id)

    def _image_count(self) -> int:
        return len(self.image_service.list_images())

    async def start(self) -> None:
        await self.launcher.start()
        await self.containers.restore()

    async def close(self) -> None:
        await self.launcher.close()
        self.db.close()

    def __repr__(self) -> str:
        return f"Engine(data_root={str(self.cfg.data_root)!r})"
