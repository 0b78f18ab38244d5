"""The filesystem content store.

Layout (``root`` is ``<data-root>/content``)::

    <root>/
      blobs/
        sha256/<hex>            one file per committed blob, mode 0444, never rewritten
        sha512/<hex>            (only if a caller committed with a sha512 expected digest)
      ingest/
        <sha256(ref)[:32]>/     one directory per in-flight write
          data                  the bytes written so far
          ref                   the writer's ref, for humans and the cleaner
          startedat             unix time the write started

A write goes to ``ingest/<id>/data``. ``commit`` fsyncs it, checks the size and the digest,
makes it read-only and *links* it to ``blobs/<alg>/<hex>`` (a link never overwrites, so two
writers of the same blob cannot clobber each other), fsyncs the directory, then removes the
ingest directory. A blob is therefore visible only once verified and complete. Writes do not
survive a restart: ``LocalContentStore`` removes every ingest directory when it opens, so a
half-written blob after a crash is never seen and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.content.store import Info
from dockyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from dockyard.oci.digest import Digester, parse_digest
from dockyard.util.atomicfile import fsync_dir

__all__ = ["LocalContentStore", "LocalWriter"]

_CHUNK = 1 << 20


class LocalContentStore:
    """``ContentStore`` on a local directory. Thread-safe; one instance per root."""

    def __init__(self, root: str | os.PathLike[str], *, clean_ingest: bool = True) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._ingest = self.root / "ingest"
        (self._blobs / "sha256").mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._active: set[str] = set()
        if clean_ingest:
            self.clean_ingests()

    # -- paths -------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        alg, hexpart = parse_digest(digest)
        return self._blobs / alg / hexpart

    @staticmethod
    def _ingest_id(ref: str) -> str:
        return hashlib.sha256(ref.encode()).hexdigest()[:32]

    # -- Provider / Manager ------------------------------------------------------------

    def info(self, digest: str) -> Info:
        p = self.blob_path(digest)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return Info(digest=digest, size=st.st_size, created=st.st_mtime)

    def reader(self, digest: str) -> BinaryIO:
        p = self.blob_path(digest)
        try:
            return open(p, "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def delete(self, digest: str) -> None:
        p = self.blob_path(digest)
        try:
            p.unlink()
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def walk(self) -> Iterator[Info]:
        for algdir in sorted(self._blobs.iterdir()):
            if not algdir.is_dir():
                continue
            for f in algdir.iterdir():
                digest = f"{algdir.name}:{f.name}"
                try:
                    parse_digest(digest)
                    st = f.stat()
                except (InvalidArgument, FileNotFoundError):
                    continue
                yield Info(digest=digest, size=st.st_size, created=st.st_mtime)

    # -- Ingester ----------------------------------------------------------------------

    def writer(self, ref: str) -> "LocalWriter":
        if not ref:
            raise InvalidArgument("content writer: empty ref")
        with self._lock:
            if ref in self._active:
                raise Unavailable(f"content ref {ref!r} is locked by another writer")
            self._active.add(ref)
        try:
            d = self._ingest / self._ingest_id(ref)
            if d.exists():
                shutil.rmtree(d)
            d.mkdir()
            (d / "ref").write_text(ref)
            (d / "startedat").write_text(str(time.time()))
            f = open(d / "data", "wb")
        except BaseException:
            self._release(ref)
            raise
        return LocalWriter(self, ref, d, f)

    def _release(self, ref: str) -> None:
        with self._lock:
            self._active.discard(ref)

    def active_refs(self) -> list[str]:
        with self._lock:
            return sorted(self._active)

    def clean_ingests(self) -> int:
        """Remove every ingest directory not held by a live writer of this instance."""
        with self._lock:
            live = {self._ingest_id(r) for r in self._active}
        n = 0
        for d in self._ingest.iterdir():
            if d.name in live:
                continue
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.unlink(missing_ok=True)
            n += 1
        return n


class LocalWriter:
    """A write into ``ingest/<id>/data``; see ``dockyard.content.store.Writer``."""

    def __init__(self, store: LocalContentStore, ref: str, dir: Path, f: BinaryIO) -> None:
        self.ref = ref
        self._store = store
        self._dir = dir
        self._f: BinaryIO | None = f
        self._digester = Digester("sha256")

    @property
    def size(self) -> int:
        return self._digester.size

    def _file(self) -> BinaryIO:
        if self._f is None:
            raise FailedPrecondition(f"content writer {self.ref!r} is closed")
        return self._f

    def write(self, data: bytes | bytearray | memoryview) -> int:
        f = self._file()
        f.write(data)
        self._digester.update(data)
        return len(data)

    def digest(self) -> str:
        return self._digester.digest()

    def commit(self, expected_size: int = 0, expected_digest: str = "") -> Info:
        f = self._file()
        try:
            f.flush()
            os.fsync(f.fileno())
            size = self._digester.size
            if expected_size > 0 and size != expected_size:
                raise FailedPrecondition(
                    f"content {self.ref!r}: unexpected commit size {size}, "
                    f"expected {expected_size}")
            digest = self._digester.digest()
            if expected_digest:
                alg, _ = parse_digest(expected_digest)
                if alg != "sha256":
                    digest = self._rehash(alg)
                if digest != expected_digest:
                    raise FailedPrecondition(
                        f"content {self.ref!r}: unexpected commit digest {digest}, "
                        f"expected {expected_digest}")
            os.fchmod(f.fileno(), 0o444)
            f.close()
            self._f = None
            target = self._store.blob_path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self._dir / "data", target)
            except FileExistsError:
                raise AlreadyExists(f"content {digest}: already exists") from None
            fsync_dir(target.parent)
            return Info(digest=digest, size=size, created=target.stat().st_mtime)
        finally:
            self._close()

    def _rehash(self, alg: str) -> str:
        d = Digester(alg)
        with open(self._dir / "data", "rb") as r:
            while chunk := r.read(_CHUNK):
                d.update(chunk)
        return d.digest()

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            finally:
                self._f = None
        if self._dir.exists():
            shutil.rmtree(self._dir, ignore_errors=True)
        self._store._release(self.ref)

    def __enter__(self) -> "LocalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
