"""``docker commit``: a container's changes become a new image on top of its image.

The container's rootfs is the active snapshot ``key`` (the container id). Its changes are
written as a layer tar (``dockyard.image.diff``: the overlay upper dir as it is, whiteouts
for deleted files and opaque directories; or, for the copying snapshotter, the difference
between the two trees) straight into the content store as a plain tar blob (docker, too,
keeps layers uncompressed locally; a push gzips them). The blob is then unpacked on the
image's layer chain like any pulled layer, so the new image's layers are committed
snapshots shared with every later image, and the container keeps its own rootfs.

The new config is the parent's (architecture, os, rootfs, history) with the container
config the caller computed (docker's ``merge`` of the container's Config, the ``--change``
instructions and the request's overrides), one history entry (``created_by`` = the
container's Cmd, ``author``, ``comment``) and, unless nothing changed (then the entry is an
``empty_layer``), the new diff id. A failure leaves nothing behind: the blob and snapshot
were leased and are collected, no image row was written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, BinaryIO, cast

from dockyard.content.store import Writer, read_blob
from dockyard.errors import AlreadyExists, FailedPrecondition, NoSuchImage
from dockyard.image import timefmt
from dockyard.image.diff import write_overlay_diff, write_tree_diff
from dockyard.image.service import ImageService, _host_arch
from dockyard.image.unpack import LayerSource
from dockyard.oci import mediatypes as mt
from dockyard.oci.reference import Reference

__all__ = ["commit_container"]

_BUF = 1 << 20


class _Sink:
    """A buffered file-like front for a content writer (tar writes in small pieces)."""

    def __init__(self, w: Writer) -> None:
        self._w = w
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= _BUF:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._w.write(bytes(self._buf))
            self._buf.clear()


def commit_container(svc: ImageService, key: str, parent_image: str,
                     container_config: Mapping[str, Any], *, comment: str = "",
                     author: str = "", created_by: str = "",
                     ref: Reference | None = None) -> str:
    """Commit the container rootfs ``key`` (created from ``parent_image``) as a new image
    with ``container_config`` as its ``config``; name it ``ref``. Returns the image id.

    NoSuchImage if the parent image is gone; NotFound if the rootfs is."""
    with ExitStack() as hold:
        with svc._lock:
            parent_id = svc.resolve(parent_image)
            prow = svc.records.get_image(parent_id)
            if prow is None:
                raise NoSuchImage(f"No such image: {parent_image}")
            hold.enter_context(svc.leases.hold(key, parent_id, prow.chain_id))
            svc.snapshotter.stat(key)
            lower_dirs = svc.chain_dirs(prow.chain_id)
            if prow.chain_id and not lower_dirs:
                raise FailedPrecondition(f"image {parent_id[7:19]}: its layers are not unpacked")
        parent_cfg = json.loads(read_blob(svc.content, parent_id))
        upper = svc.snapshotter.fs_dir(key)

        w = svc.content.writer(f"commit-{key}-{uuid.uuid4().hex[:8]}")
        committed = False
        try:
            sink = _Sink(w)
            out = cast(BinaryIO, sink)
            if svc.snapshotter.name == "naive":
                res = write_tree_diff(lower_dirs[0] if lower_dirs else None, upper, out)
            else:
                res = write_overlay_diff(upper, out, lower_dirs=lower_dirs)
            sink.flush()
            empty = res.entries == 0
            blob, blob_size = "", 0
            if not empty:
                blob, blob_size = w.digest(), w.size
                hold.enter_context(svc.leases.hold(blob))
                try:
                    w.commit(blob_size, blob)
                except AlreadyExists:
                    pass
                committed = True
        finally:
            if not committed:
                w.abort()

        diff_ids = list((parent_cfg.get("rootfs") or {}).get("diff_ids") or [])
        layers = list(prow.doc.get("layers") or [])
        chain, size = prow.chain_id, prow.size
        if not empty:
            layer = svc.unpacker.unpack_layer(LayerSource(blob, mt.OCI_LAYER, res.diff_id),
                                              prow.chain_id, hold)
            diff_ids.append(layer.diff_id)
            layers.append({"mediaType": mt.OCI_LAYER, "digest": blob, "size": blob_size})
            chain, size = layer.chain_id, size + layer.size

        now = timefmt.format_rfc3339nano(timefmt.now_ns())
        cfg: dict[str, Any] = {
            "architecture": parent_cfg.get("architecture") or _host_arch(),
            "os": parent_cfg.get("os") or "linux",
        }
        for k in ("variant", "os.version", "os.features"):
            if parent_cfg.get(k):
                cfg[k] = parent_cfg[k]
        if author:
            cfg["author"] = author
        if comment:
            cfg["comment"] = comment
        cfg["config"] = dict(container_config)
        cfg["created"] = now
        entry: dict[str, Any] = {"created": now}
        if author:
            entry["author"] = author
        if created_by:
            entry["created_by"] = created_by
        if comment:
            entry["comment"] = comment
        if empty:
            entry["empty_layer"] = True
        cfg["history"] = list(parent_cfg.get("history") or []) + [entry]
        cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        return svc.create_image(cfg, layers, chain=chain, size=size, parent=parent_id,
                                refs=[ref] if ref is not None else [])
