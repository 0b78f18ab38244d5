"""The Snapshotter contract, run on every implementation (one factory each).

The overlay snapshotter runs as root only (the ``root`` mark); tests that perform the
returned mounts to look through them are root-only for every implementation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from dockyard.snapshot import Kind, NaiveSnapshotter, OverlaySnapshotter, Snapshotter
from dockyard.store.db import Database
from tests.integration.image.mounts import mounted

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="performing mounts needs root")

Factory = Callable[[Path, Database], Snapshotter]

FACTORIES: dict[str, tuple[Factory, list[pytest.MarkDecorator]]] = {
    "naive": (lambda root, db: NaiveSnapshotter(root, db), []),
    "overlay": (lambda root, db: OverlaySnapshotter(root, db), [pytest.mark.root]),
}


@pytest.fixture(params=[pytest.param(k, marks=v[1]) for k, v in sorted(FACTORIES.items())])
def snap(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    db = Database(tmp_path / "state.db")
    s = FACTORIES[request.param][0](tmp_path / "snapshots", db)
    yield s
    db.close()


def write(snap: Snapshotter, key: str, rel: str, data: str) -> None:
    p = snap.fs_dir(key) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(data)


def layer(snap: Snapshotter, name: str, parent: str, files: dict[str, str]) -> None:
    key = f"extract-{name}"
    snap.prepare(key, parent)
    for rel, data in files.items():
        write(snap, key, rel, data)
    snap.commit(name, key)


def test_lifecycle_and_stat(snap: Snapshotter) -> None:
    mounts = snap.prepare("a", "", {"x": "1"})
    assert mounts
    info = snap.stat("a")
    assert (info.key, info.parent, info.kind, info.labels) == ("a", "", Kind.ACTIVE, {"x": "1"})
    snap.commit("base", "a")
    with pytest.raises(NotFound):
        snap.stat("a")
    info = snap.stat("base")
    assert (info.kind, info.parent) == (Kind.COMMITTED, "")
    snap.prepare("b", "base")
    assert snap.stat("b").parent == "base"
    snap.view("v", "base")
    assert snap.stat("v").kind is Kind.VIEW
    keys = [i.key for i in snap.walk()]
    assert sorted(keys) == ["b", "base", "v"]
    assert keys.index("base") < keys.index("b")


def test_errors(snap: Snapshotter) -> None:
    layer(snap, "base", "", {"f": "x"})
    snap.prepare("active", "base")
    with pytest.raises(AlreadyExists):
        snap.prepare("active", "base")
    with pytest.raises(AlreadyExists):
        snap.prepare("base", "")             # keys and names share one namespace
    with pytest.raises(NotFound):
        snap.prepare("x", "missing")
    with pytest.raises(FailedPrecondition):
        snap.prepare("x", "active")         # only committed snapshots are parents
    with pytest.raises(FailedPrecondition):
        snap.mounts("base")
    snap.view("v", "base")
    with pytest.raises(FailedPrecondition):
        snap.commit("n", "v")
    with pytest.raises(FailedPrecondition):
        snap.remove("base")                  # it has children
    with pytest.raises(InvalidArgument):
        snap.prepare("", "")
    with pytest.raises(NotFound):
        snap.remove("nope")
    with pytest.raises(AlreadyExists):
        snap.commit("base", "active")
    assert snap.stat("active").kind is Kind.ACTIVE


def test_remove_children_then_parent(snap: Snapshotter, tmp_path: Path) -> None:
    layer(snap, "base", "", {"f": "x"})
    snap.prepare("c", "base")
    base_dir = snap.fs_dir("base")
    snap.remove("c")
    snap.remove("base")
    assert not base_dir.exists()
    assert list(snap.walk()) == []
    assert sorted(os.listdir(tmp_path / "snapshots")) == []


def test_failed_prepare_leaves_nothing(snap: Snapshotter, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        snap.prepare("x", "no-such-parent")
    assert list(snap.walk()) == []
    assert os.listdir(tmp_path / "snapshots") == []


def test_usage_counts_own_files(snap: Snapshotter) -> None:
    snap.prepare("a", "")
    write(snap, "a", "f", "x" * 1000)
    write(snap, "a", "d/g", "y" * 24)
    u = snap.usage("a")
    assert u.size == 1024
    assert u.inodes == 3


def test_cleanup_removes_leftovers_only(snap: Snapshotter, tmp_path: Path) -> None:
    layer(snap, "base", "", {"f": "x"})
    (tmp_path / "snapshots" / "999" / "fs").mkdir(parents=True)
    (tmp_path / "snapshots" / "tmp-5-1").mkdir()
    assert snap.cleanup() == 2
    assert snap.fs_dir("base").is_dir()
    assert (snap.fs_dir("base") / "f").read_text() == "x"


def test_chain_content_in_fs_dirs(snap: Snapshotter) -> None:
    layer(snap, "l1", "", {"a": "1", "b": "1"})
    layer(snap, "l2", "l1", {"b": "2"})
    snap.prepare("c", "l2")
    own = snap.fs_dir("c")
    assert own.is_dir()
    if isinstance(snap, NaiveSnapshotter):   # a full copy
        assert (own / "a").read_text() == "1" and (own / "b").read_text() == "2"
    else:                                    # an empty upper dir
        assert os.listdir(own) == []


@needs_root
def test_mounts_show_the_chain(snap: Snapshotter, tmp_path: Path) -> None:
    layer(snap, "l1", "", {"a": "1", "b": "1", "d/x": "x"})
    layer(snap, "l2", "l1", {"b": "2", "d/y": "y"})
    layer(snap, "l3", "l2", {"c": "3"})
    mnt = tmp_path / "mnt"
    with mounted(snap.prepare("rw", "l3"), mnt) as root:
        assert (root / "a").read_text() == "1"
        assert (root / "b").read_text() == "2"
        assert (root / "c").read_text() == "3"
        assert sorted(os.listdir(root / "d")) == ["x", "y"]
        (root / "new").write_text("n")
        os.unlink(root / "a")
    assert (snap.fs_dir("rw") / "new").read_text() == "n"
    snap.commit("l4", "rw")
    with mounted(snap.view("v", "l4"), mnt) as root:
        assert (root / "new").read_text() == "n"
        assert not (root / "a").exists()
        with pytest.raises(OSError):
            (root / "ro-check").write_text("no")
    with mounted(snap.view("v1", "l1"), mnt) as root:   # single parent: a bind
        assert (root / "b").read_text() == "1"
    with mounted(snap.mounts("v"), mnt) as root:        # mounts again
        assert (root / "c").read_text() == "3"
    for k in ("v", "v1"):
        snap.remove(k)


@needs_root
def test_parentless_active_is_writable(snap: Snapshotter, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with mounted(snap.prepare("a", ""), mnt) as root:
        (root / "f").write_text("x")
    assert (snap.fs_dir("a") / "f").read_text() == "x"
