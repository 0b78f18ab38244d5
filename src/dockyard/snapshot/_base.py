"""What the directory-based snapshotters share: records in the ``snapshots`` table, one
directory per snapshot named by its short number, removal and crash clean-up.

Layout (``root`` is ``<data-root>/snapshots``)::

    <root>/
      <num>/                     one directory per snapshot; <num> is snapshots.num
        fs/                      the snapshot's own files (overlay: upper/diff dir)
        work/                    overlay's workdir (active overlay snapshots only)
      tmp-<num>-<pid>/           a snapshot being created (renamed to <num> when ready)
      rm-<num>-<pid>/            a snapshot being removed (its row is gone already)

A snapshot directory is created under ``tmp-…`` and renamed into place, and removed by
renaming it to ``rm-…`` after its row is deleted, so ``cleanup()`` can tell leftovers of a
crash from live snapshots: anything that is not ``<num>`` of an existing row goes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import FailedPrecondition, InvalidArgument, NotFound
from dockyard.oci.mount import Mount
from dockyard.snapshot._fs import disk_usage, remove_tree
from dockyard.snapshot.snapshotter import Info, Kind, Usage
from dockyard.store.db import Database
from dockyard.store.images import SnapshotRecords, SnapshotRow

__all__ = ["DirSnapshotter"]


class DirSnapshotter:
    """Base class; subclasses fill a new snapshot's directory and compute its mounts."""

    name = "dir"

    def __init__(self, root: str | os.PathLike[str], db: Database) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.records = SnapshotRecords(db)
        self._lock = threading.RLock()

    # -- hooks -------------------------------------------------------------------------

    def _populate(self, row: SnapshotRow, tmp: Path, parents: list[SnapshotRow]) -> None:
        """Fill ``tmp`` (which has an empty ``fs/``) for a new active snapshot or view."""

    def _mounts(self, row: SnapshotRow, parents: list[SnapshotRow]) -> list[Mount]:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------

    def _dir(self, row: SnapshotRow) -> Path:
        return self.root / str(row.num)

    def _fs(self, row: SnapshotRow) -> Path:
        return self.root / str(row.num) / "fs"

    def _get(self, key: str) -> SnapshotRow:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        row = self.records.get(key)
        if row is None:
            raise NotFound(f"snapshot {key}: not found")
        return row

    def _parents(self, parent: str) -> list[SnapshotRow]:
        """The committed chain starting at ``parent``, nearest first."""
        out: list[SnapshotRow] = []
        while parent:
            row = self.records.get(parent)
            if row is None:
                raise NotFound(f"parent snapshot {parent}: not found")
            if row.kind != Kind.COMMITTED.value:
                raise FailedPrecondition(f"parent snapshot {parent} is not committed ({row.kind})")
            out.append(row)
            parent = row.parent
            if len(out) > 500:
                raise FailedPrecondition(f"snapshot chain under {out[0].key} is too deep")
        return out

    @staticmethod
    def _info(row: SnapshotRow) -> Info:
        return Info(key=row.key, parent=row.parent, kind=Kind(row.kind), created=row.created,
                    labels=dict(row.labels))

    # -- Snapshotter -------------------------------------------------------------------

    def stat(self, key: str) -> Info:
        return self._info(self._get(key))

    def walk(self) -> Iterator[Info]:
        rows = self.records.list()
        by_key = {r.key: r for r in rows}
        done: set[str] = set()

        def emit(r: SnapshotRow) -> Iterator[Info]:
            if r.key in done:
                return
            if r.parent and r.parent in by_key:
                yield from emit(by_key[r.parent])
            done.add(r.key)
            yield self._info(r)

        for r in rows:
            yield from emit(r)

    def usage(self, key: str) -> Usage:
        return disk_usage(self._fs(self._get(key)))

    def fs_dir(self, key: str) -> Path:
        return self._fs(self._get(key))

    def mounts(self, key: str) -> list[Mount]:
        row = self._get(key)
        if row.kind == Kind.COMMITTED.value:
            raise FailedPrecondition(f"snapshot {key} is committed: it has no mounts")
        return self._mounts(row, self._parents(row.parent))

    def prepare(self, key: str, parent: str = "",
                labels: dict[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str = "",
             labels: dict[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def _create(self, kind: Kind, key: str, parent: str,
                labels: dict[str, str] | None) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        with self._lock:
            parents = self._parents(parent)
            row = self.records.add(key, parent, kind.value, int(time.time()), labels)
        final = self._dir(row)
        tmp = self.root / f"tmp-{row.num}-{os.getpid()}"
        try:
            remove_tree(tmp)
            remove_tree(final)  # a leftover of a crash that reused this number
            (tmp / "fs").mkdir(parents=True)
            self._populate(row, tmp, parents)
            os.rename(tmp, final)
            return self._mounts(row, parents)
        except BaseException:
            self.records.delete(key)
            remove_tree(tmp)
            remove_tree(final)
            raise

    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        if not name:
            raise InvalidArgument("snapshot name must not be empty")
        with self._lock:
            row = self._get(key)
            if row.kind != Kind.ACTIVE.value:
                raise FailedPrecondition(
                    f"snapshot {key} is a {row.kind} snapshot: only an active one can be committed")
            self.records.rename_commit(key, name, labels)
        work = self._dir(row) / "work"
        if work.exists():
            remove_tree(work)

    def remove(self, key: str) -> None:
        with self._lock:
            row = self._get(key)
            children = self.records.children(key)
            if children:
                raise FailedPrecondition(
                    f"cannot remove snapshot {key}: "
                    f"it is the parent of {', '.join(sorted(children))}")
            self.records.delete(key)
            d = self._dir(row)
            gone = self.root / f"rm-{row.num}-{os.getpid()}"
            if d.exists():
                remove_tree(gone)
                os.rename(d, gone)
        remove_tree(gone)

    def cleanup(self) -> int:
        with self._lock:
            live = {str(n) for n in self.records.nums()}
            n = 0
            for p in self.root.iterdir():
                if p.name in live:
                    continue
                remove_tree(p)
                n += 1
            return n
