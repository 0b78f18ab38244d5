"""The image store's side of pull and push: what a pulled image records, what a push sends.

A pulled image keeps what it came with, so that pushing it again sends the very same
manifest (docker does the same): its config bytes (the image id is the registry's config
digest), its compressed layer blobs (``doc["layers"]``), and ``doc["manifest"]``
(``{"digest","mediaType","size"}``) with the manifest (and index) blobs listed in
``doc["blobs"]`` so gc keeps them. ``doc["sources"]`` lists the repositories known to hold
the image's blobs (pulled from or pushed to): a push tries a cross-repository mount from
those on the same registry.

A local image (import, commit, load) has layer blobs as they came: plain tars are gzipped
for the registry (``gzip -1``, header without a timestamp) the first time it is pushed; the
compressed blobs and the schema2 manifest are recorded in the doc right away, so every
later push of the image sends identical bytes.

While a pull runs, every blob it touches is leased (``LeasingStore``): a concurrent gc
(``rmi`` elsewhere) leaves them alone until the image row that references them exists.
"""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, BinaryIO

from dockyard.content.store import ContentStore, Info, Writer, read_blob, write_blob
from dockyard.distribution.manifest import Descriptor, build_manifest, parse_manifest
from dockyard.errors import AlreadyExists, NotFound
from dockyard.image.gc import Leases
from dockyard.image.service import ImageService
from dockyard.image.unpack import UnpackedLayer
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import digest_bytes
from dockyard.oci.reference import Reference

__all__ = ["LeasingStore", "PushSource", "prepare_push", "record_pull", "record_push"]

_CHUNK = 1 << 20
_GZIP_LEVEL = 1
_GZIP_TYPES = frozenset({mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER_GZIP})
_ZSTD_TYPES = frozenset({mt.OCI_LAYER_ZSTD})


class _Holds:
    """An ExitStack that several threads may add leases to."""

    def __init__(self, leases: Leases, stack: ExitStack) -> None:
        self._leases = leases
        self._stack = stack
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def hold(self, digest: str) -> None:
        with self._lock:
            if digest and digest not in self._held:
                self._stack.enter_context(self._leases.hold(digest))
                self._held.add(digest)


class _LeasedWriter:
    def __init__(self, inner: Writer, holds: _Holds) -> None:
        self._inner = inner
        self._holds = holds
        self.ref = inner.ref

    @property
    def size(self) -> int:
        return self._inner.size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._inner.write(data)

    def digest(self) -> str:
        return self._inner.digest()

    def commit(self, expected_size: int = 0, expected_digest: str = "") -> Info:
        # leased before it becomes visible: gc cannot take it between commit and record
        self._holds.hold(expected_digest or self._inner.digest())
        return self._inner.commit(expected_size, expected_digest)

    def abort(self) -> None:
        self._inner.abort()


class LeasingStore:
    """A ``ContentStore`` view that leases (on ``stack``) every blob it is asked about or
    writes, for the life of an operation."""

    def __init__(self, content: ContentStore, leases: Leases, stack: ExitStack) -> None:
        self._content = content
        self._holds = _Holds(leases, stack)

    def hold(self, digest: str) -> None:
        self._holds.hold(digest)

    def info(self, digest: str) -> Info:
        self._holds.hold(digest)
        return self._content.info(digest)

    def reader(self, digest: str) -> BinaryIO:
        self._holds.hold(digest)
        return self._content.reader(digest)

    def writer(self, ref: str) -> Writer:
        return _LeasedWriter(self._content.writer(ref), self._holds)

    def delete(self, digest: str) -> None:
        self._content.delete(digest)

    def walk(self) -> Iterator[Info]:
        return self._content.walk()


# -- pull ---------------------------------------------------------------------------------

def record_pull(svc: ImageService, *, ref: Reference, digest: str, config: bytes,
                manifest_digest: str, manifest_media_type: str, manifest_size: int,
                layers: Sequence[Descriptor], unpacked: Sequence[UnpackedLayer],
                extra_blobs: Sequence[str] = ()) -> tuple[str, str]:
    """Create (or find) the pulled image and point ``ref`` (and ``name@digest``) at it.

    Returns ``(image id, the id ref pointed at before or "")``."""
    before = svc.ref_target(ref)
    refs = [ref] if ref.digest else [ref.with_default_tag(),
                                      Reference(ref.domain, ref.path, "", digest)]
    chain = unpacked[-1].chain_id if unpacked else ""
    manifest = {"digest": manifest_digest, "mediaType": manifest_media_type,
                "size": manifest_size}
    blobs = [b for b in (manifest_digest, *extra_blobs) if b]
    doc = {"blobs": blobs, "manifest": manifest, "sources": [ref.name]}
    image_id = svc.create_image(
        json.loads(config), [d.to_dict() for d in layers], chain=chain,
        size=sum(u.size for u in unpacked), refs=refs, extra_doc=doc, config_bytes=config)

    def merge(d: dict[str, Any]) -> None:   # the image was here already (another name)
        d["blobs"] = sorted(set(d.get("blobs") or []) | set(blobs))
        d.setdefault("manifest", manifest)
        srcs = list(d.get("sources") or [])
        if ref.name not in srcs:
            srcs.append(ref.name)
        d["sources"] = srcs

    svc.update_doc(image_id, merge)
    return image_id, before


# -- push ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushSource:
    image_id: str
    manifest: bytes
    media_type: str
    #: repositories (``127.0.0.1:5000/other``) known to hold the image's blobs
    sources: tuple[str, ...]

    @property
    def blob_sources(self) -> dict[str, list[str]]:
        """``mount_from`` for ``Distribution.push``: every blob of the manifest → sources."""
        doc = json.loads(self.manifest)
        digests = [doc["config"]["digest"]] + [x["digest"] for x in doc.get("layers") or []]
        return {d: list(self.sources) for d in digests}


def _present(svc: ImageService, digest: str) -> bool:
    try:
        svc.content.info(digest)
    except NotFound:
        return False
    return True


def _recorded_manifest(svc: ImageService, doc: Mapping[str, Any]) -> tuple[bytes, str] | None:
    m = doc.get("manifest")
    if not isinstance(m, dict) or not m.get("digest"):
        return None
    try:
        data = read_blob(svc.content, str(m["digest"]), 4 << 20)
    except NotFound:
        return None
    media = str(m.get("mediaType") or "")
    try:
        parsed = parse_manifest(data, media)
    except Exception:  # noqa: BLE001 - a bad record: build a new manifest
        return None
    needed = [parsed["config"]["digest"]] + [x["digest"] for x in parsed.get("layers") or []]
    if not all(_present(svc, d) for d in needed):
        return None
    return data, media


def _gzip_blob(svc: ImageService, digest: str, holds: _Holds) -> tuple[str, int]:
    """Gzip the plain blob ``digest`` into the store (deterministic bytes)."""
    w = svc.content.writer(f"gzip-{digest}-{uuid.uuid4().hex[:8]}")
    try:
        comp = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
        with svc.content.reader(digest) as f:
            while chunk := f.read(_CHUNK):
                out = comp.compress(chunk)
                if out:
                    w.write(out)
        w.write(comp.flush())
        gz = w.digest()
        holds.hold(gz)
        try:
            w.commit(0, gz)
        except AlreadyExists:
            pass
        return gz, w.size
    except BaseException:
        w.abort()
        raise


def prepare_push(svc: ImageService, name: str, stack: ExitStack) -> PushSource:
    """What pushing the image ``name`` sends: the recorded manifest if its blobs are all
    here, else a new one (plain layers gzipped), recorded before it is returned. The
    image's blobs stay leased on ``stack``."""
    holds = _Holds(svc.leases, stack)
    image_id = svc.resolve(name)
    holds.hold(image_id)
    row = svc.records.get_image(image_id)
    if row is None:
        raise NotFound(f"No such image: {name}")
    doc = row.doc
    sources = tuple(str(s) for s in doc.get("sources") or [])
    found = _recorded_manifest(svc, doc)
    if found is not None:
        data, media = found
        for d in [json.loads(data)["config"]["digest"]] + \
                [x["digest"] for x in json.loads(data).get("layers") or []]:
            holds.hold(d)
        return PushSource(image_id, data, media, sources)

    config_size = svc.content.info(image_id).size
    layers: list[Descriptor] = []
    new_blobs: list[str] = []
    for d in doc.get("layers") or []:
        media, digest, size = str(d.get("mediaType") or ""), str(d["digest"]), int(d["size"])
        holds.hold(digest)
        if media in _GZIP_TYPES or media in _ZSTD_TYPES:
            layers.append(Descriptor(media, digest, size))
            continue
        gz, gz_size = _gzip_blob(svc, digest, holds)
        new_blobs.append(gz)
        layers.append(Descriptor(mt.DOCKER_LAYER_GZIP, gz, gz_size))
    manifest, media = build_manifest(Descriptor(mt.DOCKER_CONFIG, image_id, config_size), layers)
    mdigest = digest_bytes(manifest)
    holds.hold(mdigest)
    write_blob(svc.content, f"manifest-{uuid.uuid4().hex}", manifest, expected_digest=mdigest)
    new_blobs.append(mdigest)

    def record(d: dict[str, Any]) -> None:
        d["blobs"] = sorted(set(d.get("blobs") or []) | set(new_blobs))
        d["manifest"] = {"digest": mdigest, "mediaType": media, "size": len(manifest)}

    svc.update_doc(image_id, record)
    return PushSource(image_id, manifest, media, sources)


def record_push(svc: ImageService, image_id: str, ref: Reference, digest: str) -> None:
    """After a push: ``name@digest`` becomes a RepoDigest; the repository a source."""
    svc.add_digest_ref(image_id, ref.name, digest)

    def add(d: dict[str, Any]) -> None:
        srcs = list(d.get("sources") or [])
        if ref.name not in srcs:
            srcs.append(ref.name)
        d["sources"] = srcs

    svc.update_doc(image_id, add)
