"""The copying snapshotter: every active snapshot is a full copy of its parent's tree.

Slow and disk-hungry, but needs no kernel feature beyond a bind mount: for tests and for
hosts without overlayfs. Each snapshot owns ``<root>/<num>/fs`` holding its *whole* tree.
Mounts: a ``bind`` of that directory (read-write when active). A view does not copy: it is
a read-only ``bind`` of its parent's tree (committed trees never change).
"""

from __future__ import annotations

from pathlib import Path

from dockyard.oci.mount import Mount
from dockyard.snapshot._base import DirSnapshotter
from dockyard.snapshot._fs import copy_tree
from dockyard.snapshot.snapshotter import Kind
from dockyard.store.images import SnapshotRow

__all__ = ["NaiveSnapshotter"]


class NaiveSnapshotter(DirSnapshotter):
    name = "naive"

    def _populate(self, row: SnapshotRow, tmp: Path, parents: list[SnapshotRow]) -> None:
        if row.kind == Kind.ACTIVE.value and parents:
            copy_tree(self._fs(parents[0]), tmp / "fs")

    def _mounts(self, row: SnapshotRow, parents: list[SnapshotRow]) -> list[Mount]:
        if row.kind == Kind.ACTIVE.value:
            return [Mount("bind", str(self._fs(row)), ("rbind", "rw"))]
        src = self._fs(parents[0]) if parents else self._fs(row)
        return [Mount("bind", str(src), ("rbind", "ro"))]
