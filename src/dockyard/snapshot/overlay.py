"""The overlayfs snapshotter.

Each snapshot owns ``<root>/<num>/fs`` (its upper dir while active, its diff once committed)
and, while active with a parent, ``<root>/<num>/work``. Mounts:

* active, no parent — ``bind`` of its ``fs`` (read-write);
* active with parents — ``overlay`` with ``upperdir=<fs>``, ``workdir=<work>`` and
  ``lowerdir=<parent fs>:<grandparent fs>:…`` (nearest first);
* view of one committed snapshot, or of none — read-only ``bind`` of that ``fs``;
* view of a longer chain — ``overlay`` with only ``lowerdir`` (read-only by construction).

Directory names are the short numbers of the ``snapshots`` table, so a long chain of
lower dirs still fits in a page of mount options. ``index=off``, ``redirect_dir=off`` and
``metacopy=off`` are added when the kernel's overlay module knows them, so upper dirs are
always plain diffs (no redirects, no metadata-only copy-ups) that ``dockyard.image.diff``
can turn into layer tars.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dockyard.oci.mount import Mount
from dockyard.snapshot._base import DirSnapshotter
from dockyard.snapshot.snapshotter import Kind
from dockyard.store.db import Database
from dockyard.store.images import SnapshotRow

__all__ = ["OverlaySnapshotter", "default_overlay_options", "overlay_supported"]

_PARAMS = Path("/sys/module/overlay/parameters")
_FEATURES = (
    ("index", "index=off"),
    ("redirect_dir", "redirect_dir=off"),
    ("metacopy", "metacopy=off"),
)


def overlay_supported(proc_root: str | os.PathLike[str] = "/proc") -> bool:
    """Whether the kernel lists overlay in ``/proc/filesystems`` (the module may still need
    loading; a mount then loads it)."""
    try:
        text = Path(proc_root, "filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1:] == ["overlay"] for line in text.splitlines())


def default_overlay_options(params_dir: str | os.PathLike[str] = _PARAMS) -> tuple[str, ...]:
    """The feature-off options this kernel's overlay module understands."""
    p = Path(params_dir)
    return tuple(opt for param, opt in _FEATURES if (p / param).exists())


class OverlaySnapshotter(DirSnapshotter):
    name = "overlay2"

    def __init__(self, root: str | os.PathLike[str], db: Database, *,
                 options: Sequence[str] | None = None) -> None:
        super().__init__(root, db)
        self.options = tuple(options) if options is not None else default_overlay_options()

    def _populate(self, row: SnapshotRow, tmp: Path, parents: list[SnapshotRow]) -> None:
        if row.kind == Kind.ACTIVE.value and parents:
            (tmp / "work").mkdir()

    def _mounts(self, row: SnapshotRow, parents: list[SnapshotRow]) -> list[Mount]:
        fs = self._fs(row)
        if row.kind == Kind.ACTIVE.value:
            if not parents:
                return [Mount("bind", str(fs), ("rbind", "rw"))]
            return [Mount("overlay", "overlay", (
                *self.options,
                f"workdir={self._dir(row) / 'work'}",
                f"upperdir={fs}",
                "lowerdir=" + ":".join(str(self._fs(p)) for p in parents),
            ))]
        # a view
        if not parents:
            return [Mount("bind", str(fs), ("rbind", "ro"))]
        if len(parents) == 1:
            return [Mount("bind", str(self._fs(parents[0])), ("rbind", "ro"))]
        return [Mount("overlay", "overlay", (
            *self.options,
            "lowerdir=" + ":".join(str(self._fs(p)) for p in parents),
        ))]
