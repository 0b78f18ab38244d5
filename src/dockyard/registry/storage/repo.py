"""Registry logic written once on top of any ``StorageDriver``: blobs, links, uploads,
manifests, tags, referrers. The layout is ``paths.py``'s; failures are ``RegistryError``s.

Everything here is synchronous and thread-safe. The HTTP layer runs the calls that move
bulk data or fsync (uploads, commits, manifest PUTs) in worker threads and the small reads
inline.

Uploads: ``start_upload`` makes ``_uploads/<uuid>/``; ``open_upload`` returns an
``UploadWriter`` appending to its ``data`` while hashing; ``commit_upload(uuid, digest)``
checks the digest, fsyncs, and *moves* the data into ``blobs/`` (or drops it when the blob is
already there: another repository or a concurrent upload stored it first), then links it
into the repository. The running hash lives in memory; after a restart the first use of an
upload rehashes its data, so uploads survive a restart at the cost of one read.
"""

from __future__ import annotations

import json
import threading
import uuid as uuid_mod
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digester, digest_bytes

from .. import errcodes
from ..errcodes import RegistryError
from ..names import check_digest, check_tag
from . import paths
from .driver import FileWriter, InvalidOffset, PathNotFound, StorageDriver
from .manifest import ManifestInfo, media_type_of, parse_manifest

__all__ = [
    "MAX_MANIFEST_SIZE", "LayoutVersionError", "Manifest", "Registry", "Repository",
    "UploadWriter", "ensure_layout", "parse_rfc3339", "referrers_index",
]

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class _UploadState:
    digester: Digester | None = None  # None: unknown (after a restart or a failed write)
    busy: bool = False


class UploadWriter:
    """Appends to one upload while hashing. ``close()`` exactly once (keeps the bytes)."""

    def __init__(self, reg: Registry, key: tuple[str, str], state: _UploadState,
                 fw: FileWriter) -> None:
        self._reg, self._key, self._state, self._fw = reg, key, state, fw

    @property
    def size(self) -> int:
        return self._fw.size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            n = self._fw.write(data)
        except BaseException:
            self._state.digester = None  # the file may hold part of data: rehash next time
            raise
        if self._state.digester is not None:
            self._state.digester.update(memoryview(data))
        return n

    def close(self) -> None:
        try:
            self._fw.close()
        finally:
            self._reg._release_upload(self._key)


class Registry:
    """The whole registry over one driver. ``repository(name)`` gives one repository."""

    def __init__(self, driver: StorageDriver, *, manifest_cache_bytes: int = 64 << 20) -> None:
        self.driver = driver
        self._lock = threading.Lock()
        self._uploads: dict[tuple[str, str], _UploadState] = {}
        self._cache: OrderedDict[str, Manifest] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = manifest_cache_bytes

    def repository(self, name: str) -> Repository:
        """``name`` must be valid (``names.check_name``)."""
        return Repository(self, name)

    def catalog(self) -> list[str]:
        """Every repository that holds a manifest or a blob, sorted."""
        out: list[str] = []

        def visit(path: str, name: str) -> None:
            try:
                children = self.driver.list(path)
            except PathNotFound:
                return
            bases = [c.rsplit("/", 1)[1] for c in children]
            if name and ("_manifests" in bases or "_layers" in bases):
                out.append(name)
            for child, base in zip(children, bases, strict=True):
                if not base.startswith("_"):
                    visit(child, f"{name}/{base}" if name else base)

        visit(paths.REPOSITORIES, "")
        return sorted(out)

    def blob_size(self, digest: str) -> int | None:
        try:
            return self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            return None

    # --- manifest cache (content is immutable by digest; visibility is checked by the caller)

    def _cached(self, digest: str) -> Manifest | None:
        with self._lock:
            m = self._cache.get(digest)
            if m is not None:
                self._cache.move_to_end(digest)
            return m

    def _remember(self, m: Manifest) -> None:
        if m.size > self._cache_limit:
            return
        with self._lock:
            if m.digest in self._cache:
                return
            self._cache[m.digest] = m
            self._cache_bytes += m.size
            while self._cache_bytes > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.size

    # --- upload bookkeeping

    def _acquire_upload(self, key: tuple[str, str]) -> _UploadState:
        with self._lock:
            state = self._uploads.setdefault(key, _UploadState())
            if state.busy:
                raise RegistryError(errcodes.BLOB_UPLOAD_INVALID, {"uuid": key[1]},
                                    message="upload is in use by another request")
            state.busy = True
            return state

    def _release_upload(self, key: tuple[str, str]) -> None:
        with self._lock:
            state = self._uploads.get(key)
            if state is not None:
                state.busy = False

    def _forget_upload(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._uploads.pop(key, None)

    def hash_file(self, path: str, algorithm: str = "sha256") -> Digester:
        d = Digester(algorithm)
        with self.driver.reader(path) as f:
            while chunk := f.read(_HASH_CHUNK):
                d.update(chunk)
        return d


class Repository:
    def __init__(self, reg: Registry, name: str) -> None:
        self.reg = reg
        self.driver = reg.driver
        self.name = name

    def exists(self) -> bool:
        for sub in ("_manifests", "_layers", "_uploads"):
            try:
                self.driver.stat(f"{paths.repo_dir(self.name)}/{sub}")
                return True
            except PathNotFound:
                continue
        return False

    def _has(self, path: str) -> bool:
        try:
            self.driver.stat(path)
            return True
        except PathNotFound:
            return False

    # --- blobs

    def blob_size(self, digest: str) -> int:
        """Size of a blob this repository may serve; ``BLOB_UNKNOWN`` otherwise."""
        check_digest(digest)
        if self._has(paths.layer_link(self.name, digest)):
            size = self.reg.blob_size(digest)
            if size is not None:
                return size
        raise RegistryError(errcodes.BLOB_UNKNOWN, {"digest": digest})

    def blob_local_path(self, digest: str) -> str | None:
        return self.driver.local_path(paths.blob_data(digest))

    def open_blob(self, digest: str, offset: int = 0) -> BinaryIO:
        self.blob_size(digest)
        try:
            return self.driver.reader(paths.blob_data(digest), offset)
        except PathNotFound:
            raise RegistryError(errcodes.BLOB_UNKNOWN, {"digest": digest}) from None
        except InvalidOffset:
            raise RegistryError(errcodes.RANGE_INVALID, {"offset": offset}) from None

    def delete_blob(self, digest: str) -> None:
        """Unlink the blob from this repository; the bytes go at the next garbage-collect."""
        check_digest(digest)
        try:
            self.driver.delete(paths.layer_link(self.name, digest).removesuffix("/link"))
        except PathNotFound:
            raise RegistryError(errcodes.BLOB_UNKNOWN, {"digest": digest}) from None

    def link_blob(self, digest: str) -> None:
        self.driver.put_content(paths.layer_link(self.name, digest), digest.encode())

    def mount_blob(self, digest: str, source: Repository) -> int | None:
        """Link ``source``'s blob here; its size, or ``None`` if ``source`` cannot serve it."""
        try:
            size = source.blob_size(digest)
        except RegistryError:
            return None
        if not self._has(paths.layer_link(self.name, digest)):
            self.link_blob(digest)
        return size

    # --- uploads

    def start_upload(self) -> str:
        uuid = uuid_mod.uuid4().hex
        self.driver.put_content(paths.upload_startedat(self.name, uuid), _now_rfc3339().encode())
        self.driver.writer(paths.upload_data(self.name, uuid)).close()
        with self.reg._lock:
            self.reg._uploads[(self.name, uuid)] = _UploadState(Digester())
        return uuid

    def _check_uuid(self, uuid: str) -> None:
        if not (len(uuid) == 32 and all(c in "0123456789abcdef" for c in uuid)):
            raise RegistryError(errcodes.BLOB_UPLOAD_UNKNOWN, {"uuid": uuid})

    def upload_size(self, uuid: str) -> int:
        self._check_uuid(uuid)
        try:
            return self.driver.stat(paths.upload_data(self.name, uuid)).size
        except PathNotFound:
            raise RegistryError(errcodes.BLOB_UPLOAD_UNKNOWN, {"uuid": uuid}) from None

    def upload_started(self, uuid: str) -> str:
        self._check_uuid(uuid)
        try:
            return self.driver.get_content(paths.upload_startedat(self.name, uuid)).decode()
        except PathNotFound:
            raise RegistryError(errcodes.BLOB_UPLOAD_UNKNOWN, {"uuid": uuid}) from None

    def open_upload(self, uuid: str) -> UploadWriter:
        """Append to the upload (``BLOB_UPLOAD_UNKNOWN``; ``BLOB_UPLOAD_INVALID`` if another
        request is writing it). Rehashes the bytes so far if their hash is not in memory."""
        self._check_uuid(uuid)
        key = (self.name, uuid)
        state = self.reg._acquire_upload(key)
        try:
            data = paths.upload_data(self.name, uuid)
            try:
                fw = self.driver.writer(data, append=True)
            except PathNotFound:
                self.reg._forget_upload(key)
                raise RegistryError(errcodes.BLOB_UPLOAD_UNKNOWN, {"uuid": uuid}) from None
            if state.digester is None or state.digester.size != fw.size:
                try:
                    state.digester = self.reg.hash_file(data)
                except BaseException:
                    fw.close()
                    raise
            return UploadWriter(self.reg, key, state, fw)
        except BaseException:
            self.reg._release_upload(key)
            raise

    def commit_upload(self, uuid: str, digest: str) -> int:
        """Turn the upload into blob ``digest`` of this repository; its size.

        ``DIGEST_INVALID`` if the bytes do not hash to ``digest`` (the upload is then
        cancelled, as distribution does); ``BLOB_UPLOAD_UNKNOWN``.
        """
        check_digest(digest)
        self._check_uuid(uuid)
        key = (self.name, uuid)
        state = self.reg._acquire_upload(key)
        data = paths.upload_data(self.name, uuid)
        try:
            try:
                size = self.driver.stat(data).size
            except PathNotFound:
                self.reg._forget_upload(key)
                raise RegistryError(errcodes.BLOB_UPLOAD_UNKNOWN, {"uuid": uuid}) from None
            alg = digest.split(":", 1)[0]
            d = state.digester
            if d is None or d.size != size or d.algorithm != alg:
                d = self.reg.hash_file(data, alg)
            if d.digest() != digest:
                self._remove_upload(uuid)
                raise RegistryError(errcodes.DIGEST_INVALID, {"digest": digest, "size": size})
            if self.reg.blob_size(digest) is None:
                self.driver.writer(data, append=True).commit()  # fsync before it is visible
                self.driver.move(data, paths.blob_data(digest))
            self.link_blob(digest)
            self._remove_upload(uuid)
            return size
        finally:
            self.reg._release_upload(key)

    def cancel_upload(self, uuid: str) -> None:
        self.upload_size(uuid)
        self._remove_upload(uuid)

    def _remove_upload(self, uuid: str) -> None:
        try:
            self.driver.delete(paths.upload_dir(self.name, uuid))
        except PathNotFound:
            pass
        self.reg._forget_upload((self.name, uuid))

    # --- manifests

    def _resolve(self, reference: str) -> str:
        """Tag or digest → digest of a manifest of this repository; ``MANIFEST_UNKNOWN``."""
        if ":" in reference:
            digest = check_digest(reference)
        else:
            check_tag(reference)
            try:
                digest = self.driver.get_content(paths.tag_link(self.name, reference)).decode()
            except PathNotFound:
                raise RegistryError(errcodes.MANIFEST_UNKNOWN, {"tag": reference}) from None
        if not self._has(paths.manifest_revision_link(self.name, digest)):
            raise RegistryError(errcodes.MANIFEST_UNKNOWN, {"digest": digest})
        return digest

    def get_manifest(self, reference: str) -> Manifest:
        digest = self._resolve(reference)
        m = self.reg._cached(digest)
        if m is None:
            try:
                data = self.driver.get_content(paths.blob_data(digest))
            except PathNotFound:
                raise RegistryError(errcodes.MANIFEST_UNKNOWN, {"digest": digest}) from None
            m = Manifest(digest, media_type_of(data), data)
            self.reg._remember(m)
        return m

    def put_manifest(self, reference: str, data: bytes, content_type: str | None = None,
                     tags: Iterable[str] = ()) -> tuple[Manifest, ManifestInfo]:
        """Store a manifest under a tag or its digest (plus ``tags``); the exact bytes."""
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError(errcodes.MANIFEST_TOO_LARGE,
                                {"size": len(data), "limit": MAX_MANIFEST_SIZE})
        all_tags = [check_tag(t) for t in tags]
        if ":" in reference:
            alg = check_digest(reference).split(":", 1)[0]
        else:
            alg = "sha256"
            all_tags.insert(0, check_tag(reference))
        info = parse_manifest(data, content_type)
        digest = digest_bytes(data, alg)
        if ":" in reference and digest != reference:
            raise RegistryError(errcodes.DIGEST_INVALID, {"digest": reference, "actual": digest})
        for desc in info.blobs:
            if not desc.foreign and not self._has_blob(desc.digest):
                raise RegistryError(errcodes.MANIFEST_BLOB_UNKNOWN, {"digest": desc.digest})
        for desc in info.children:
            if not self._has(paths.manifest_revision_link(self.name, desc.digest)):
                raise RegistryError(errcodes.MANIFEST_BLOB_UNKNOWN, {"digest": desc.digest})
        # order matters for crash safety: bytes, then what makes them visible
        if self.reg.blob_size(digest) is None:
            self.driver.put_content(paths.blob_data(digest), data)
        self.driver.put_content(paths.manifest_revision_link(self.name, digest), digest.encode())
        if info.subject is not None:
            self.driver.put_content(
                paths.referrer_link(self.name, info.subject.digest, digest), digest.encode())
        for tag in dict.fromkeys(all_tags):
            self.driver.put_content(paths.tag_link(self.name, tag), digest.encode())
        m = Manifest(digest, info.media_type, data)
        self.reg._remember(m)
        return m, info

    def _has_blob(self, digest: str) -> bool:
        return (self._has(paths.layer_link(self.name, digest))
                and self.reg.blob_size(digest) is not None)

    def delete_manifest(self, reference: str) -> None:
        """By tag: untag. By digest: forget the manifest, the tags on it and its referrer
        entry (the bytes go at the next garbage-collect)."""
        if ":" not in reference:
            check_tag(reference)
            try:
                self.driver.delete(paths.tag_dir(self.name, reference))
            except PathNotFound:
                raise RegistryError(errcodes.MANIFEST_UNKNOWN, {"tag": reference}) from None
            return
        m = self.get_manifest(reference)
        for tag in self._tags_pointing_to(m.digest):
            try:
                self.driver.delete(paths.tag_dir(self.name, tag))
            except PathNotFound:
                pass
        try:
            info = parse_manifest(m.data)
        except RegistryError:
            info = None
        if info is not None and info.subject is not None:
            try:
                self.driver.delete(paths.referrer_link(self.name, info.subject.digest, m.digest)
                                   .removesuffix("/link"))
            except PathNotFound:
                pass
        try:
            self.driver.delete(
                paths.manifest_revision_link(self.name, m.digest).removesuffix("/link"))
        except PathNotFound:
            raise RegistryError(errcodes.MANIFEST_UNKNOWN, {"digest": m.digest}) from None

    def _tags_pointing_to(self, digest: str) -> Iterator[str]:
        for tag in self._tag_names():
            try:
                if self.driver.get_content(paths.tag_link(self.name, tag)).decode() == digest:
                    yield tag
            except PathNotFound:
                continue

    def _tag_names(self) -> list[str]:
        try:
            return [p.rsplit("/", 1)[1] for p in self.driver.list(paths.tags_dir(self.name))]
        except PathNotFound:
            return []

    def tags(self) -> list[str]:
        """Sorted tags; ``NAME_UNKNOWN`` if the repository does not exist."""
        names = self._tag_names()
        if not names and not self.exists():
            raise RegistryError(errcodes.NAME_UNKNOWN, {"name": self.name})
        return sorted(names)

    def referrers(self, subject: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose ``subject`` is ``subject``, sorted by digest."""
        check_digest(subject)
        base = paths.referrers_dir(self.name, subject)
        digests: list[str] = []
        try:
            for alg_dir in self.driver.list(base):
                alg = alg_dir.rsplit("/", 1)[1]
                digests += [f"{alg}:{p.rsplit('/', 1)[1]}" for p in self.driver.list(alg_dir)]
        except PathNotFound:
            pass
        out = []
        for digest in sorted(digests):
            try:
                m = self.get_manifest(digest)
                info = parse_manifest(m.data)
            except RegistryError:
                continue
            if artifact_type is not None and info.artifact_type != artifact_type:
                continue
            desc: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": m.size}
            if info.artifact_type:
                desc["artifactType"] = info.artifact_type
            if info.annotations:
                desc["annotations"] = info.annotations
            out.append(desc)
        return out


class LayoutVersionError(Exception):
    pass


def ensure_layout(driver: StorageDriver) -> None:
    """Stamp an empty root with ``paths.LAYOUT_VERSION``; refuse a root of another version
    (a future layout change adds its migration here)."""
    try:
        found = driver.get_content(paths.LAYOUT_VERSION_FILE).decode().strip()
    except PathNotFound:
        driver.put_content(paths.LAYOUT_VERSION_FILE, f"{paths.LAYOUT_VERSION}\n".encode())
        return
    if found != str(paths.LAYOUT_VERSION):
        raise LayoutVersionError(
            f"storage layout version {found}, this registry knows {paths.LAYOUT_VERSION}")


def referrers_index(descriptors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                       "manifests": descriptors}).encode()


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(s: str) -> float | None:
    try:
        return datetime.strptime(s.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
