"""The local-disk ``StorageDriver``: driver path ``/a/b`` is the file ``<root>/a/b``.

``put_content`` writes a temp file in the same directory, fsyncs it, renames it over the
target and fsyncs the directory (``util.atomicfile``'s recipe, with a temp name unique per
call rather than per process, because threads of one registry write the same link at once).
Temp files are named ``.tmp-*`` and are invisible to ``list`` and ``walk``. ``move`` is
``rename(2)`` plus an fsync of the target directory, so a file moved into place is there
after a crash or not at all. A committed writer is fsynced and made read-only.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.util.atomicfile import fsync_dir

from .driver import FileInfo, InvalidOffset, PathNotFound, check_path

__all__ = ["FilesystemDriver"]

_TMP_PREFIX = ".tmp-"


def _makedirs(path: str) -> None:
    """``mkdir -p``, fsyncing the parent of every directory it makes: a file renamed into a
    new directory must not vanish with that directory after a crash."""
    if os.path.isdir(path):
        return
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    os.makedirs(path, exist_ok=True)
    for made in reversed(missing):
        fsync_dir(os.path.dirname(made))


class _Writer:
    def __init__(self, driver: FilesystemDriver, path: str, append: bool) -> None:
        self._file = driver._full(path)
        flags = os.O_WRONLY | os.O_CLOEXEC
        if append:
            try:
                self._fd = os.open(self._file, flags | os.O_APPEND)
            except FileNotFoundError:
                raise PathNotFound(path) from None
            self._size = os.fstat(self._fd).st_size
        else:
            _makedirs(os.path.dirname(self._file))
            self._fd = os.open(self._file, flags | os.O_CREAT | os.O_TRUNC, 0o644)
            self._size = 0
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise ValueError("write to a finished writer")
        view = memoryview(data)
        total = len(view)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += total
        return total

    def _finish(self) -> None:
        if self._done:
            raise ValueError("writer already finished")
        self._done = True
        os.close(self._fd)

    def close(self) -> None:
        self._finish()

    def commit(self) -> None:
        try:
            os.fsync(self._fd)
            os.fchmod(self._fd, 0o444)  # committed content is immutable (STYLE.md §3.7)
        finally:
            self._finish()

    def cancel(self) -> None:
        self._finish()
        try:
            os.unlink(self._file)
        except FileNotFoundError:
            pass


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _full(self, path: str, root_ok: bool = False) -> str:
        check_path(path, root_ok)
        return self.root if path == "/" else self.root + path

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        parent = os.path.dirname(full)
        _makedirs(parent)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.fchmod(fd, 0o644)
            os.close(fd)
            fd = -1
            os.rename(tmp, full)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        fsync_dir(parent)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        full = self._full(path)
        try:
            f = open(full, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None
        size = os.fstat(f.fileno()).st_size
        if offset < 0 or offset > size:
            f.close()
            raise InvalidOffset(path, offset)
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> _Writer:
        return _Writer(self, path, append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path, root_ok=True))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        full = self._full(path, root_ok=True)
        try:
            names = os.listdir(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        prefix = "" if path == "/" else path
        return sorted(f"{prefix}/{n}" for n in names if not n.startswith(_TMP_PREFIX))

    def move(self, src: str, dst: str) -> None:
        s, d = self._full(src), self._full(dst)
        parent = os.path.dirname(d)
        _makedirs(parent)
        try:
            os.rename(s, d)
        except FileNotFoundError:
            if not os.path.lexists(s):
                raise PathNotFound(src) from None
            raise
        fsync_dir(parent)

    def delete(self, path: str) -> None:
        full = self._full(path)
        try:
            os.unlink(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        except IsADirectoryError:
            shutil.rmtree(full)
        except OSError as e:  # EISDIR is reported as EPERM by unlink(2) on Linux
            if e.errno != errno.EPERM or not os.path.isdir(full):
                raise
            shutil.rmtree(full)

    def walk(self, path: str) -> Iterator[FileInfo]:
        full = self._full(path, root_ok=True)
        if not os.path.isdir(full):
            raise PathNotFound(path)
        yield from self._walk(path)

    def _walk(self, path: str) -> Iterator[FileInfo]:
        try:
            children = self.list(path)
        except PathNotFound:  # removed while walking
            return
        for child in children:
            try:
                info = self.stat(child)
            except PathNotFound:
                continue
            yield info
            if info.is_dir:
                yield from self._walk(child)

    def local_path(self, path: str) -> str | None:
        return self._full(path)
