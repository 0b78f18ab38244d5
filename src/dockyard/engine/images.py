"""The image half of the engine: what the image routes call (``ImageBackend``).

It adapts ``dockyard.image.ImageService`` (blocking, typed) to the daemon (async, docker's
JSON shapes): blocking work runs in worker threads, request bodies are streamed from the
event loop into the service, and the answers have the field names docker's API uses
(API 1.47 shapes; the routes add what older API versions expect).

The engine supplies ``containers_using(image_id) -> [container id]`` (containers created
from that image) and ``is_running(container_id) -> bool``; they decide ``rmi``'s conflicts
and the ``Containers`` count of the image list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, BinaryIO, cast

from dockyard.errors import InvalidArgument, Unsupported
from dockyard.image import timefmt
from dockyard.image.service import ContainerUse, Image, ImageService

__all__ = ["ImageBackend", "docker_container_config"]

#: the empty container config docker shows for an image (API < 1.50 keeps every field)
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}


def docker_container_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """An image config's ``config`` object in docker's inspect shape (defaults filled in,
    extra fields such as ExposedPorts, StopSignal, Healthcheck kept)."""
    out = dict(_CONFIG_DEFAULTS)
    for k, v in (config or {}).items():
        out[k] = v
    return out


class _BodyReader:
    """A blocking ``read(n)`` over an async iterable of byte chunks, for a worker thread.

    Each refill runs ``__anext__`` on the event loop and waits for it; the loop thread
    itself must never call ``read``.
    """

    def __init__(self, chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop,
                 timeout: float = 600.0) -> None:
        self._it: AsyncIterator[bytes] = chunks.__aiter__()
        self._loop = loop
        self._buf = b""
        self._eof = False
        self._timeout = timeout

    async def _next(self) -> bytes | None:
        try:
            return await self._it.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result(self._timeout)
            if chunk is None:
                self._eof = True
            else:
                self._buf += chunk
                if n < 0:
                    continue
                break
        if n < 0 or n >= len(self._buf):
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


class ImageBackend:
    """Implements ``dockyard.daemon.routes.images.ImagesBackend``."""

    def __init__(self, service: ImageService, containers_using: Callable[[str], list[str]],
                 is_running: Callable[[str], bool] | None = None) -> None:
        self.service = service
        self._containers_using = containers_using
        self._is_running = is_running or (lambda _cid: False)

    def _uses(self, image_id: str) -> list[ContainerUse]:
        return [ContainerUse(cid, bool(self._is_running(cid)))
                for cid in self._containers_using(image_id)]

    # -- create / import / pull ------------------------------------------------------------

    async def import_image(self, body: AsyncIterable[bytes], *, src: str = "-", repo: str = "",
                           tag: str = "", message: str = "", changes: Sequence[str] = (),
                           platform: str = "") -> str:
        """``POST /images/create?fromSrc=-``: returns the new image id."""
        loop = asyncio.get_running_loop()
        reader = cast(BinaryIO, _BodyReader(body, loop))
        return await asyncio.to_thread(
            lambda: self.service.import_image(
                reader, repo=repo, tag=tag, message=message, changes=list(changes), src=src,
                platform_os=platform))

    async def pull_image(self, image: str, tag: str = "", *, platform: str = "",
                         auth: str = "") -> AsyncIterator[dict[str, Any]]:
        """``POST /images/create?fromImage=``: progress messages (registry client: later)."""
        raise Unsupported("pulling images is not implemented yet in dockyard")
        yield {}  # pragma: no cover  (makes this an async generator)

    # -- queries -----------------------------------------------------------------------------

    def _summary(self, img: Image) -> dict[str, Any]:
        return {
            "Containers": len(self._containers_using(img.id)),
            "Created": img.created,
            "Id": img.id,
            "Labels": img.labels,
            "ParentId": img.parent,
            "RepoDigests": list(img.repo_digests),
            "RepoTags": list(img.repo_tags),
            "SharedSize": -1,
            "Size": img.size,
        }

    async def list_images(self, *, all: bool = False,
                          filters: Mapping[str, Sequence[str]] | None = None,
                          digests: bool = False) -> list[dict[str, Any]]:
        images = await asyncio.to_thread(self.service.list, all=all, filters=filters)
        return [self._summary(i) for i in images]

    def _inspect(self, name: str) -> dict[str, Any]:
        img = self.service.get(name)
        cfg = img.config
        created = str(cfg.get("created") or "")
        if created:
            try:
                created = timefmt.format_rfc3339nano(timefmt.parse_rfc3339(created))
            except ValueError:
                pass
        out: dict[str, Any] = {
            "Id": img.id,
            "RepoTags": list(img.repo_tags),
            "RepoDigests": list(img.repo_digests),
            "Parent": img.parent,
            "Comment": str(cfg.get("comment") or ""),
            "Created": created,
            "DockerVersion": str(cfg.get("docker_version") or ""),
            "Author": str(cfg.get("author") or ""),
            "Config": docker_container_config(cfg.get("config")),
            "Architecture": str(cfg.get("architecture") or ""),
            "Os": str(cfg.get("os") or ""),
            "Size": img.size,
            "GraphDriver": {"Data": self.service.graph_driver_data(img.id) or None,
                            "Name": self.service.driver_name},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": (timefmt.format_rfc3339nano(img.last_tag_time * 10**9)
                                         if img.last_tag_time else timefmt.ZERO_TIME)},
        }
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        if cfg.get("os.version"):
            out["OsVersion"] = cfg["os.version"]
        return out

    async def inspect_image(self, name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._inspect, name)

    def _history(self, name: str) -> list[dict[str, Any]]:
        return [{"Comment": h.comment, "Created": h.created, "CreatedBy": h.created_by,
                 "Id": h.id, "Size": h.size, "Tags": h.tags}
                for h in self.service.history(name)]

    async def image_history(self, name: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._history, name)

    # -- changes -----------------------------------------------------------------------------

    async def tag_image(self, name: str, repo: str, tag: str = "") -> str:
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        return await asyncio.to_thread(self.service.tag, name, repo, tag)

    async def remove_image(self, name: str, *, force: bool = False,
                           prune: bool = True) -> list[dict[str, str]]:
        if not name.strip():
            raise InvalidArgument("image name cannot be blank")
        records = await asyncio.to_thread(
            lambda: self.service.remove(name, force=force, prune=prune, containers=self._uses))
        return [r.to_json() for r in records]

    async def prune_images(
            self, filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        report = await asyncio.to_thread(
            lambda: self.service.prune(filters, containers=self._uses))
        return {"ImagesDeleted": [r.to_json() for r in report.deleted] or None,
                "SpaceReclaimed": report.space_reclaimed}
