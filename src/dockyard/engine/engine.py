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
from typing import Any

from dockyard.distribution import Distribution
from dockyard.engine.config import EngineConfig
from dockyard.engine.containers import ContainerService
from dockyard.engine.execs import ExecService
from dockyard.engine.images import CommitSource, ImageBackend, docker_container_config
from dockyard.engine.spec import build_spec
from dockyard.engine.system import SystemInfo
from dockyard.errors import Conflict, NotFound
from dockyard.image.service import ImageService
from dockyard.oci.mount import Mount
from dockyard.runtime.cgroups import prune_spare_cgroups
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


class _ContainerImages:
    """The image service as containers see it (engine.containers.ContainerImages)."""

    def __init__(self, svc: ImageService, containers_dir: Any) -> None:
        self.svc = svc
        self.containers_dir = containers_dir

    def resolve_image(self, ref: str) -> tuple[str, dict[str, Any]]:
        img = self.svc.get(ref)
        return img.id, docker_container_config(img.config.get("config"))

    def image_name_for(self, as_typed: str, image_id: str) -> str:
        try:
            return as_typed if as_typed and self.svc.resolve(as_typed) == image_id else image_id
        except NotFound:
            return image_id

    def prepare_rootfs(self, image_id: str, key: str) -> list[Mount]:
        return self.svc.prepare_rootfs(image_id, key)

    def rootfs_mounts(self, key: str) -> list[Mount]:
        return self.svc.rootfs_mounts(key)

    def remove_rootfs(self, key: str) -> None:
        self.svc.remove_rootfs(key)

    def rootfs_usage(self, key: str) -> tuple[int, int]:
        return self.svc.rootfs_usage(key)

    def graph_driver(self, key: str) -> dict[str, Any]:
        data: dict[str, str] = {}
        for m in self.svc.rootfs_mounts(key):
            if m.type != "overlay":
                continue
            for opt in m.options:
                k, _, v = opt.partition("=")
                if k == "lowerdir":
                    data["LowerDir"] = v
                elif k == "upperdir":
                    data["UpperDir"] = v
                elif k == "workdir":
                    data["WorkDir"] = v
            data["MergedDir"] = str(self.containers_dir / key / "rootfs")
        return {"Name": self.svc.driver_name, "Data": data or None}


class Engine:
    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        cfg.data_root.mkdir(parents=True, exist_ok=True)
        cfg.exec_root.mkdir(parents=True, exist_ok=True)
        self.db = Database(cfg.db_path)
        self.image_service = ImageService.open(cfg.data_root, self.db)
        staging = cfg.exec_root / "staging"  # an empty directory for spare inits (launcher)
        staging.mkdir(exist_ok=True)
        self.launcher = Launcher(shim=cfg.shim or None, cgroup_parent=cfg.cgroup_parent,
                                 staging=str(staging))
        self.containers = ContainerService(
            cfg,
            ContainerRecords(self.db),
            _ContainerImages(self.image_service, cfg.containers_dir),
            self.launcher,
            functools.partial(build_spec, cgroup_parent=cfg.cgroup_parent, netns_of=self._netns_of),
        )
        self.execs = ExecService(self.containers)
        self.containers.on_remove.append(self.execs.forget_container)
        self.images = ImageBackend(  # issue 3: registry client, commit source, spool dir
            self.image_service,
            self._containers_using,
            self._is_running,
            distribution=Distribution(
                mirrors=cfg.registry_mirrors, insecure=cfg.insecure_registries
            ),
            commit_source=self._commit_source,
            tmp_dir=cfg.data_root / "tmp",
        )
        self.system = SystemInfo(cfg, _daemon_id(cfg), self.containers.counts, self._image_count)

    def _containers_using(self, image_id: str) -> list[str]:
        return [cid for cid, _ in self.containers.containers_using(image_id)]

    def _netns_of(self, ref: str) -> str:
        """The network namespace of running container ``ref`` (``--network container:ref``)."""
        c = self.containers.get(ref)
        pid = int(c.state.get("Pid") or 0)
        if not c.status.is_running() or not pid:
            raise Conflict(f"cannot join network of a non running container: {ref}")
        return f"/proc/{pid}/ns/net"

    def _is_running(self, container_id: str) -> bool:
        c = self.containers.by_id.get(container_id)
        return c is not None and c.status.is_running()

    def _commit_source(self, ref: str) -> CommitSource:  # issue 3: what commit needs
        c = self.containers.get(ref)
        return CommitSource(c.id, c.config, c.image_id, c.status.is_running(), c.name)

    def _image_count(self) -> int:
        return self.image_service.count()

    async def start(self) -> None:
        prune_spare_cgroups(self.cfg.cgroup_parent)  # a spare shim killed outright leaves its own
        await self.launcher.start()
        await self.containers.restore()
        # a container rootfs whose container is gone (a crash between the two removals)
        for key in self.image_service.rootfs_keys():
            if key not in self.containers.by_id:
                self.image_service.remove_rootfs(key)

    async def close(self) -> None:
        await self.images.close()  # issue 3: the registry client's HTTP session
        await self.launcher.close()
        self.db.close()

    def __repr__(self) -> str:
        return f"Engine(data_root={str(self.cfg.data_root)!r})"
