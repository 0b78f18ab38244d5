"""Mark-and-sweep of blobs, layers and snapshots from the database's references.

Roots (kept, with everything they reach):

* every image: its config blob (the image id), the layer blobs listed in its doc, and the
  layer chain from its top chain id down to the base;
* every active snapshot or view that is not a stale unpack (``extract-…``): a container's
  rootfs pins its parent chain of committed snapshots and their ``layers`` rows, even after
  ``rmi -f`` removed the image;
* every name held in ``Leases`` by an operation in flight (a blob being imported, a
  snapshot being unpacked).

Swept: ``extract-…`` snapshots nobody holds (a crash or a failed unpack), ``layers`` rows
and their snapshots that nothing reaches (leaf first), committed snapshots without a
``layers`` row, and blobs that no image or remaining layer names.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dockyard.content.store import ContentStore
from dockyard.errors import FailedPrecondition, NotFound
from dockyard.snapshot.snapshotter import Kind, Snapshotter
from dockyard.store.images import ImageRecords

__all__ = ["GCReport", "Leases", "collect"]

_EXTRACT_PREFIX = "extract-"


class Leases:
    """Names (digests, snapshot keys) that operations in flight hold: gc leaves them alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: collections.Counter[str] = collections.Counter()

    @contextmanager
    def hold(self, *names: str) -> Iterator[None]:
        names = tuple(n for n in names if n)
        with self._lock:
            self._held.update(names)
        try:
            yield
        finally:
            with self._lock:
                self._held.subtract(names)
                for n in names:
                    if self._held[n] <= 0:
                        del self._held[n]

    def held(self, name: str) -> bool:
        with self._lock:
            return self._held.get(name, 0) > 0


@dataclass
class GCReport:
    blobs_removed: list[str] = field(default_factory=list)
    layers_removed: list[str] = field(default_factory=list)       # chain ids
    snapshots_removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0                                          # unpacked size of removed layers


def collect(records: ImageRecords, content: ContentStore, snapshotter: Snapshotter,
            leases: Leases) -> GCReport:
    """One gc pass. Call it with the image service's lock held."""
    report = GCReport()
    layers = {row.chain_id: row for row in records.list_layers()}
    snaps = {info.key: info for info in snapshotter.walk()}

    def chain(start: str) -> Iterator[str]:
        seen: set[str] = set()
        c = start
        while c and c not in seen:
            seen.add(c)
            yield c
            c = layers[c].parent if c in layers else ""

    # -- mark ----------------------------------------------------------------------------
    live_layers: set[str] = set()
    live_blobs: set[str] = set()
    for img in records.list_images():
        live_blobs.add(img.id)
        for d in img.doc.get("layers", []):
            if isinstance(d, dict) and d.get("digest"):
                live_blobs.add(str(d["digest"]))
        for extra in img.doc.get("blobs", []):
            live_blobs.add(str(extra))
        live_layers.update(chain(img.chain_id))

    pinned: set[str] = set()        # snapshot keys that must stay
    for info in snaps.values():
        stale = info.key.startswith(_EXTRACT_PREFIX) and not leases.held(info.key)
        if info.kind is Kind.COMMITTED or stale:
            continue
        pinned.add(info.key)
        p = info.parent
        while p and p not in pinned:
            pinned.add(p)
            p = snaps[p].parent if p in snaps else ""
    for c, row in layers.items():
        if row.snapshot in pinned or leases.held(c):
            live_layers.update(chain(c))
    for c in live_layers:
        if c in layers:
            pinned.add(layers[c].snapshot)
    for key in list(pinned):        # parents of what is pinned stay too
        p = snaps[key].parent if key in snaps else ""
        while p and p not in pinned:
            pinned.add(p)
            p = snaps[p].parent if p in snaps else ""

    # -- sweep snapshots (leaf first) ----------------------------------------------------
    def depth(key: str) -> int:
        n, p = 0, snaps[key].parent if key in snaps else ""
        while p and p in snaps and n < 1000:
            n += 1
            p = snaps[p].parent
        return n

    doomed = [k for k in snaps if k not in pinned and not leases.held(k)]
    for key in sorted(doomed, key=depth, reverse=True):
        try:
            snapshotter.remove(key)
        except (NotFound, FailedPrecondition):
            continue
        report.snapshots_removed.append(key)
    removed_snaps = set(report.snapshots_removed)

    for c, row in layers.items():
        if c in live_layers or leases.held(c):
            continue
        if row.snapshot in snaps and row.snapshot not in removed_snaps:
            continue  # its snapshot could not be removed (still has children)
        records.delete_layer(c)
        report.layers_removed.append(c)
        report.bytes_freed += row.size

    # -- sweep blobs -----------------------------------------------------------------------
    for c, row in layers.items():
        if c not in report.layers_removed and row.blob:
            live_blobs.add(row.blob)
    for blob in list(content.walk()):
        if blob.digest in live_blobs or leases.held(blob.digest):
            continue
        try:
            content.delete(blob.digest)
        except NotFound:
            continue
        report.blobs_removed.append(blob.digest)
    return report
