"""The snapshotter contract: layered filesystem trees handed out as mounts.

Vocabulary (containerd's, used by every implementation and caller):

* ``key`` — names an *active* snapshot (writable, from ``prepare``) or a *view* (read-only,
  from ``view``). A container's rootfs is an active snapshot keyed by the container id;
  a layer being unpacked is an active snapshot keyed ``extract-<random>``.
* ``name`` — names a *committed* snapshot (immutable, from ``commit``). Image layers are
  committed snapshots named by their chain id.
* ``parent`` — the committed snapshot a new snapshot starts from; ``""`` is the empty tree.
  Only committed snapshots can be parents. Keys and names share one namespace.

Lifecycle: ``prepare(key, parent)`` → (mount, change) → ``commit(name, key)`` (``key`` is gone
afterwards, ``name`` exists with ``key``'s parent) or ``remove(key)``. ``view(key, parent)``
→ (mount read-only) → ``remove(key)``. A committed snapshot with children cannot be removed.

A snapshotter **returns mounts and never performs them** (``dockyard.oci.mount.Mount``): the
caller mounts them where it wants (the runtime, inside the container's mount namespace) and
unmounts them. Implementations must not need the mounts to be performed for ``commit``,
``remove``, ``usage`` or ``fs_dir`` to work.

Errors: ``NotFound`` for an unknown key or parent, ``AlreadyExists`` for a taken key or name,
``FailedPrecondition`` for a call that the snapshot's kind forbids (commit of a view, a
parent that is not committed, removing a snapshot with children, mounts of a committed
snapshot), ``InvalidArgument`` for an empty key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from dockyard.oci.mount import Mount

__all__ = ["Info", "Kind", "Snapshotter", "Usage"]


class Kind(str, enum.Enum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True)
class Info:
    key: str                     # key (active/view) or name (committed)
    parent: str                  # name of the parent committed snapshot, '' for none
    kind: Kind
    created: int                 # unix seconds
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """Resources used by the snapshot itself, parents excluded (for overlay: its upper dir;
    for the copying snapshotter: its whole tree)."""

    size: int = 0                # bytes of file content, each inode counted once
    inodes: int = 0


@runtime_checkable
class Snapshotter(Protocol):
    #: the driver name shown to users (``docker info`` Driver, inspect GraphDriver.Name)
    name: str

    def stat(self, key: str) -> Info:
        """Info of any snapshot by key or name; NotFound if unknown."""

    def usage(self, key: str) -> Usage:
        """Disk usage of the snapshot itself (may walk its tree); NotFound if unknown."""

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of an active snapshot or view (again); FailedPrecondition for a
        committed snapshot."""

    def prepare(self, key: str, parent: str = "",
                labels: dict[str, str] | None = None) -> list[Mount]:
        """Create the active snapshot ``key`` starting with ``parent``'s content."""

    def view(self, key: str, parent: str = "",
             labels: dict[str, str] | None = None) -> list[Mount]:
        """Create the read-only view ``key`` of ``parent``. It can never be committed."""

    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        """Turn the active snapshot ``key`` into the committed snapshot ``name``."""

    def remove(self, key: str) -> None:
        """Remove any snapshot and its data; FailedPrecondition if it has children."""

    def walk(self) -> Iterator[Info]:
        """Every snapshot, parents before their children."""

    def fs_dir(self, key: str) -> Path:
        """The directory holding the snapshot's own files: for overlay the upper dir of an
        active snapshot (or the diff dir of a committed one); for the copying snapshotter
        the full tree. Callers read it (usage, diff) or unpack into it; they never mount it."""

    def cleanup(self) -> int:
        """Remove on-disk leftovers with no record (a crash between steps); returns how many."""
