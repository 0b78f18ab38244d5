"""The ContentStore contract, run on every implementation (one factory each)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.content import ContentStore, LocalContentStore, read_blob, write_blob
from dockyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

Factory = Callable[[Path], ContentStore]

FACTORIES: dict[str, Factory] = {
    "local": lambda root: LocalContentStore(root / "content"),
}


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ContentStore:
    return FACTORIES[request.param](tmp_path)


def dg(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_commit_read(store: ContentStore) -> None:
    w = store.writer("ref-1")
    w.write(b"hello ")
    w.write(memoryview(b"world"))
    assert w.size == 11
    assert w.digest() == dg(b"hello world")
    info = w.commit(11, dg(b"hello world"))
    assert (info.digest, info.size) == (dg(b"hello world"), 11)
    assert store.info(info.digest).size == 11
    with store.reader(info.digest) as f:
        assert f.read() == b"hello world"
    assert [i.digest for i in store.walk()] == [info.digest]


def test_not_visible_before_commit(store: ContentStore) -> None:
    w = store.writer("ref-1")
    w.write(b"partial")
    with pytest.raises(NotFound):
        store.info(dg(b"partial"))
    assert list(store.walk()) == []
    w.abort()
    with pytest.raises(NotFound):
        store.info(dg(b"partial"))


def test_commit_checks_size_and_digest(store: ContentStore) -> None:
    w = store.writer("ref-size")
    w.write(b"abc")
    with pytest.raises(FailedPrecondition, match="size"):
        w.commit(4)
    w = store.writer("ref-digest")
    w.write(b"abc")
    with pytest.raises(FailedPrecondition, match="digest"):
        w.commit(3, dg(b"abd"))
    assert list(store.walk()) == []


def test_commit_of_existing_blob_is_already_exists(store: ContentStore) -> None:
    write_blob(store, "a", b"same")
    w = store.writer("b")
    w.write(b"same")
    with pytest.raises(AlreadyExists):
        w.commit()
    assert [i.digest for i in store.walk()] == [dg(b"same")]
    info, digest = write_blob(store, "c", b"same")
    assert info is None and digest == dg(b"same")


def test_a_writer_is_closed_after_commit_or_abort(store: ContentStore) -> None:
    w = store.writer("r")
    w.write(b"x")
    w.commit()
    with pytest.raises(FailedPrecondition):
        w.write(b"y")
    w2 = store.writer("r")   # the ref is free again
    w2.abort()
    w2.abort()               # idempotent


def test_one_writer_per_ref(store: ContentStore) -> None:
    w = store.writer("busy")
    with pytest.raises(Unavailable):
        store.writer("busy")
    w.abort()
    store.writer("busy").abort()


def test_delete_and_missing(store: ContentStore) -> None:
    info, digest = write_blob(store, "r", b"bye")
    store.delete(digest)
    with pytest.raises(NotFound):
        store.info(digest)
    with pytest.raises(NotFound):
        store.reader(digest)
    with pytest.raises(NotFound):
        store.delete(digest)


def test_malformed_digest(store: ContentStore) -> None:
    with pytest.raises(InvalidArgument):
        store.info("sha256:nothex")
    with pytest.raises(InvalidArgument):
        store.info("../../etc/passwd")


def test_sha512_expected_digest(store: ContentStore) -> None:
    data = b"five twelve"
    d512 = "sha512:" + hashlib.sha512(data).hexdigest()
    info, _ = write_blob(store, "r", data, expected_digest=d512)
    assert info is not None and info.digest == d512
    assert read_blob(store, d512) == data


def test_large_streamed_blob(store: ContentStore) -> None:
    chunk = bytes(range(256)) * 4096
    info, digest = write_blob(store, "big", (chunk for _ in range(8)))
    h = hashlib.sha256()
    for _ in range(8):
        h.update(chunk)
    assert digest == "sha256:" + h.hexdigest()
    assert store.info(digest).size == len(chunk) * 8
