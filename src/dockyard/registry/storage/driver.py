"""The storage driver contract: a small file system addressed by paths.

The registry logic (``repo.py``) is written once on top of this Protocol; a driver knows
nothing about blobs, tags or uploads, only paths and bytes (distribution's
``storagedriver.StorageDriver``). ``tests/conformance/test_storage_driver.py`` runs the same
suite on every implementation.

Vocabulary:

* ``path``: ``/`` followed by components of ``[A-Za-z0-9._-]``, never ``.`` or ``..``
  (``/blobs/sha256/ab/ab12.../data``). ``check_path`` is the one place that validates it, and
  every driver method calls it first (``InvalidPath`` otherwise). ``/`` itself is the root.
* a *file* has bytes; a *directory* exists as long as something is below it, and is created
  implicitly by writing a file under it.

Errors: ``PathNotFound`` (nothing at that path), ``InvalidPath``, ``InvalidOffset``; all are
``StorageError``. Anything else (``OSError``) is a failure of the medium.

Concurrency: every method may be called from several threads at once. ``put_content`` and
``move`` replace the target in one step: a reader sees the old content or the new, never a mix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = [
    "FileInfo", "FileWriter", "InvalidOffset", "InvalidPath", "PathNotFound", "StorageDriver",
    "StorageError", "check_path",
]


class StorageError(Exception):
    """Base of the driver errors; ``path`` names the path that failed."""

    def __init__(self, path: str, reason: str = "") -> None:
        self.path = path
        super().__init__(f"{reason or type(self).__name__}: {path}")


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "path not found")


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "invalid path")


class InvalidOffset(StorageError):
    def __init__(self, path: str, offset: int) -> None:
        self.offset = offset
        super().__init__(path, f"invalid offset {offset}")


_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._-]+)+")


def check_path(path: str, root_ok: bool = False) -> str:
    """Return ``path`` if it is a valid driver path, else raise ``InvalidPath``."""
    if root_ok and path == "/":
        return path
    if _PATH_RE.fullmatch(path) is None or any(p in (".", "..") for p in path.split("/")):
        raise InvalidPath(path)
    return path


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int  # 0 for a directory
    mtime: float  # seconds since the epoch
    is_dir: bool


class FileWriter(Protocol):
    """Bytes appended to one file. Finish with exactly one of ``close``, ``commit``, ``cancel``.

    * ``size``: bytes in the file, including what was there when it was opened to append.
    * ``write(data)``: append all of ``data``, return its length.
    * ``close()``: stop writing; the bytes stay and a later ``writer(path, append=True)``
      continues after them. Not necessarily durable.
    * ``commit()``: the file is complete: flushed to stable storage before it returns, and
      read-only from then on where the medium has permissions.
    * ``cancel()``: forget the file (it is removed).
    """

    @property
    def size(self) -> int: ...

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def close(self) -> None: ...

    def commit(self) -> None: ...

    def cancel(self) -> None: ...


@runtime_checkable
class StorageDriver(Protocol):
    """A file system addressed by ``check_path`` paths (see the module docstring)."""

    name: str

    def get_content(self, path: str) -> bytes:
        """The whole file. ``PathNotFound`` if there is no file at ``path``."""
        ...

    def put_content(self, path: str, data: bytes) -> None:
        """Create or replace the file atomically (and durably), creating its parents."""
        ...

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        """An open binary stream positioned at ``offset``; the caller closes it.
        ``PathNotFound``; ``InvalidOffset`` if ``offset`` is negative or past the end."""
        ...

    def writer(self, path: str, append: bool = False) -> FileWriter:
        """Write ``path`` from empty, or continue it with ``append=True``
        (``PathNotFound`` if it does not exist then)."""
        ...

    def stat(self, path: str) -> FileInfo:
        """``PathNotFound`` if nothing (file or directory) is at ``path``."""
        ...

    def list(self, path: str) -> list[str]:
        """Full paths of the direct children of directory ``path``, sorted.
        ``PathNotFound`` if ``path`` is not a directory."""
        ...

    def move(self, src: str, dst: str) -> None:
        """Rename file ``src`` to ``dst`` in one step, replacing ``dst``, creating its parents.
        ``PathNotFound`` if ``src`` does not exist."""
        ...

    def delete(self, path: str) -> None:
        """Remove the file, or the directory and everything below it. ``PathNotFound``."""
        ...

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file and directory below ``path`` (not ``path`` itself), depth first, each
        directory's entries sorted. ``PathNotFound`` if ``path`` is not a directory."""
        ...

    def local_path(self, path: str) -> str | None:
        """A local file name holding the file's bytes, for ``sendfile``; ``None`` if the
        driver has none (the caller then streams ``reader``)."""
        ...
