"""The in-memory ``StorageDriver``: a dict of files, for tests and throw-away registries.

Directories are implicit: a path is a directory when some file lies below it. One lock
guards the dict; a writer's bytes become visible as they are written, like a file's.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from .driver import FileInfo, InvalidOffset, PathNotFound, check_path

__all__ = ["InMemoryDriver"]


class _File:
    __slots__ = ("data", "mtime")

    def __init__(self, data: bytes | bytearray = b"") -> None:
        self.data = bytearray(data)
        self.mtime = time.time()


class _Writer:
    def __init__(self, driver: InMemoryDriver, path: str, append: bool) -> None:
        self._driver = driver
        self._path = path
        with driver._lock:
            f = driver._files.get(path)
            if append:
                if f is None:
                    raise PathNotFound(path)
            else:
                f = _File()
                driver._files[path] = f
        self._file = f
        self._done = False

    @property
    def size(self) -> int:
        return len(self._file.data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise ValueError("write to a finished writer")
        with self._driver._lock:
            self._file.data += data
            self._file.mtime = time.time()
        return len(data)

    def _finish(self) -> None:
        if self._done:
            raise ValueError("writer already finished")
        self._done = True

    def close(self) -> None:
        self._finish()

    def commit(self) -> None:
        self._finish()

    def cancel(self) -> None:
        self._finish()
        with self._driver._lock:
            if self._driver._files.get(self._path) is self._file:
                del self._driver._files[self._path]


class InMemoryDriver:
    name = "inmemory"

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()

    def _is_dir(self, path: str) -> bool:
        prefix = "/" if path == "/" else path + "/"
        return any(p.startswith(prefix) for p in self._files)

    def get_content(self, path: str) -> bytes:
        check_path(path)
        with self._lock:
            f = self._files.get(path)
            if f is None:
                raise PathNotFound(path)
            return bytes(f.data)

    def put_content(self, path: str, data: bytes) -> None:
        check_path(path)
        with self._lock:
            self._check_no_file_parent(path)
            self._files[path] = _File(data)

    def _check_no_file_parent(self, path: str) -> None:
        parts = path.split("/")
        for i in range(2, len(parts)):
            if "/".join(parts[:i]) in self._files:
                raise NotADirectoryError(path)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        data = self.get_content(path)
        if offset < 0 or offset > len(data):
            raise InvalidOffset(path, offset)
        r = io.BytesIO(data)
        r.seek(offset)
        return r

    def writer(self, path: str, append: bool = False) -> _Writer:
        check_path(path)
        if not append:
            with self._lock:
                self._check_no_file_parent(path)
        return _Writer(self, path, append)

    def stat(self, path: str) -> FileInfo:
        check_path(path, root_ok=True)
        with self._lock:
            f = self._files.get(path)
            if f is not None:
                return FileInfo(path, len(f.data), f.mtime, False)
            prefix = "/" if path == "/" else path + "/"
            mtimes = [g.mtime for p, g in self._files.items() if p.startswith(prefix)]
        if not mtimes and path != "/":
            raise PathNotFound(path)
        return FileInfo(path, 0, max(mtimes, default=0.0), True)

    def list(self, path: str) -> list[str]:
        check_path(path, root_ok=True)
        prefix = "/" if path == "/" else path + "/"
        with self._lock:
            if path in self._files:
                raise PathNotFound(path)
            children = {prefix + p[len(prefix):].split("/", 1)[0]
                        for p in self._files if p.startswith(prefix)}
        if not children and path != "/":
            raise PathNotFound(path)
        return sorted(children)

    def move(self, src: str, dst: str) -> None:
        check_path(src)
        check_path(dst)
        with self._lock:
            f = self._files.get(src)
            if f is None:
                raise PathNotFound(src)
            self._check_no_file_parent(dst)
            del self._files[src]
            self._files[dst] = f

    def delete(self, path: str) -> None:
        check_path(path)
        prefix = path + "/"
        with self._lock:
            doomed = [p for p in self._files if p == path or p.startswith(prefix)]
            if not doomed:
                raise PathNotFound(path)
            for p in doomed:
                del self._files[p]

    def walk(self, path: str) -> Iterator[FileInfo]:
        for child in self.list(path):
            try:
                info = self.stat(child)
            except PathNotFound:
                continue
            yield info
            if info.is_dir:
                try:
                    yield from self.walk(child)
                except PathNotFound:
                    continue

    def local_path(self, path: str) -> str | None:
        check_path(path)
        return None
