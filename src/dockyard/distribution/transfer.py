"""Pull and push: move an image's descriptors between a registry and the content store.

Pull (``Distribution.pull``)::

    GET manifests/<tag|digest>  (every manifest type in Accept; schema1 refused)
      └─ index / manifest list → pick the platform entry → GET manifests/<digest>
    store the index and manifest bytes (verified against their digests)
    GET blobs/<config>          → content store
    GET blobs/<layer> ×N        → content store, several at once; a blob already in the
                                  store is skipped ("Already exists")

Every blob is streamed straight into a content-store writer (large reads, hashing and
``write`` in worker threads, the next read overlapping the previous write); the size is
checked while streaming, the digest at commit, so a bad blob never becomes visible. A
dropped connection resumes with ``Range: bytes=N-``.

Push (``Distribution.push``): HEAD each layer in the target repository ("Layer already
exists"), else try a cross-repository mount from the repositories the caller says hold it
("Mounted from other/repo"), else upload it from the store (POST → one streamed PATCH → PUT
``?digest=``; a small blob goes in the PUT), then the config, then the manifest (built here
from the config and layer descriptors, Docker schema2 unless the layers need OCI, or given
as bytes), then ``<tag>: digest: sha256:... size: N`` and the ``aux`` record.

Progress goes to a ``progress(event)`` callback in docker's JSON-message shape (see
``progress``). The caller, which extracts layers, reports ``Extracting`` and ``Pull complete``
itself with the same ids (``progress.short_id(descriptor.digest)``), and the final
``Status: Downloaded newer image for ...`` / ``Status: Image is up to date for ...`` line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import aiohttp
from yarl import URL

from dockyard.content.store import ContentStore, Provider, Writer, read_blob, write_blob
from dockyard.errors import (
    AlreadyExists,
    DockyardError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unsupported,
)
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import digest_bytes, parse_digest
from dockyard.oci.reference import Reference, parse, parse_normalized

from .auth import Credentials, TokenCache
from .client import RegistryClient
from .hosts import RegistryHosts
from .manifest import (
    SCHEMA1_TYPES,
    Descriptor,
    build_manifest,
    detect_media_type,
    parse_manifest,
    select_platform,
)
from .progress import ProgressFn, layer_progress, layer_status, short_id, status
from .transport import NETWORK_ERRORS, USER_AGENT, Transport, network_error

__all__ = [
    "DigestMismatch",
    "Distribution",
    "PullResult",
    "PulledLayer",
    "PushResult",
    "pull",
    "pull_all_tags",
    "push",
]

log = logging.getLogger("dockyard.distribution")

#: read-size hint for blob bodies (aiohttp hands back whatever is buffered, up to this)
READ_CHUNK = 4 << 20
#: chunk size when streaming a blob from the store to the registry
UPLOAD_CHUNK = 1 << 20
#: blobs up to this size are uploaded in the closing PUT (two requests instead of three)
MONOLITHIC_MAX = 1 << 20
#: at most this many bytes of config are read into memory
CONFIG_LIMIT = 64 << 20
PROGRESS_INTERVAL = 0.1
BLOB_RETRIES = 3

AuthConfig = Mapping[str, Any] | Credentials | None
OnLayer = Callable[["PulledLayer"], Awaitable[None] | None]


class DigestMismatch(Internal):
    """A blob or manifest from the registry does not match its digest or size."""


@dataclass(frozen=True)
class PulledLayer:
    """One layer of a pulled image, in manifest order."""

    descriptor: Descriptor
    #: ``rootfs.diff_ids[i]`` of the config (the uncompressed tar's digest), "" if absent
    diff_id: str
    #: the blob was in the content store already ("Already exists"): nothing downloaded
    existed: bool


@dataclass
class PullResult:
    """What a pull left in the content store, and what the caller needs to unpack it."""

    reference: Reference
    #: what the tag resolved to (the index's digest for a multi-platform image): RepoDigest
    digest: str
    manifest_digest: str
    manifest: bytes
    media_type: str
    config_digest: str
    config: bytes
    layers: list[PulledLayer]
    index_digest: str = ""
    index: bytes = b""
    index_media_type: str = ""
    #: the index entry's platform (``linux/amd64``), "" for a single-platform image
    platform: str = ""

    @property
    def repo_digest(self) -> str:
        """``127.0.0.1:5000/x@sha256:...`` (docker's RepoDigests entry)."""
        return f"{self.reference.name}@{self.digest}"

    @property
    def config_json(self) -> dict[str, Any]:
        doc = json.loads(self.config)
        return doc if isinstance(doc, dict) else {}


@dataclass
class PushResult:
    reference: Reference
    tag: str
    digest: str
    size: int
    media_type: str
    manifest: bytes = field(repr=False, default=b"")


def _ref(ref: str | Reference) -> Reference:
    return parse(ref) if isinstance(ref, str) else ref.with_default_tag()


def _noop(_: dict[str, Any]) -> None:
    return None


class _Throttle:
    """Emit a progress event at most every ``PROGRESS_INTERVAL`` (and always the last)."""

    def __init__(self, emit: ProgressFn, what: str, id: str, total: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.what, self.id, self.total, self.clock = emit, what, id, total, clock
        self.last = 0.0

    def __call__(self, current: int) -> None:
        now = self.clock()
        if now - self.last >= PROGRESS_INTERVAL or current >= self.total:
            self.last = now
            self.emit(layer_progress(self.what, self.id, current, self.total))


class Distribution:
    """The registry side of the engine: one per daemon (or per operation).

    It holds the HTTP session, the token cache and the daemon's registry options
    (``--registry-mirror``, ``--insecure-registry``). Use ``async with`` or ``await close()``.
    """

    def __init__(self, *, mirrors: Iterable[str] = (), insecure: Iterable[str] = (),
                 hosts: RegistryHosts | None = None, transport: Transport | None = None,
                 max_concurrent_downloads: int = 3, max_concurrent_uploads: int = 5,
                 user_agent: str = USER_AGENT, tokens: TokenCache | None = None) -> None:
        self.hosts = hosts or RegistryHosts(mirrors, insecure)
        self.transport = transport or Transport(self.hosts, user_agent=user_agent)
        self._own_transport = transport is None
        self.tokens = tokens if tokens is not None else TokenCache()
        self.max_concurrent_downloads = max(1, max_concurrent_downloads)
        self.max_concurrent_uploads = max(1, max_concurrent_uploads)
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def close(self) -> None:
        if self._own_transport:
            await self.transport.close()

    async def __aenter__(self) -> "Distribution":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _each_endpoint(self, domain: str, creds: Credentials | None, push: bool,
                             work: Callable[[RegistryClient], Awaitable[Any]]) -> Any:
        """Run ``work`` against the endpoints in order. A mirror's failure, or an endpoint
        that could not be reached before it answered ``/v2/``, moves on to the next."""
        endpoints = self.hosts.endpoints(domain, push=push)
        last: DockyardError | None = None
        for i, ep in enumerate(endpoints):
            client = RegistryClient(self.transport, ep, creds, cache=self.tokens)
            try:
                await client.ping()        # before any progress: an unreachable endpoint is
                return await work(client)  # skipped silently
            except DockyardError as exc:
                more = i + 1 < len(endpoints)
                if more and (ep.mirror or (not client.confirmed and isinstance(exc, Unavailable))):
                    log.info("registry endpoint %s failed, trying the next: %s", ep, exc)
                    last = exc
                    continue
                raise
        assert last is not None
        raise last

    # -- pull -----------------------------------------------------------------------------

    async def pull(self, ref: str | Reference, *, store: ContentStore,
                   platform: str = "linux/amd64", progress: ProgressFn | None = None,
                   auth: AuthConfig = None, on_layer: OnLayer | None = None) -> PullResult:
        """Pull one image (a tag or a digest) into ``store``.

        ``auth`` is docker's AuthConfig dict (the decoded ``X-Registry-Auth``) or
        Credentials. ``on_layer(layer)``, if given, is called (and awaited) for each layer
        in manifest order as soon as it and every layer before it are in the store, while
        later layers keep downloading: the caller can extract as the pull proceeds.

        Errors: NotFound (``manifest for x:y not found: manifest unknown: ...``, ``no
        matching manifest for linux/amd64 in the manifest list entries``), Unauthorized,
        Unavailable (network), DigestMismatch, Unsupported (schema1).
        """
        r = _ref(ref)
        creds = Credentials.from_auth_config(auth)
        emit = progress or _noop
        res: PullResult = await self._each_endpoint(
            r.domain, creds, False,
            lambda c: self._pull_from(c, r, store, platform, emit, on_layer, creds is None))
        return res

    async def pull_all_tags(self, ref: str | Reference, *, store: ContentStore,
                            platform: str = "linux/amd64", progress: ProgressFn | None = None,
                            auth: AuthConfig = None,
                            on_layer: OnLayer | None = None) -> list[PullResult]:
        """``docker pull --all-tags``: every tag of the repository, one after the other."""
        r = parse_normalized(str(ref)) if isinstance(ref, str) else ref
        tags = await self.list_tags(r, auth=auth)
        out = []
        for tag in tags:
            one = Reference(r.domain, r.path, tag, "")
            out.append(await self.pull(one, store=store, platform=platform, progress=progress,
                                       auth=auth, on_layer=on_layer))
        return out

    async def list_tags(self, ref: str | Reference, *, auth: AuthConfig = None) -> list[str]:
        r = parse_normalized(ref) if isinstance(ref, str) else ref
        creds = Credentials.from_auth_config(auth)

        async def work(c: RegistryClient) -> list[str]:
            try:
                return await c.list_tags(r.path)
            except DockyardError as exc:
                raise _translate_pull_error(exc, r, creds is None) from exc

        tags: list[str] = await self._each_endpoint(r.domain, creds, False, work)
        return tags

    async def resolve(self, ref: str | Reference, *, auth: AuthConfig = None) -> Descriptor:
        """``HEAD`` the manifest: its descriptor (digest, media type, size); NotFound if none."""
        r = _ref(ref)
        creds = Credentials.from_auth_config(auth)

        async def work(c: RegistryClient) -> Descriptor:
            d = await c.head_manifest(r.path, r.digest or r.tag)
            if d is None:
                raise NotFound(f"manifest for {r.familiar()} not found: "
                               "manifest unknown: manifest unknown")
            return d

        d: Descriptor = await self._each_endpoint(r.domain, creds, False, work)
        return d

    async def _pull_from(self, client: RegistryClient, r: Reference, store: ContentStore,
                         platform: str, emit: ProgressFn, on_layer: OnLayer | None,
                         anonymous: bool) -> PullResult:
        repo = r.path
        wanted = r.digest or r.tag
        try:
            body, ctype, header_digest = await client.get_manifest(repo, wanted)
        except DockyardError as exc:
            raise _translate_pull_error(exc, r, anonymous) from exc
        media = detect_media_type(ctype, body)
        if media in SCHEMA1_TYPES:
            raise Unsupported(_schema1_message(r))
        top_digest = _verify_manifest(body, r.digest, header_digest)
        doc = parse_manifest(body, media)

        index, index_digest, index_media, chosen = b"", "", "", ""
        depth = 0
        digest = top_digest
        while media in mt.INDEXES:
            depth += 1
            if depth > 2:
                raise InvalidArgument(f"{r.familiar()}: manifest lists nested too deeply")
            entry = select_platform(doc, platform)
            p = entry.platform or {}
            chosen = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant"))
                              if x)
            index, index_digest, index_media = body, digest, media
            body, ctype, _ = await client.get_manifest(repo, entry.digest)
            digest = _verify_manifest(body, entry.digest, "")
            if entry.size and len(body) != entry.size:
                raise DigestMismatch(f"manifest {entry.digest}: size {len(body)}, "
                                     f"expected {entry.size}")
            media = entry.media_type if entry.media_type in mt.MANIFESTS or \
                entry.media_type in mt.INDEXES else detect_media_type(ctype, body)
            if media in SCHEMA1_TYPES:
                raise Unsupported(_schema1_message(r))
            doc = parse_manifest(body, media)

        emit(status(f"Pulling from {repo}", id=wanted))
        config = Descriptor.from_dict(doc["config"])
        layers = [Descriptor.from_dict(x) for x in doc.get("layers") or ()]

        loop = asyncio.get_running_loop()
        if index:
            await loop.run_in_executor(None, _store_bytes, store, index, index_digest)
        await loop.run_in_executor(None, _store_bytes, store, body, digest)

        if not _have(store, config):
            await self._fetch_blob(client, repo, config, store, what="image config")
        config_bytes = await loop.run_in_executor(None, read_blob, store, config.digest,
                                                  CONFIG_LIMIT)
        diff_ids = _diff_ids(config_bytes)

        pulled = await self._pull_layers(client, repo, layers, diff_ids, store, emit, on_layer)
        emit(status(f"Digest: {top_digest}"))
        return PullResult(
            reference=r, digest=top_digest, manifest_digest=digest, manifest=body,
            media_type=media, config_digest=config.digest, config=config_bytes, layers=pulled,
            index_digest=index_digest, index=index, index_media_type=index_media,
            platform=chosen)

    async def _pull_layers(self, client: RegistryClient, repo: str,
                           layers: Sequence[Descriptor], diff_ids: Sequence[str],
                           store: ContentStore, emit: ProgressFn,
                           on_layer: OnLayer | None) -> list[PulledLayer]:
        sem = asyncio.Semaphore(self.max_concurrent_downloads)
        by_digest: dict[str, asyncio.Future[bool]] = {}
        order: list[asyncio.Future[bool]] = []
        loop = asyncio.get_running_loop()
        for d in layers:
            fut = by_digest.get(d.digest)
            if fut is None:
                lid = short_id(d.digest)
                if _have(store, d):
                    emit(layer_status("Already exists", lid))
                    fut = loop.create_future()
                    fut.set_result(True)
                else:
                    emit(layer_status("Pulling fs layer", lid))
                    fut = asyncio.ensure_future(
                        self._download_layer(client, repo, d, store, emit, sem))
                by_digest[d.digest] = fut
            order.append(fut)
        out: list[PulledLayer] = []
        try:
            for i, fut in enumerate(order):
                existed = await fut
                layer = PulledLayer(layers[i], diff_ids[i] if i < len(diff_ids) else "", existed)
                out.append(layer)
                if on_layer is not None:
                    res = on_layer(layer)
                    if res is not None:
                        await res
        except BaseException:
            for fut in by_digest.values():
                fut.cancel()
            await asyncio.gather(*by_digest.values(), return_exceptions=True)
            raise
        return out

    async def _download_layer(self, client: RegistryClient, repo: str, d: Descriptor,
                              store: ContentStore, emit: ProgressFn,
                              sem: asyncio.Semaphore) -> bool:
        lid = short_id(d.digest)
        if sem.locked():
            emit(layer_status("Waiting", lid))
        async with sem:
            other = self._inflight.get(d.digest)
            if other is not None:          # another pull of this daemon is fetching it
                try:
                    await asyncio.shield(other)
                except Exception:  # noqa: BLE001 - it failed there: try here
                    pass
                if _have(store, d):
                    emit(layer_status("Download complete", lid))
                    return False
            mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._inflight[d.digest] = mine
            try:
                await self._fetch_blob(
                    client, repo, d, store,
                    on_progress=_Throttle(emit, "Downloading", lid, d.size),
                    on_verify=lambda: emit(layer_status("Verifying Checksum", lid)))
            except BaseException as exc:
                mine.set_exception(exc if isinstance(exc, Exception) else
                                   Unavailable(f"download of {d.digest} was cancelled"))
                mine.exception()           # retrieved: no "never retrieved" warning
                raise
            else:
                mine.set_result(None)
            finally:
                self._inflight.pop(d.digest, None)
            emit(layer_status("Download complete", lid))
            return False

    async def _fetch_blob(self, client: RegistryClient, repo: str, d: Descriptor,
                          store: ContentStore, *, what: str = "filesystem layer",
                          on_progress: Callable[[int], None] | None = None,
                          on_verify: Callable[[], None] | None = None) -> None:
        """Stream one blob into the store, verified; resume a dropped transfer with Range."""
        loop = asyncio.get_running_loop()
        w: Writer = await loop.run_in_executor(None, store.writer, _ingest_ref(d.digest))
        committed = False
        try:
            failures = 0
            while True:
                offset = w.size
                try:
                    resp = await client.open_blob(repo, d.digest, offset)
                except Unavailable:
                    failures += 1
                    if failures > BLOB_RETRIES or not client.confirmed:
                        raise
                    await asyncio.sleep(0.2 * failures)
                    continue
                try:
                    if offset and resp.status == 200:
                        # the server ignored Range: start again from byte 0
                        await loop.run_in_executor(None, w.abort)
                        w = await loop.run_in_executor(None, store.writer, _ingest_ref(d.digest))
                    elif resp.status == 206:
                        _check_content_range(resp, offset, d)
                    await _stream_into(resp, w, d, on_progress, what)
                    break
                except NETWORK_ERRORS as exc:
                    failures += 1
                    if failures > BLOB_RETRIES:
                        raise network_error("GET", resp.url, exc) from exc
                    log.info("blob %s: transfer broke at %d bytes, resuming: %s",
                             d.digest, w.size, exc)
                finally:
                    resp.release()
            if on_verify is not None:
                on_verify()
            try:
                await loop.run_in_executor(None, w.commit, d.size, d.digest)
            except AlreadyExists:
                pass
            except FailedPrecondition as exc:
                raise DigestMismatch(f"{what} verification failed for digest {d.digest}") from exc
            committed = True
        finally:
            if not committed:
                w.abort()

    # -- push -----------------------------------------------------------------------------

    async def push(self, ref: str | Reference, *, store: ContentStore,
                   config: Descriptor | None = None, layers: Sequence[Descriptor] = (),
                   manifest: bytes | None = None, manifest_media_type: str = "",
                   progress: ProgressFn | None = None, auth: AuthConfig = None,
                   mount_from: Mapping[str, Iterable[str]] | None = None) -> PushResult:
        """Push an image whose blobs are in ``store`` and tag it ``ref``.

        Either give ``config`` and ``layers`` (descriptors of blobs in the store, layers
        compressed, base first): the manifest is built here (``build_manifest``: Docker
        schema2, or OCI if a layer is not gzip). Or give ``manifest`` bytes (e.g. the
        manifest of a pulled image, so its digest is kept): its config and layers are pushed,
        then the exact bytes.

        ``mount_from`` maps a blob digest to repositories (``127.0.0.1:5000/other/repo``)
        known to hold it; those on the same registry are tried as a cross-repository mount.
        Layer ids in the progress are the config's diff ids, as docker shows them.
        """
        r = _ref(ref)
        emit = progress or _noop
        creds = Credentials.from_auth_config(auth)
        if manifest is None:
            if config is None:
                raise InvalidArgument("push: a manifest or a config descriptor is required")
            manifest, media = build_manifest(config, layers)
        else:
            media = manifest_media_type or detect_media_type("", manifest)
            if media in SCHEMA1_TYPES:
                raise Unsupported("pushing a schema1 manifest is not supported")
            doc = parse_manifest(manifest, media)
            if media in mt.INDEXES:
                raise Unsupported("pushing a manifest list or index is not supported")
            config = Descriptor.from_dict(doc["config"])
            layers = [Descriptor.from_dict(x) for x in doc.get("layers") or ()]
        emit(status(f"The push refers to repository [{r.name}]"))
        assert config is not None
        cfg, lyr = config, list(layers)
        result: PushResult = await self._each_endpoint(
            r.domain, creds, True,
            lambda c: self._push_to(c, r, store, cfg, lyr, manifest, media, emit,
                                    mount_from or {}))
        return result

    async def _push_to(self, client: RegistryClient, r: Reference, store: ContentStore,
                       config: Descriptor, layers: list[Descriptor], manifest: bytes,
                       media: str, emit: ProgressFn,
                       mount_from: Mapping[str, Iterable[str]]) -> PushResult:
        repo = r.path
        client.want(repo, "pull", "push")
        loop = asyncio.get_running_loop()
        _require(store, config)
        diff_ids: list[str] = []
        try:
            diff_ids = _diff_ids(await loop.run_in_executor(None, read_blob, store,
                                                            config.digest, CONFIG_LIMIT))
        except DockyardError:
            pass
        use_diff = len(diff_ids) == len(layers)
        ids = [short_id(diff_ids[i] if use_diff else d.digest) for i, d in enumerate(layers)]
        todo: dict[str, tuple[Descriptor, str]] = {}
        for d, lid in zip(layers, ids, strict=True):
            if d.is_foreign and d.urls:
                emit(layer_status("Skipped foreign layer", lid))
                continue
            _require(store, d)
            if d.digest not in todo:
                emit(layer_status("Preparing", lid))
                todo[d.digest] = (d, lid)
        sem = asyncio.Semaphore(self.max_concurrent_uploads)
        tasks = [asyncio.ensure_future(
            self._push_layer(client, r, d, lid, store, emit, sem, mount_from.get(d.digest, ())))
            for d, lid in todo.values()]
        tasks.append(asyncio.ensure_future(self._push_blob_quiet(client, repo, config, store)))
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        digest = digest_bytes(manifest)
        put_ref = r.tag or r.digest or digest
        got = await client.put_manifest(repo, put_ref, manifest, media)
        if got and got != digest and parse_digest(got)[0] == "sha256":
            raise DigestMismatch(f"registry stored manifest {got}, expected {digest}")
        tag = r.tag or ""
        emit(status(f"{tag or digest}: digest: {digest} size: {len(manifest)}"))
        emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest)}})
        return PushResult(r, tag, digest, len(manifest), media, manifest)

    async def _push_layer(self, client: RegistryClient, r: Reference, d: Descriptor, lid: str,
                          store: ContentStore, emit: ProgressFn, sem: asyncio.Semaphore,
                          sources: Iterable[str]) -> None:
        if sem.locked():
            emit(layer_status("Waiting", lid))
        async with sem:
            repo = r.path
            if await client.head_blob(repo, d.digest) is not None:
                emit(layer_status("Layer already exists", lid))
                return
            location = None
            for src in _mount_candidates(sources, r):
                try:
                    mounted, location = await client.start_upload(repo, mount=d.digest,
                                                                  from_repo=src)
                except Unavailable:
                    raise
                except DockyardError as exc:
                    log.info("mount of %s from %s failed: %s", d.digest, src, exc)
                    continue
                if mounted:
                    emit(layer_status(f"Mounted from {src}", lid))
                    return
                break                        # 202: the registry opened an upload instead
            if location is None:
                _, location = await client.start_upload(repo)
            assert location is not None
            await self._upload(client, repo, location, d, store,
                               _Throttle(emit, "Pushing", lid, d.size))
            emit(layer_status("Pushed", lid))

    async def _push_blob_quiet(self, client: RegistryClient, repo: str, d: Descriptor,
                               store: ContentStore) -> None:
        if await client.head_blob(repo, d.digest) is not None:
            return
        _, location = await client.start_upload(repo)
        assert location is not None
        await self._upload(client, repo, location, d, store, None)

    async def _upload(self, client: RegistryClient, repo: str, location: URL, d: Descriptor,
                      store: Provider, on_progress: Callable[[int], None] | None) -> None:
        loop = asyncio.get_running_loop()
        if d.size <= MONOLITHIC_MAX:
            data = await loop.run_in_executor(None, read_blob, store, d.digest, MONOLITHIC_MAX)
            await client.upload(repo, location, d.digest, len(data), data, monolithic=True)
            if on_progress is not None:
                on_progress(len(data))
            return
        # The file is opened (and closed) here, not inside the body generator: the HTTP
        # client may stop iterating a body early, and a generator's cleanup would then wait
        # for the garbage collector.
        f = await loop.run_in_executor(None, store.reader, d.digest)
        bodies: list[AsyncIterator[bytes]] = []

        def body() -> AsyncIterator[bytes]:
            b = _file_chunks(f, on_progress)
            bodies.append(b)
            return b

        try:
            await client.upload(repo, location, d.digest, d.size, body, monolithic=False)
        finally:
            for b in bodies:
                try:
                    await b.aclose()  # type: ignore[attr-defined]
                except RuntimeError:  # still being iterated by a cancelled send
                    pass
            await loop.run_in_executor(None, f.close)


# -- helpers ------------------------------------------------------------------------------

def _ingest_ref(digest: str) -> str:
    # unique per attempt: two pulls of one blob (two processes) must not share an ingest
    return f"pull-{digest}-{secrets.token_hex(4)}"


def _have(store: Provider, d: Descriptor) -> bool:
    try:
        info = store.info(d.digest)
    except NotFound:
        return False
    return d.size <= 0 or info.size == d.size


def _require(store: Provider, d: Descriptor) -> None:
    try:
        store.info(d.digest)
    except NotFound:
        raise NotFound(f"blob {d.digest} is not in the content store") from None


def _store_bytes(store: ContentStore, data: bytes, digest: str) -> None:
    write_blob(store, _ingest_ref(digest), data, expected_digest=digest,
               expected_size=len(data))


def _diff_ids(config: bytes) -> list[str]:
    try:
        doc = json.loads(config)
    except ValueError:
        raise InvalidArgument("invalid image config: not JSON") from None
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [x for x in ids if isinstance(x, str)] if isinstance(ids, list) else []


def _verify_manifest(body: bytes, wanted: str, header: str) -> str:
    """The manifest's digest, checked against the one asked for and the header's."""
    if wanted:
        alg, _ = parse_digest(wanted)
        if digest_bytes(body, alg) != wanted:
            raise DigestMismatch(f"manifest verification failed for digest {wanted}")
        return wanted
    got = digest_bytes(body)
    if header:
        try:
            alg, _ = parse_digest(header)
        except InvalidArgument:
            return got
        if digest_bytes(body, alg) != header:
            raise DigestMismatch(f"manifest verification failed for digest {header}")
    return got


def _translate_pull_error(exc: DockyardError, r: Reference, anonymous: bool) -> DockyardError:
    """Docker's wording for a manifest that cannot be had (moby ``translatePullError``)."""
    codes = getattr(exc, "codes", None) or []
    code = codes[0].code if codes else ""
    msg = exc.message
    if code == "MANIFEST_UNKNOWN":
        return NotFound(f"manifest for {r.familiar()} not found: {msg}")
    if code == "NAME_UNKNOWN":
        return NotFound(f"repository {r.familiar_name} not found: {msg}")
    if code == "DENIED" or (code == "UNAUTHORIZED" and anonymous):
        return NotFound(f"pull access denied for {r.familiar_name}, repository does not exist "
                        f"or may require 'docker login': {msg}")
    return exc


def _schema1_message(r: Reference) -> str:
    return ("[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, "
            "schema 1 support is disabled by default and will be removed in an upcoming "
            f"release. Suggest the author of {r.familiar()} to upgrade the image to the OCI "
            "Format or Docker Image manifest v2, schema 2. More information at "
            "https://docs.docker.com/go/deprecated-image-specs/")


def _check_content_range(resp: aiohttp.ClientResponse, offset: int, d: Descriptor) -> None:
    cr = resp.headers.get("Content-Range", "")
    # "bytes 100-199/200"
    try:
        start = int(cr.split(" ", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        start = offset
    if start != offset:
        raise DigestMismatch(f"blob {d.digest}: asked for bytes from {offset}, got {cr!r}")


def _mount_candidates(sources: Iterable[str], r: Reference) -> list[str]:
    out: list[str] = []
    for s in sources:
        try:
            src = parse_normalized(s)
        except InvalidArgument:
            continue
        if src.domain == r.domain and src.path != r.path and src.path not in out:
            out.append(src.path)
    return out


async def _stream_into(resp: aiohttp.ClientResponse, w: Writer, d: Descriptor,
                       on_progress: Callable[[int], None] | None, what: str) -> None:
    """Copy the body into the writer: the next read overlaps the previous write, which (with
    its hashing) runs in a worker thread. Stops as soon as more than ``d.size`` bytes come."""
    loop = asyncio.get_running_loop()
    content = resp.content
    n = w.size
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            chunk = await content.read(READ_CHUNK)
            if not chunk:
                break
            n += len(chunk)
            if d.size and n > d.size:
                raise DigestMismatch(f"{what} verification failed for digest {d.digest}: "
                                     f"more than {d.size} bytes")
            if pending is not None:
                await pending
            pending = loop.run_in_executor(None, w.write, chunk)
            if on_progress is not None:
                on_progress(n)
    except BaseException:
        # let the write in flight finish before the caller aborts the writer
        if pending is not None and not pending.done():
            try:
                await asyncio.wait([pending])
            except BaseException:  # noqa: BLE001 - the first exception is the one to raise
                pass
        raise
    if pending is not None:
        await pending


async def _file_chunks(f: BinaryIO, on_progress: Callable[[int], None] | None
                       ) -> AsyncIterator[bytes]:
    """The open blob's bytes from its start in ``UPLOAD_CHUNK`` pieces, the next read
    running while the previous piece is being sent. The caller owns (and closes) ``f``."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, f.seek, 0)  # a retried upload starts over
    nxt: asyncio.Future[bytes] | None = None
    try:
        sent = 0
        nxt = loop.run_in_executor(None, f.read, UPLOAD_CHUNK)
        while True:
            data = await nxt
            nxt = None
            if not data:
                break
            nxt = loop.run_in_executor(None, f.read, UPLOAD_CHUNK)
            yield data
            sent += len(data)
            if on_progress is not None:
                on_progress(sent)
    finally:
        if nxt is not None:
            try:
                await nxt
            except Exception:  # noqa: BLE001
                pass


# -- one-shot functions -------------------------------------------------------------------

async def pull(ref: str | Reference, *, store: ContentStore, platform: str = "linux/amd64",
               progress: ProgressFn | None = None, auth: AuthConfig = None,
               mirrors: Iterable[str] = (), insecure: Iterable[str] = (),
               on_layer: OnLayer | None = None) -> PullResult:
    """``Distribution(mirrors=, insecure=).pull(...)`` with a session of its own."""
    async with Distribution(mirrors=mirrors, insecure=insecure) as dist:
        return await dist.pull(ref, store=store, platform=platform, progress=progress,
                               auth=auth, on_layer=on_layer)


async def pull_all_tags(ref: str | Reference, *, store: ContentStore,
                        platform: str = "linux/amd64", progress: ProgressFn | None = None,
                        auth: AuthConfig = None, mirrors: Iterable[str] = (),
                        insecure: Iterable[str] = ()) -> list[PullResult]:
    async with Distribution(mirrors=mirrors, insecure=insecure) as dist:
        return await dist.pull_all_tags(ref, store=store, platform=platform,
                                        progress=progress, auth=auth)


async def push(ref: str | Reference, *, store: ContentStore, config: Descriptor | None = None,
               layers: Sequence[Descriptor] = (), manifest: bytes | None = None,
               manifest_media_type: str = "", progress: ProgressFn | None = None,
               auth: AuthConfig = None, mount_from: Mapping[str, Iterable[str]] | None = None,
               insecure: Iterable[str] = ()) -> PushResult:
    """``Distribution(insecure=).push(...)`` with a session of its own."""
    async with Distribution(insecure=insecure) as dist:
        return await dist.push(ref, store=store, config=config, layers=layers,
                               manifest=manifest, manifest_media_type=manifest_media_type,
                               progress=progress, auth=auth, mount_from=mount_from)
