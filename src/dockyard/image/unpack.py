"""Layers from the content store into committed snapshots, keyed by chain id.

For each layer, base first: if a snapshot for its chain id exists, it is reused (layers are
unpacked once and shared between images). Otherwise an active snapshot ``extract-<random>``
is prepared on the parent chain, the blob is decompressed and applied *directly into the
snapshot's own directory* — the upper dir of an overlay mount (whiteouts in overlay form)
or the bind-mounted full tree of the copying snapshotter (whiteouts as deletions) — the
diff id is checked, and the snapshot is committed under the chain id and recorded in the
``layers`` table. Nothing is mounted. A failure removes the active snapshot; the blob is
left to the caller (and to gc).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from dockyard.content.store import Provider
from dockyard.errors import AlreadyExists, InvalidArgument, NotFound, Unsupported
from dockyard.image.gc import Leases
from dockyard.oci.mount import Mount
from dockyard.snapshot.snapshotter import Snapshotter
from dockyard.store.images import ImageRecords, LayerRow
from dockyard.util.tarlayer import WhiteoutMode, apply_layer, decompress

__all__ = ["LayerSource", "UnpackedLayer", "Unpacker", "chain_id", "chain_ids", "EXTRACT_PREFIX"]

EXTRACT_PREFIX = "extract-"


def chain_id(parent: str, diff_id: str) -> str:
    """image-spec ChainID: the diff id for a base layer, else sha256("<parent> <diff_id>")."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    parent = ""
    for d in diff_ids:
        parent = chain_id(parent, d)
        out.append(parent)
    return out


@dataclass(frozen=True)
class LayerSource:
    blob: str                 # digest of the (possibly compressed) layer blob in the content store
    media_type: str = ""
    diff_id: str = ""         # the expected diff id; '' when unknown (import) and computed


@dataclass(frozen=True)
class UnpackedLayer:
    chain_id: str
    diff_id: str
    size: int                 # unpacked bytes of this layer alone
    blob: str
    media_type: str
    new: bool                 # unpacked by this call (False: the chain existed already)


class _Counting:
    """Reads through, telling ``on_read`` the running total."""

    def __init__(self, inner: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_read = on_read
        self._n = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if data:
            self._n += len(data)
            self._on_read(self._n)
        return data


def apply_target(mounts: list[Mount]) -> tuple[Path, WhiteoutMode]:
    """Where to write a layer for these snapshot mounts, and in which whiteout form."""
    if len(mounts) != 1:
        raise Unsupported(f"cannot unpack into {len(mounts)} mounts")
    m = mounts[0]
    if m.type == "overlay":
        for o in m.options:
            if o.startswith("upperdir="):
                return Path(o[len("upperdir="):]), WhiteoutMode.OVERLAY
        raise Unsupported("cannot unpack into an overlay mount without an upper dir")
    if m.type == "bind":
        return Path(m.source), WhiteoutMode.DELETE
    raise Unsupported(f"cannot unpack into a {m.type} mount")


class Unpacker:
    def __init__(self, content: Provider, snapshotter: Snapshotter, records: ImageRecords,
                 lock: threading.RLock, leases: Leases) -> None:
        self.content = content
        self.snapshotter = snapshotter
        self.records = records
        self.lock = lock
        self.leases = leases

    def _existing(self, chain: str) -> LayerRow | None:
        row = self.records.get_layer(chain)
        if row is None:
            return None
        try:
            self.snapshotter.stat(row.snapshot)
        except NotFound:
            self.records.delete_layer(chain)  # its snapshot is gone: unpack it again
            return None
        return row

    def unpack(self, layers: Sequence[LayerSource], hold: ExitStack) -> list[UnpackedLayer]:
        """Unpack ``layers`` (base first). Each resulting chain id is leased on ``hold``, so
        gc keeps them until the caller has recorded an image that uses them."""
        out: list[UnpackedLayer] = []
        parent = ""
        for src in layers:
            layer = self.unpack_layer(src, parent, hold)
            out.append(layer)
            parent = layer.chain_id
        return out

    def unpack_layer(self, src: LayerSource, parent_chain: str, hold: ExitStack,
                     on_read: Callable[[int], None] | None = None) -> UnpackedLayer:
        """Unpack one layer on ``parent_chain`` (``""`` for a base layer), or find it
        unpacked already (when ``src.diff_id`` is known). ``on_read(n)`` is told how many
        bytes of the blob have been read so far (extraction progress). The chain id is
        leased on ``hold``."""
        if src.diff_id:
            chain = chain_id(parent_chain, src.diff_id)
            with self.lock:
                hold.enter_context(self.leases.hold(chain))
                row = self._existing(chain)
            if row is not None:
                return UnpackedLayer(chain, row.diff_id, row.size, row.blob or src.blob,
                                     row.media_type or src.media_type, False)
        return self._apply(src, parent_chain, hold, on_read)

    def _apply(self, src: LayerSource, parent_chain: str, hold: ExitStack,
               on_read: Callable[[int], None] | None = None) -> UnpackedLayer:
        key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex}"
        with self.leases.hold(key, src.blob, parent_chain):
            parent_snapshot = ""
            if parent_chain:
                prow = self.records.get_layer(parent_chain)
                if prow is None:
                    raise NotFound(f"layer {parent_chain}: not found")
                parent_snapshot = prow.snapshot
            mounts = self.snapshotter.prepare(key, parent_snapshot, {"dockyard.unpack": src.blob})
            try:
                target, mode = apply_target(mounts)
                with self.content.reader(src.blob) as raw:
                    source = cast(BinaryIO, _Counting(raw, on_read)) if on_read else raw
                    stream, _ = decompress(source)
                    result = apply_layer(stream, target, whiteouts=mode)
                if src.diff_id and result.diff_id != src.diff_id:
                    raise InvalidArgument(
                        f"layer {src.blob}: unpacked content has diff id {result.diff_id}, "
                        f"expected {src.diff_id}")
                chain = chain_id(parent_chain, result.diff_id)
                with self.lock:
                    hold.enter_context(self.leases.hold(chain))
                    new = True
                    try:
                        self.snapshotter.commit(chain, key)
                    except AlreadyExists:
                        new = False
                        self.snapshotter.remove(key)
                    self.records.add_layer(LayerRow(
                        chain_id=chain, diff_id=result.diff_id, parent=parent_chain,
                        snapshot=chain, size=result.size, blob=src.blob,
                        media_type=src.media_type))
                    row = self.records.get_layer(chain)
                    size = row.size if row is not None else result.size
                return UnpackedLayer(chain, result.diff_id, size, src.blob, src.media_type, new)
            except BaseException:
                try:
                    self.snapshotter.remove(key)
                except NotFound:
                    pass
                raise
