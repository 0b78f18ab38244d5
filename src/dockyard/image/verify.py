"""Consistency checks of the image store, for tests and for a look after a crash.

``verify_content`` reads every blob and checks that its bytes hash to its name.
``verify_images`` checks that every image's config and layer blobs are present, that its
layer chain is recorded down to the base with a snapshot for each layer, and that the
chain matches the config's diff ids. Both return a list of problems (empty: all good).
"""

from __future__ import annotations

import json

from dockyard.content.store import ContentStore, read_blob
from dockyard.errors import DockyardError, NotFound
from dockyard.image.service import ImageService
from dockyard.image.unpack import chain_ids
from dockyard.oci.digest import Digester, parse_digest

__all__ = ["verify_content", "verify_images"]

_CHUNK = 1 << 20


def verify_content(content: ContentStore) -> list[str]:
    problems: list[str] = []
    for info in content.walk():
        try:
            alg, _ = parse_digest(info.digest)
            d = Digester(alg)
            with content.reader(info.digest) as f:
                while chunk := f.read(_CHUNK):
                    d.update(chunk)
        except (DockyardError, OSError) as exc:
            problems.append(f"blob {info.digest}: unreadable: {exc}")
            continue
        if d.digest() != info.digest:
            problems.append(f"blob {info.digest}: content hashes to {d.digest()}")
    return problems


def verify_images(svc: ImageService) -> list[str]:
    problems = verify_content(svc.content)
    for row in svc.records.list_images():
        try:
            cfg = json.loads(read_blob(svc.content, row.id))
        except NotFound:
            problems.append(f"image {row.id}: config blob missing")
            continue
        except ValueError:
            problems.append(f"image {row.id}: config is not JSON")
            continue
        for d in row.doc.get("layers") or []:
            try:
                svc.content.info(str(d.get("digest")))
            except NotFound:
                problems.append(f"image {row.id}: layer blob {d.get('digest')} missing")
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        chains = chain_ids(diff_ids)
        if (chains[-1] if chains else "") != row.chain_id:
            problems.append(f"image {row.id}: chain {row.chain_id} does not match its diff ids")
        for c in chains:
            layer = svc.records.get_layer(c)
            if layer is None:
                problems.append(f"image {row.id}: layer {c} not recorded")
                continue
            try:
                svc.snapshotter.stat(layer.snapshot)
            except NotFound:
                problems.append(f"image {row.id}: snapshot of layer {c} missing")
    return problems
