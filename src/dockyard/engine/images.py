"""The image half of the engine: what the image routes call (``ImageBackend``).

It adapts ``dockyard.image.ImageService`` (blocking, typed) to the daemon (async, docker's
JSON shapes): blocking work runs in worker threads, request bodies are streamed from the
event loop into the service, and the answers have the field names docker's API uses
(API 1.47 shapes; the routes add what older API versions expect).

The registry side goes through one ``dockyard.distribution.Distribution`` per daemon
(``--registry-mirror``, ``--insecure-registry``):

* pull: the manifest, config and layers go into the content store (every blob leased
  until the image row exists); each layer is unpacked as soon as it and the ones below it
  are in (``on_layer``), while later layers still download; then the image is recorded
  with its exact config bytes, its tag and ``name@digest``.
* push: the recorded manifest (a pulled image's, or the one built at the first push of a
  local image, plain layers gzipped) is sent, mounting blobs from repositories known to
  hold them; ``name@digest`` is recorded afterwards.
* progress: the registry client's messages, plus ``Extracting``/``Pull complete`` and the
  final ``Status:`` line, flow through a queue to the route as docker's JSON messages. An
  error before the first message (bad reference, unknown manifest, no such local image)
  is raised to the route (an HTTP error); one after it ends the stream in-band.

The engine supplies ``containers_using(image_id) -> [container id]`` (containers created
from that image) and ``is_running(container_id) -> bool``; they decide ``rmi``'s conflicts
and the ``Containers`` count of the image list. For ``commit`` it supplies
``commit_source(name) -> CommitSource`` (NotFound ``No such container: x``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from dockyard.distribution import Distribution, PulledLayer, decode_registry_auth, login
from dockyard.distribution.progress import layer_progress, layer_status, short_id, status
from dockyard.engine.model import merge_config
from dockyard.errors import InvalidArgument, NotFound, Unsupported
from dockyard.image import timefmt
from dockyard.image.archive import load_archive, resolve_for_save, write_archive
from dockyard.image.changes import apply_changes
from dockyard.image.commit import commit_container
from dockyard.image.service import ContainerUse, Image, ImageService
from dockyard.image.transfer import LeasingStore, prepare_push, record_pull, record_push
from dockyard.image.unpack import LayerSource, UnpackedLayer
from dockyard.oci.digest import is_digest
from dockyard.oci.reference import Reference, is_valid_tag, parse_normalized

__all__ = ["CommitSource", "ImageBackend", "docker_container_config"]

Event = dict[str, Any]
Emit = Callable[[Event], None]

#: the empty container config docker shows for an image (API < 1.50 keeps every field)
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}
_PROGRESS_INTERVAL = 0.1
_SAVE_CHUNK = 1 << 20


def docker_container_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """An image config's ``config`` object in docker's inspect shape (defaults filled in,
    extra fields such as ExposedPorts, StopSignal, Healthcheck kept)."""
    out = dict(_CONFIG_DEFAULTS)
    for k, v in (config or {}).items():
        out[k] = v
    return out


@dataclass(frozen=True)
class CommitSource:
    """A container as ``commit`` sees it."""

    id: str                       # 64 hex; also the key of its rootfs snapshot
    config: dict[str, Any]        # the container's merged Config
    image_id: str                 # sha256:...
    running: bool
    name: str = ""


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


class _Closed(Exception):
    """The reader of a ``_ThreadPipe`` went away."""


class _ThreadPipe:
    """Bytes written by a worker thread, read as an async iterator on the loop (bounded)."""

    _END = object()

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = 8) -> None:
        self._loop = loop
        self._q: asyncio.Queue[object] = asyncio.Queue(depth)
        self._buf = bytearray()
        self._closed = False

    def _put(self, item: object) -> None:
        if self._closed:
            raise _Closed()
        fut = asyncio.run_coroutine_threadsafe(self._q.put(item), self._loop)
        while True:
            try:
                fut.result(0.5)
                return
            except TimeoutError:
                if self._closed:
                    fut.cancel()
                    raise _Closed() from None

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= _SAVE_CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            self._put(chunk)

    def finish(self, exc: BaseException | None) -> None:
        try:
            if exc is None:
                self.flush()
            self._put(exc if exc is not None else self._END)
        except _Closed:
            pass

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self._q.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield cast(bytes, item)
        finally:
            self._closed = True


class _Throttle:
    """``Extracting`` events from a worker thread, at most every 0.1 s (and the last)."""

    def __init__(self, emit: Emit, loop: asyncio.AbstractEventLoop, lid: str,
                 total: int) -> None:
        self.emit, self.loop, self.lid, self.total = emit, loop, lid, total
        self.last = time.monotonic()      # no event for the first bytes (the sniffed head)

    def __call__(self, current: int) -> None:
        now = time.monotonic()
        if now - self.last >= _PROGRESS_INTERVAL or (self.total and current >= self.total):
            self.last = now
            self.loop.call_soon_threadsafe(
                self.emit, layer_progress("Extracting", self.lid, current, self.total))


async def _stream(work: Callable[[Emit], Awaitable[None]]) -> AsyncIterator[Event]:
    """Run ``work(emit)`` and yield what it emits; its exception is raised after the
    messages emitted before it."""
    q: asyncio.Queue[object] = asyncio.Queue()
    done = object()

    async def run() -> None:
        try:
            await work(q.put_nowait)
        finally:
            q.put_nowait(done)

    task = asyncio.ensure_future(run())
    try:
        while True:
            ev = await q.get()
            if ev is done:
                break
            yield cast(Event, ev)
        await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _pull_reference(image: str, tag: str) -> Reference:
    """moby's ``fromImage`` + ``tag``: the tag may be a digest; no tag at all (and none
    in ``fromImage``) means every tag of the repository."""
    ref = parse_normalized(image)
    if tag:
        if is_digest(tag):
            return Reference(ref.domain, ref.path, "", tag)
        if not is_valid_tag(tag):
            raise InvalidArgument(f"invalid tag format: {tag!r}")
        return Reference(ref.domain, ref.path, tag, "")
    return ref


def _platform(spec: str) -> str:
    if not spec:
        return ""
    if spec.startswith("{"):
        import json

        try:
            doc = json.loads(spec)
        except ValueError:
            raise InvalidArgument(f"invalid platform: {spec!r}") from None
        parts = [str(doc.get(k) or "") for k in ("os", "architecture", "variant")]
        spec = "/".join(p for p in parts if p)
    osname = spec.split("/")[0].lower()
    if osname != "linux":
        raise InvalidArgument(f'"{spec}": operating system is not supported')
    return spec


def _comment(cfg: Mapping[str, Any]) -> str:
    """Inspect's Comment: the config's, else the last history entry's (as moby)."""
    c = str(cfg.get("comment") or "")
    hist = cfg.get("history") or []
    if not c and hist and isinstance(hist[-1], dict):
        c = str(hist[-1].get("comment") or "")
    return c


class ImageBackend:
    """Implements ``dockyard.daemon.routes.images.ImagesBackend`` and the auth routes'
    ``AuthBackend``."""

    def __init__(self, service: ImageService, containers_using: Callable[[str], list[str]],
                 is_running: Callable[[str], bool] | None = None, *,
                 distribution: Distribution | None = None,
                 commit_source: Callable[[str], CommitSource] | None = None,
                 tmp_dir: str | Path | None = None) -> None:
        self.service = service
        self._containers_using = containers_using
        self._is_running = is_running or (lambda _cid: False)
        self.distribution = distribution if distribution is not None else Distribution()
        self._commit_source = commit_source
        self._tmp_dir = str(tmp_dir) if tmp_dir is not None else None
        if self._tmp_dir:
            Path(self._tmp_dir).mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        await self.distribution.close()

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
                         auth: str = "") -> AsyncIterator[Event]:
        """``POST /images/create?fromImage=``: docker's pull, as progress messages."""
        ref = _pull_reference(image, tag)
        auth_cfg = decode_registry_auth(auth)
        plat = _platform(platform)

        async def work(emit: Emit) -> None:
            if ref.tag or ref.digest:
                updated = await self._pull_one(ref, auth_cfg, plat, emit)
                shown = ref.familiar()
            else:
                tags = await self.distribution.list_tags(ref, auth=auth_cfg)
                updated = False
                for t in tags:
                    one = Reference(ref.domain, ref.path, t, "")
                    updated = await self._pull_one(one, auth_cfg, plat, emit) or updated
                shown = ref.familiar_name
            what = "Downloaded newer image" if updated else "Image is up to date"
            emit(status(f"Status: {what} for {shown}"))

        async for ev in _stream(work):
            yield ev

    async def _pull_one(self, ref: Reference, auth: Mapping[str, Any], platform: str,
                        emit: Emit) -> bool:
        """One tag or digest; True if the name now points at an image it did not before."""
        loop = asyncio.get_running_loop()
        with ExitStack() as stack:
            store = LeasingStore(self.service.content, self.service.leases, stack)
            unpack_hold = stack.enter_context(ExitStack())
            parent = [""]
            unpacked: list[UnpackedLayer] = []

            async def on_layer(layer: PulledLayer) -> None:
                d = layer.descriptor
                lid = short_id(d.digest)
                progress = _Throttle(emit, loop, lid, d.size)
                src = LayerSource(d.digest, d.media_type, layer.diff_id)
                below = parent[0]
                u = await asyncio.to_thread(
                    self.service.unpacker.unpack_layer, src, below, unpack_hold,
                    None if layer.existed else progress)
                if not layer.existed:
                    emit(layer_status("Pull complete", lid))
                parent[0] = u.chain_id
                unpacked.append(u)

            res = await self.distribution.pull(ref, store=store, platform=platform or
                                               "linux/amd64", progress=emit, auth=auth,
                                               on_layer=on_layer)
            cfg = res.config_json
            diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
            if len(diff_ids) != len(res.layers):
                raise InvalidArgument(f"{ref.familiar()}: the config has {len(diff_ids)} diff "
                                      f"ids for {len(res.layers)} layers")
            if platform and not res.index:
                want = platform.split("/")
                have = [str(cfg.get("os") or ""), str(cfg.get("architecture") or ""),
                        str(cfg.get("variant") or "")]
                if want[:2] != have[:2] or (len(want) > 2 and want[2] != have[2]):
                    got = "/".join(x for x in have if x)
                    raise NotFound(f"image with reference {ref.familiar()} was found but does "
                                   f"not match the specified platform: wanted {platform}, "
                                   f"actual: {got}")
            image_id, before = await asyncio.to_thread(
                record_pull, self.service, ref=ref, digest=res.digest, config=res.config,
                manifest_digest=res.manifest_digest, manifest_media_type=res.media_type,
                manifest_size=len(res.manifest), layers=[x.descriptor for x in res.layers],
                unpacked=unpacked, extra_blobs=[res.index_digest] if res.index_digest else [])
        return before != image_id

    # -- push -----------------------------------------------------------------------------

    async def push_image(self, name: str, tag: str = "", *, auth: str = "",
                         platform: str = "") -> AsyncIterator[Event]:
        """``POST /images/{name}/push?tag=``: docker's push (every tag of the repository
        when ``tag`` is empty), as progress messages."""
        ref = parse_normalized(name)
        if tag:
            if is_digest(tag):
                raise InvalidArgument("cannot push a digest reference")
            if not is_valid_tag(tag):
                raise InvalidArgument(f"invalid tag format: {tag!r}")
            ref = Reference(ref.domain, ref.path, tag, "")
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        auth_cfg = decode_registry_auth(auth)
        refs = [ref] if ref.tag else await asyncio.to_thread(
            self.service.tags_of_repository, ref.name)
        if not refs or (ref.tag and not await asyncio.to_thread(self.service.exists,
                                                               ref.repo_and_tag)):
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")

        async def work(emit: Emit) -> None:
            seen: set[str] = set()

            def once(ev: Event) -> None:
                st = ev.get("status", "")
                if isinstance(st, str) and st.startswith("The push refers to repository"):
                    if st in seen:
                        return
                    seen.add(st)
                emit(ev)

            for r in refs:
                with ExitStack() as stack:
                    src = await asyncio.to_thread(prepare_push, self.service, r.repo_and_tag,
                                                  stack)
                    res = await self.distribution.push(
                        r, store=self.service.content, manifest=src.manifest,
                        manifest_media_type=src.media_type, progress=once, auth=auth_cfg,
                        mount_from=src.blob_sources)
                    await asyncio.to_thread(record_push, self.service, src.image_id, r,
                                            res.digest)

        async for ev in _stream(work):
            yield ev

    # -- login ----------------------------------------------------------------------------

    async def login(self, config: Mapping[str, Any]) -> dict[str, str]:
        """``POST /auth``: check the credentials against the registry's challenge."""
        low = {str(k).lower(): v for k, v in config.items()}
        user = str(low.get("username") or "")
        password = str(low.get("password") or "")
        token = str(low.get("identitytoken") or "")
        server = str(low.get("serveraddress") or "")
        return await login(server, user, password, http=self.distribution.transport,
                           hosts=self.distribution.hosts, identity_token=token)

    # -- commit ---------------------------------------------------------------------------

    async def commit(self, container: str, *, repo: str = "", tag: str = "",
                     comment: str = "", author: str = "", changes: Sequence[str] = (),
                     pause: bool = True, config: Mapping[str, Any] | None = None) -> str:
        """``POST /commit``: a new image from the container's changes; returns its id.

        The container is not paused (this engine has no freezer yet): a running
        container is committed as its files are at that moment."""
        if self._commit_source is None:
            raise Unsupported("commit is not available in this engine")
        src = self._commit_source(container)
        ref = ImageService._repo_tag(repo, tag) if repo else None
        base = copy.deepcopy(dict(config)) if config else copy.deepcopy(src.config)
        new = apply_changes(base, list(changes))
        merged = merge_config(new, src.config)
        created_by = " ".join(str(x) for x in src.config.get("Cmd") or [])
        return await asyncio.to_thread(
            commit_container, self.service, src.id, src.image_id, merged, comment=comment,
            author=author, created_by=created_by, ref=ref)

    # -- save / load ----------------------------------------------------------------------

    async def save_images(self, names: Sequence[str],
                          platform: str = "") -> AsyncIterator[bytes]:
        """``GET /images/get``: the archive's bytes. Names are resolved before this returns
        (NoSuchImage is an HTTP error); a failure while writing cuts the stream."""
        items = await asyncio.to_thread(resolve_for_save, self.service, list(names))
        loop = asyncio.get_running_loop()
        pipe = _ThreadPipe(loop)

        def run() -> None:
            exc: BaseException | None = None
            try:
                write_archive(self.service, items, cast(BinaryIO, pipe), tmp_dir=self._tmp_dir)
            except _Closed:
                return
            except BaseException as e:  # noqa: BLE001 - handed to the reader
                exc = e
            pipe.finish(exc)

        fut = loop.run_in_executor(None, run)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for c in pipe.chunks():
                    yield c
            finally:
                with contextlib.suppress(Exception):
                    await fut

        return chunks()

    async def load_images(self, body: AsyncIterable[bytes], *, quiet: bool = False,
                          platform: str = "") -> AsyncIterator[Event]:
        """``POST /images/load``: ``{"stream": "Loaded image: x:tag\n"}`` per image."""
        loop = asyncio.get_running_loop()
        reader = cast(BinaryIO, _BodyReader(body, loop))
        plat = _platform(platform)

        async def work(emit: Emit) -> None:
            def emit_ts(ev: Event) -> None:
                loop.call_soon_threadsafe(emit, ev)

            await asyncio.to_thread(load_archive, self.service, reader, emit_ts, platform=plat)
            await asyncio.sleep(0)   # let the last call_soon_threadsafe land

        async for ev in _stream(work):
            yield ev

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
            "Comment": _comment(cfg),
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
