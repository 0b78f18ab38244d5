"""``docker save`` and ``docker load``: images as a tar archive.

Save writes what docker 25 and later write, an OCI image layout plus docker's
``manifest.json`` in one tar (skopeo reads it as ``docker-archive:`` and ``oci-archive:``)::

    blobs/sha256/<diff id hex>     each layer as an uncompressed tar (shared layers once)
    blobs/sha256/<config hex>      the config, its exact bytes (the image id)
    blobs/sha256/<manifest hex>    an OCI manifest naming the two above
    index.json                     OCI index; a tagged image's entries carry
                                   ``io.containerd.image.name`` and
                                   ``org.opencontainers.image.ref.name``
    manifest.json                  [{"Config": "blobs/sha256/..", "RepoTags": [..],
                                     "Layers": ["blobs/sha256/..", ..]}]
    oci-layout                     {"imageLayoutVersion":"1.0.0"}

Load reads that, and docker's older layout (``<id>.json``, ``<layer id>/layer.tar``
possibly as symlinks to another layer's, ``manifest.json``), and a plain OCI layout without
``manifest.json`` (driven by ``index.json``). The archive itself may be gzip/bzip2/xz
compressed, and so may each layer file (sniffed). Members are read in one pass: big
files go straight into the content store as blobs (leased until the images are
recorded), small ones are kept in memory; links are resolved inside the archive's own
namespace (nothing is written to the filesystem by name). Each layer's diff id is checked
against the config's ``rootfs.diff_ids`` while it is unpacked.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.content.store import read_blob
from dockyard.distribution.manifest import Descriptor, parse_manifest, select_platform
from dockyard.errors import AlreadyExists, Internal, InvalidArgument, NoSuchImage
from dockyard.image.service import ImageService
from dockyard.image.unpack import LayerSource, UnpackedLayer
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digester, digest_bytes, is_digest
from dockyard.oci.reference import Reference, parse_normalized
from dockyard.util.tarlayer import Compression, decompress, detect_compression

__all__ = ["SaveItem", "load_archive", "resolve_for_save", "write_archive"]

_CHUNK = 1 << 20
#: members up to this size are kept in memory while the archive is read
_SMALL = 1 << 20
#: at most this much in memory in all; beyond it, members go to the content store
_SMALL_TOTAL = 64 << 20
_REF_NAME = "org.opencontainers.image.ref.name"
_IMAGE_NAME = "io.containerd.image.name"


# -- save ---------------------------------------------------------------------------------

@dataclass
class SaveItem:
    image_id: str
    tags: list[Reference] = field(default_factory=list)


def resolve_for_save(svc: ImageService, names: Sequence[str]) -> list[SaveItem]:
    """Which images ``docker save NAME...`` writes, with which tags (moby's rules: a
    repository name alone means all of its tags; an id or a digest reference, no tag).
    NoSuchImage for a name that names nothing."""
    if not names:
        raise InvalidArgument("no images specified")
    items: dict[str, SaveItem] = {}

    def add(image_id: str, tag: Reference | None) -> None:
        item = items.setdefault(image_id, SaveItem(image_id))
        if tag is not None and tag not in item.tags:
            item.tags.append(tag)

    for name in names:
        ref: Reference | None = None
        try:
            ref = parse_normalized(name)
        except InvalidArgument:
            ref = None
        if ref is not None and not ref.tag and not ref.digest:
            tags = svc.tags_of_repository(name)
            if tags:
                for t in tags:
                    add(svc.resolve(t.repo_and_tag), t)
                continue
        image_id = svc.resolve(name)
        is_id = image_id == name or image_id[7:].startswith(name.removeprefix("sha256:"))
        if ref is not None and not is_id and not ref.digest:
            add(image_id, ref.with_default_tag())
        else:
            add(image_id, None)
    return list(items.values())


def _info(name: str, size: int = 0, mtime: float = 0, *, dir: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = int(mtime)
    ti.uname = ti.gname = ""
    if dir:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
    else:
        ti.mode = 0o644
        ti.size = size
    return ti


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    tf.addfile(_info(name, len(data), mtime), io.BytesIO(data))


def write_archive(svc: ImageService, items: Sequence[SaveItem], out: BinaryIO, *,
                  tmp_dir: str | None = None) -> None:
    """Write the images as one tar to ``out`` (a stream: nothing is seeked)."""
    now = time.time()
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_CHUNK)
    with ExitStack() as hold:
        written: set[str] = set()
        index: list[dict[str, Any]] = []
        legacy: list[dict[str, Any]] = []
        tf.addfile(_info("blobs", mtime=now, dir=True))
        tf.addfile(_info("blobs/sha256", mtime=now, dir=True))
        for item in items:
            hold.enter_context(svc.leases.hold(item.image_id))
            row = svc.records.get_image(item.image_id)
            if row is None:
                raise NoSuchImage(f"No such image: {item.image_id}")
            config = read_blob(svc.content, item.image_id)
            cfg = json.loads(config)
            diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
            blobs = [str(d["digest"]) for d in row.doc.get("layers") or []]
            if len(blobs) != len(diff_ids):
                raise Internal(f"image {item.image_id}: {len(blobs)} layer blobs for "
                               f"{len(diff_ids)} diff ids")
            layers: list[dict[str, Any]] = []
            for blob, diff_id in zip(blobs, diff_ids, strict=True):
                hold.enter_context(svc.leases.hold(blob))
                path = "blobs/" + diff_id.replace(":", "/")
                size = _write_layer(svc, tf, path, blob, diff_id, written, now, tmp_dir)
                layers.append({"mediaType": mt.OCI_LAYER, "digest": diff_id, "size": size})
            cpath = "blobs/" + item.image_id.replace(":", "/")
            if cpath not in written:
                _add_bytes(tf, cpath, config, now)
                written.add(cpath)
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": item.image_id,
                           "size": len(config)},
                "layers": layers}, separators=(",", ":")).encode()
            mdigest = digest_bytes(manifest)
            mpath = "blobs/" + mdigest.replace(":", "/")
            if mpath not in written:
                _add_bytes(tf, mpath, manifest, now)
                written.add(mpath)
            desc = {"mediaType": mt.OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
            if item.tags:
                for t in item.tags:
                    index.append({**desc, "annotations": {
                        _IMAGE_NAME: t.repo_and_tag, _REF_NAME: t.tag}})
            else:
                index.append(desc)
            legacy.append({"Config": cpath,
                           "RepoTags": [t.familiar() for t in item.tags] or None,
                           "Layers": ["blobs/" + d.replace(":", "/") for d in diff_ids]})
        _add_bytes(tf, "index.json", json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index},
            separators=(",", ":")).encode() + b"\n", now)
        _add_bytes(tf, "manifest.json",
                   json.dumps(legacy, separators=(",", ":")).encode() + b"\n", now)
        _add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', now)
    tf.close()


def _write_layer(svc: ImageService, tf: tarfile.TarFile, path: str, blob: str, diff_id: str,
                 written: set[str], mtime: float, tmp_dir: str | None) -> int:
    """Add the layer (uncompressed) once; returns its size."""
    with svc.content.reader(blob) as f:
        head = f.read(6)
        f.seek(0)
        if detect_compression(head) is Compression.NONE:
            size = svc.content.info(blob).size
            if path not in written:
                tf.addfile(_info(path, size, mtime), f)
                written.add(path)
            return size
        with tempfile.TemporaryFile(dir=tmp_dir) as tmp:
            stream, _ = decompress(f)
            dg = Digester("sha256")
            while chunk := stream.read(_CHUNK):
                dg.update(chunk)
                tmp.write(chunk)
            if dg.digest() != diff_id:
                raise Internal(f"layer {blob}: uncompressed content is {dg.digest()}, "
                               f"expected {diff_id}")
            size = dg.size
            if path not in written:
                tmp.seek(0)
                tf.addfile(_info(path, size, mtime), tmp)
                written.add(path)
            return size


# -- load ---------------------------------------------------------------------------------

Emit = Callable[[dict[str, Any]], None]


class _Members:
    """The archive's regular files by name: small ones as bytes, big ones as blobs."""

    def __init__(self, svc: ImageService, hold: ExitStack) -> None:
        self.svc = svc
        self.hold = hold
        self.small: dict[str, bytes] = {}
        self.blobs: dict[str, tuple[str, int]] = {}
        self.links: dict[str, str] = {}
        self._in_memory = 0

    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = _norm(m.name)
        if not name:
            return
        if m.issym():
            self.links[name] = _norm(posixpath.join(posixpath.dirname(name), m.linkname))
            return
        if m.islnk():
            self.links[name] = _norm(m.linkname)
            return
        if not m.isreg():
            return
        f = tf.extractfile(m)
        assert f is not None
        if m.size <= _SMALL and self._in_memory + m.size <= _SMALL_TOTAL:
            data = f.read()
            if len(data) != m.size:
                raise InvalidArgument(f"invalid tar archive: {name} is truncated")
            self.small[name] = data
            self._in_memory += len(data)
            self.blobs.pop(name, None)
            return
        w = self.svc.content.writer(f"load-{uuid.uuid4().hex}")
        try:
            while chunk := f.read(_CHUNK):
                w.write(chunk)
            if w.size != m.size:
                raise InvalidArgument(f"invalid tar archive: {name} is truncated")
            digest = w.digest()
            self.hold.enter_context(self.svc.leases.hold(digest))
            try:
                w.commit(m.size, digest)
            except AlreadyExists:
                pass
        except BaseException:
            w.abort()
            raise
        self.blobs[name] = (digest, m.size)
        self.small.pop(name, None)

    def resolve(self, name: str) -> str:
        name = _norm(name)
        for _ in range(40):
            if name in self.small or name in self.blobs or name not in self.links:
                return name
            name = self.links[name]
        raise InvalidArgument(f"invalid tar archive: too many links at {name}")

    def has(self, name: str) -> bool:
        n = self.resolve(name)
        return n in self.small or n in self.blobs

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        n = self.resolve(name)
        if n in self.small:
            return self.small[n]
        if n in self.blobs:
            return read_blob(self.svc.content, self.blobs[n][0], limit)
        raise InvalidArgument(f"invalid archive: {name} not found")

    def blob(self, name: str) -> tuple[str, int]:
        """The member as a blob in the content store (written now if it was small)."""
        n = self.resolve(name)
        if n in self.blobs:
            return self.blobs[n]
        if n not in self.small:
            raise InvalidArgument(f"invalid archive: {name} not found")
        data = self.small[n]
        digest = digest_bytes(data)
        self.hold.enter_context(self.svc.leases.hold(digest))
        w = self.svc.content.writer(f"load-{uuid.uuid4().hex}")
        try:
            w.write(data)
            try:
                w.commit(len(data), digest)
            except AlreadyExists:
                pass
        except BaseException:
            w.abort()
            raise
        self.blobs[n] = (digest, len(data))
        return self.blobs[n]


def _norm(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return "" if n in (".", "") else n


@dataclass
class _Entry:
    config: str                   # member name of the config
    layers: list[str]             # member names of the layers, base first
    tags: list[str]


def _entries_from_manifest_json(mem: _Members) -> list[_Entry]:
    try:
        doc = json.loads(mem.read("manifest.json"))
    except ValueError as exc:
        raise InvalidArgument(f"invalid manifest.json: {exc}") from None
    if not isinstance(doc, list):
        raise InvalidArgument("invalid manifest.json: not a list")
    out = []
    for e in doc:
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str) or \
                not isinstance(e.get("Layers") or [], list):
            raise InvalidArgument("invalid manifest.json entry")
        out.append(_Entry(e["Config"], [str(x) for x in e.get("Layers") or []],
                          [str(t) for t in e.get("RepoTags") or []]))
    return out


def _blob_path(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidArgument(f"invalid digest in OCI layout: {digest!r}")
    return "blobs/" + digest.replace(":", "/")


def _entries_from_index(mem: _Members, platform: str) -> list[_Entry]:
    try:
        index = parse_manifest(mem.read("index.json"), mt.OCI_INDEX)
    except ValueError as exc:
        raise InvalidArgument(f"invalid index.json: {exc}") from None
    out: list[_Entry] = []
    for d in index.get("manifests") or []:
        desc = Descriptor.from_dict(d)
        ann = dict(desc.annotations or {})
        name = ann.get(_IMAGE_NAME) or ""
        ref_name = ann.get(_REF_NAME) or ""
        if not name and ref_name and ("/" in ref_name or ":" in ref_name):
            name = ref_name
        media, body = desc.media_type, mem.read(_blob_path(desc.digest))
        if digest_bytes(body) != desc.digest:
            raise InvalidArgument(f"invalid OCI layout: {desc.digest} does not match its content")
        depth = 0
        while media in mt.INDEXES:
            depth += 1
            if depth > 2:
                raise InvalidArgument("invalid OCI layout: indexes nested too deeply")
            child = select_platform(parse_manifest(body, media), platform or "linux/amd64")
            media, body = child.media_type, mem.read(_blob_path(child.digest))
        m = parse_manifest(body, media or mt.OCI_MANIFEST)
        out.append(_Entry(_blob_path(m["config"]["digest"]),
                          [_blob_path(x["digest"]) for x in m.get("layers") or []],
                          [name] if name else []))
    return out


def load_archive(svc: ImageService, stream: BinaryIO, emit: Emit, *,
                 platform: str = "") -> list[str]:
    """``docker load``: every image of the archive; emits ``{"stream": "Loaded image:
    x:tag\\n"}`` (or ``Loaded image ID: sha256:...``) per image. Returns the image ids.
    A malformed archive raises InvalidArgument; what was stored for it is collected."""
    try:
        return _load(svc, stream, emit, platform)
    except BaseException:
        svc._gc_quietly()
        raise


def _load(svc: ImageService, stream: BinaryIO, emit: Emit, platform: str) -> list[str]:
    ids: list[str] = []
    with ExitStack() as hold:
        mem = _Members(svc, hold)
        try:
            tf = tarfile.open(fileobj=stream, mode="r|*")
            for m in tf:
                mem.add(tf, m)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidArgument(f"invalid tar archive: {exc}") from None
        if mem.has("manifest.json"):
            entries = _entries_from_manifest_json(mem)
        elif mem.has("index.json"):
            entries = _entries_from_index(mem, platform)
        else:
            raise InvalidArgument("invalid archive: no manifest.json or index.json in it")
        for e in entries:
            ids.append(_load_one(svc, mem, e, hold, emit))
    return ids


def _load_one(svc: ImageService, mem: _Members, e: _Entry, hold: ExitStack,
              emit: Emit) -> str:
    config = mem.read(e.config)
    base = posixpath.basename(e.config)
    if e.config.startswith("blobs/") and digest_bytes(config) != f"sha256:{base}":
        raise InvalidArgument(f"invalid archive: {e.config} does not match its digest")
    try:
        cfg = json.loads(config)
    except ValueError as exc:
        raise InvalidArgument(f"invalid image config {e.config}: {exc}") from None
    if not isinstance(cfg, dict):
        raise InvalidArgument(f"invalid image config {e.config}")
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(e.layers):
        raise InvalidArgument("invalid manifest, layers length mismatch: expected "
                              f"{len(diff_ids)}, got {len(e.layers)}")
    refs = [_tag(t) for t in e.tags]
    unpacked: list[UnpackedLayer] = []
    descs: list[dict[str, Any]] = []
    parent = ""
    for path, diff_id in zip(e.layers, diff_ids, strict=True):
        digest, size = mem.blob(path)
        with svc.content.reader(digest) as f:
            kind = detect_compression(f.read(6))
        media = {Compression.GZIP: mt.OCI_LAYER_GZIP,
                 Compression.ZSTD: mt.OCI_LAYER_ZSTD}.get(kind, mt.OCI_LAYER)
        if kind in (Compression.BZIP2, Compression.XZ):
            raise InvalidArgument(f"layer {path}: {kind.value} layers are not supported")
        layer = svc.unpacker.unpack_layer(LayerSource(digest, media, str(diff_id)), parent, hold)
        if layer.diff_id != diff_id:
            raise InvalidArgument(f"layer {path}: diff id {layer.diff_id}, expected {diff_id}")
        unpacked.append(layer)
        descs.append({"mediaType": media, "digest": digest, "size": size})
        parent = layer.chain_id
    moved: dict[str, str] = {}
    image_id = svc.create_image(cfg, descs, chain=parent, size=sum(u.size for u in unpacked),
                                refs=refs, config_bytes=config, moved=moved)
    for r in refs:
        old = moved.get(r.familiar())
        if old and old != image_id:
            emit({"stream": f"The image {r.familiar()} already exists, renaming the old one "
                            f"with ID {old} to empty string\n"})
        emit({"stream": f"Loaded image: {r.familiar()}\n"})
    if not refs:
        emit({"stream": f"Loaded image ID: {image_id}\n"})
    return image_id


def _tag(name: str) -> Reference:
    try:
        r = parse_normalized(name)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid tag {name!r} in archive: {exc.message}") from None
    if r.digest:
        raise InvalidArgument(f"invalid tag {name!r} in archive: a digest reference")
    return r.with_default_tag()

