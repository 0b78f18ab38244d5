"""The content store contract: immutable blobs addressed by digest.

Vocabulary (used by every implementation and caller):

* ``digest`` — ``algorithm:hex`` of a blob's bytes (``sha256:ab12...``); the blob's only name.
* ``ref`` — a caller-chosen name for one in-flight write (``"import-<uuid>"``,
  ``"layer-sha256:..."``). Two writers may not hold the same ref at once.
* a blob is *visible* (``info``, ``reader``, ``walk``) only after ``commit`` checked its size
  and digest. It never changes afterwards; ``delete`` is the only way it goes away.

The store is composed of narrow parts, as containerd's ``content.Store`` is: a consumer that
only reads asks for a ``Provider``; one that writes asks for an ``Ingester``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from dockyard.errors import AlreadyExists, InvalidArgument

__all__ = [
    "ContentStore",
    "Info",
    "Ingester",
    "Manager",
    "Provider",
    "Writer",
    "read_blob",
    "write_blob",
]


@dataclass(frozen=True)
class Info:
    digest: str
    size: int
    created: float      # unix time the blob became visible


@runtime_checkable
class Writer(Protocol):
    """One in-flight write. Bytes go in with ``write``; ``commit`` makes them a blob.

    After ``commit`` or ``abort`` the writer is closed; using it again raises
    ``FailedPrecondition``.
    """

    ref: str

    @property
    def size(self) -> int:
        """Bytes written so far."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def digest(self) -> str:
        """Digest of the bytes written so far."""

    def commit(self, expected_size: int = 0, expected_digest: str = "") -> Info:
        """Verify and publish the blob.

        ``expected_size`` (> 0) and ``expected_digest`` (non-empty) are checked first: a
        mismatch raises ``FailedPrecondition`` and discards the data. If a blob with that
        digest exists already, the data is discarded and ``AlreadyExists`` is raised (the
        blob is there: callers usually treat that as success).
        """

    def abort(self) -> None:
        """Discard the data; nothing becomes visible. Idempotent."""


class Provider(Protocol):
    def info(self, digest: str) -> Info:
        """NotFound if the blob is not (yet) visible; InvalidArgument for a malformed digest."""

    def reader(self, digest: str) -> BinaryIO:
        """An open binary file positioned at 0 (the caller closes it); NotFound if missing."""


class Ingester(Protocol):
    def writer(self, ref: str) -> Writer:
        """Start a write under ``ref``; Unavailable if another writer holds ``ref``."""


class Manager(Protocol):
    def info(self, digest: str) -> Info: ...

    def delete(self, digest: str) -> None:
        """Remove a blob; NotFound if it is not there."""

    def walk(self) -> Iterator[Info]:
        """Every visible blob, in no particular order."""


class ContentStore(Provider, Ingester, Manager, Protocol):
    """Provider + Ingester + Manager."""


def write_blob(store: Ingester, ref: str, chunks: bytes | Iterable[bytes],
               expected_digest: str = "", expected_size: int = 0) -> tuple[Info | None, str]:
    """Write ``chunks`` as one blob. Returns ``(info, digest)``; ``info`` is None when the
    blob existed already (AlreadyExists from commit is absorbed). Any other failure aborts
    the write and propagates."""
    w = store.writer(ref)
    try:
        if isinstance(chunks, (bytes, bytearray, memoryview)):
            w.write(chunks)
        else:
            for c in chunks:
                w.write(c)
        try:
            return w.commit(expected_size, expected_digest), w.digest()
        except AlreadyExists:
            return None, w.digest()
    except BaseException:
        w.abort()
        raise


def read_blob(store: Provider, digest: str, limit: int = 64 << 20) -> bytes:
    """The whole blob as bytes (for configs and manifests; refuses more than ``limit``)."""
    info = store.info(digest)
    if info.size > limit:
        raise InvalidArgument(f"blob {digest} is too large to read into memory ({info.size} bytes)")
    with store.reader(digest) as f:
        return f.read()
