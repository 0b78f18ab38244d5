"""The StorageDriver contract (``dockyard.registry.storage.driver``), run on every driver.

A new driver adds one entry to ``DRIVERS``; the tests stay as they are (STYLE.md §3.10,
distribution's ``driver/testsuites``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.registry.storage.driver import (
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    check_path,
)
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver

DRIVERS: dict[str, Callable[[Path], StorageDriver]] = {
    "filesystem": lambda tmp: FilesystemDriver(tmp / "root"),
    "inmemory": lambda tmp: InMemoryDriver(),
}


@pytest.fixture(params=sorted(DRIVERS))
def d(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    return DRIVERS[request.param](tmp_path)


def test_is_a_storage_driver(d: StorageDriver) -> None:
    assert isinstance(d, StorageDriver)
    assert d.name


def test_put_get_overwrite(d: StorageDriver) -> None:
    d.put_content("/a/b/c", b"one")
    assert d.get_content("/a/b/c") == b"one"
    d.put_content("/a/b/c", b"two, longer")
    assert d.get_content("/a/b/c") == b"two, longer"
    d.put_content("/a/b/c", b"")
    assert d.get_content("/a/b/c") == b""
    blob = os.urandom(3 * 1024 * 1024 + 1)
    d.put_content("/big", blob)
    assert d.get_content("/big") == blob


def test_get_missing(d: StorageDriver) -> None:
    with pytest.raises(PathNotFound) as ei:
        d.get_content("/nope")
    assert ei.value.path == "/nope"
    d.put_content("/dir/file", b"x")
    with pytest.raises(PathNotFound):
        d.get_content("/dir")  # a directory has no content
    with pytest.raises(PathNotFound):
        d.get_content("/dir/file/below")


@pytest.mark.parametrize("bad", ["", "a", "/", "//a", "/a/", "/a//b", "/a/../b", "/..", "/.",
                                 "/a b", "/a/\n", "/ä", "/a\\b", "/a:b"])
def test_invalid_paths(d: StorageDriver, bad: str) -> None:
    for call in (lambda: d.get_content(bad), lambda: d.put_content(bad, b""),
                 lambda: d.writer(bad), lambda: d.move(bad, "/ok"), lambda: d.move("/ok", bad),
                 lambda: d.delete(bad), lambda: d.reader(bad)):
        with pytest.raises(InvalidPath):
            call()
    if bad != "/":
        with pytest.raises(InvalidPath):
            d.stat(bad)
        with pytest.raises(InvalidPath):
            d.list(bad)


def test_check_path() -> None:
    assert check_path("/blobs/sha256/ab/ab12/data") == "/blobs/sha256/ab/ab12/data"
    assert check_path("/", root_ok=True) == "/"
    assert check_path("/a.b/_c-d/.e") == "/a.b/_c-d/.e"


def test_reader_offsets(d: StorageDriver) -> None:
    data = bytes(range(256)) * 10
    d.put_content("/r", data)
    for offset in (0, 1, 1000, len(data)):
        with d.reader("/r", offset) as f:
            assert f.read() == data[offset:]
    for offset in (-1, len(data) + 1):
        with pytest.raises(InvalidOffset):
            d.reader("/r", offset)
    with pytest.raises(PathNotFound):
        d.reader("/missing")
    with d.reader("/r") as f:
        assert f.read(10) == data[:10]
        assert f.read(10) == data[10:20]


def test_writer_new_append_close(d: StorageDriver) -> None:
    w = d.writer("/up/data")
    assert w.size == 0
    assert w.write(b"hello ") == 6
    assert w.write(memoryview(b"world")) == 5
    assert w.size == 11
    w.close()
    assert d.get_content("/up/data") == b"hello world"
    w = d.writer("/up/data", append=True)
    assert w.size == 11
    w.write(bytearray(b"!"))
    assert w.size == 12
    w.commit()
    assert d.get_content("/up/data") == b"hello world!"
    assert d.stat("/up/data").size == 12
    # without append the file starts empty again
    w = d.writer("/up/data")
    w.write(b"new")
    w.close()
    assert d.get_content("/up/data") == b"new"
    with pytest.raises(ValueError):
        w.write(b"after close")
    with pytest.raises(ValueError):
        w.close()


def test_writer_cancel_and_missing_append(d: StorageDriver) -> None:
    w = d.writer("/c/data")
    w.write(b"doomed")
    w.cancel()
    with pytest.raises(PathNotFound):
        d.get_content("/c/data")
    with pytest.raises(PathNotFound):
        d.writer("/never/written", append=True)


def test_writer_many_chunks(d: StorageDriver) -> None:
    chunks = [os.urandom(1000 + i) for i in range(200)]
    w = d.writer("/chunks")
    for c in chunks:
        w.write(c)
    w.commit()
    assert d.get_content("/chunks") == b"".join(chunks)


def test_stat(d: StorageDriver) -> None:
    d.put_content("/s/dir/file", b"12345")
    fi = d.stat("/s/dir/file")
    assert (fi.path, fi.size, fi.is_dir) == ("/s/dir/file", 5, False)
    assert fi.mtime > 0
    di = d.stat("/s/dir")
    assert di.is_dir and di.path == "/s/dir"
    assert d.stat("/").is_dir
    with pytest.raises(PathNotFound):
        d.stat("/s/nothing")


def test_list(d: StorageDriver) -> None:
    assert d.list("/") == []
    for p in ("/l/b", "/l/a/x", "/l/a/y", "/l/c/d/e", "/top"):
        d.put_content(p, b"")
    assert d.list("/") == ["/l", "/top"]
    assert d.list("/l") == ["/l/a", "/l/b", "/l/c"]
    assert d.list("/l/a") == ["/l/a/x", "/l/a/y"]
    with pytest.raises(PathNotFound):
        d.list("/l/missing")
    with pytest.raises(PathNotFound):
        d.list("/l/b")  # a file


def test_move(d: StorageDriver) -> None:
    d.put_content("/m/src", b"moved")
    d.move("/m/src", "/elsewhere/deep/dst")
    assert d.get_content("/elsewhere/deep/dst") == b"moved"
    with pytest.raises(PathNotFound):
        d.get_content("/m/src")
    d.put_content("/m/src2", b"replacement")
    d.move("/m/src2", "/elsewhere/deep/dst")
    assert d.get_content("/elsewhere/deep/dst") == b"replacement"
    with pytest.raises(PathNotFound):
        d.move("/m/gone", "/m/dst")
    # a written-then-closed upload moves like any file
    w = d.writer("/uploads/1/data")
    w.write(b"blob")
    w.commit()
    d.move("/uploads/1/data", "/blobs/x/data")
    assert d.get_content("/blobs/x/data") == b"blob"


def test_delete(d: StorageDriver) -> None:
    for p in ("/del/a/1", "/del/a/2/3", "/del/b"):
        d.put_content(p, b"x")
    d.delete("/del/b")
    with pytest.raises(PathNotFound):
        d.stat("/del/b")
    d.delete("/del/a")  # recursive
    for p in ("/del/a", "/del/a/1", "/del/a/2/3"):
        with pytest.raises(PathNotFound):
            d.stat(p)
    with pytest.raises(PathNotFound):
        d.delete("/del/a")
    d.put_content("/del/again", b"y")  # the parent still works
    assert d.get_content("/del/again") == b"y"


def test_walk(d: StorageDriver) -> None:
    for p in ("/w/b/2", "/w/a/1", "/w/b/1", "/w/c"):
        d.put_content(p, p.encode())
    got = [(i.path, i.is_dir) for i in d.walk("/w")]
    assert got == [("/w/a", True), ("/w/a/1", False), ("/w/b", True), ("/w/b/1", False),
                   ("/w/b/2", False), ("/w/c", False)]
    sizes = {i.path: i.size for i in d.walk("/w") if not i.is_dir}
    assert sizes["/w/b/2"] == len(b"/w/b/2")
    assert [i.path for i in d.walk("/")][:1] == ["/w"]
    with pytest.raises(PathNotFound):
        list(d.walk("/w/missing"))


def test_local_path(d: StorageDriver) -> None:
    d.put_content("/lp/file", b"content")
    p = d.local_path("/lp/file")
    if p is not None:
        assert Path(p).read_bytes() == b"content"


def test_concurrent_put_content_same_path(d: StorageDriver) -> None:
    """Replacements are atomic: readers see one whole version, and racing writers all succeed."""
    values = [bytes([i]) * 50_000 for i in range(16)]
    errors: list[BaseException] = []
    d.put_content("/race/link", values[0])

    def write(v: bytes) -> None:
        try:
            for _ in range(20):
                d.put_content("/race/link", v)
        except BaseException as e:  # pragma: no cover - the failure we look for
            errors.append(e)

    def read() -> None:
        try:
            for _ in range(200):
                got = d.get_content("/race/link")
                assert got in values
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=write, args=(v,)) for v in values]
    threads += [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert d.get_content("/race/link") in values
    assert d.list("/race") == ["/race/link"]  # no temp files in sight


def test_concurrent_writers_and_moves(d: StorageDriver) -> None:
    errors: list[BaseException] = []

    def upload(i: int) -> None:
        try:
            w = d.writer(f"/cw/up{i}/data")
            for _ in range(10):
                w.write(b"same blob ")
            w.commit()
            d.move(f"/cw/up{i}/data", "/cw/blob/data")  # every upload lands on the same blob
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert d.get_content("/cw/blob/data") == b"same blob " * 10
