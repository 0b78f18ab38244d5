"""Reading a manifest's bytes: its media type and the descriptors it references. Pure.

The four supported kinds are Docker schema2 manifest and manifest list, OCI image manifest
and OCI index. Docker kinds must carry ``mediaType`` (their spec requires it); an OCI manifest
without it is told from an index by its fields, so the media type of stored bytes can always
be recomputed from the bytes alone and needs no record of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import is_digest

from .. import errcodes
from ..errcodes import RegistryError

__all__ = ["Descriptor", "ManifestInfo", "KINDS", "parse_manifest", "media_type_of"]

KINDS = frozenset({mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.OCI_INDEX})
_SCHEMA1 = frozenset({mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED})
#: layers that may live elsewhere (``urls``): a manifest may name them without pushing them
_FOREIGN = frozenset({
    mt.DOCKER_LAYER_FOREIGN_GZIP, mt.OCI_LAYER_ND, mt.OCI_LAYER_ND_GZIP, mt.OCI_LAYER_ND_ZSTD,
})


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    foreign: bool = False  # has urls and a non-distributable type: need not be in the registry


@dataclass(frozen=True)
class ManifestInfo:
    media_type: str
    blobs: tuple[Descriptor, ...] = ()  # config + layers of an image manifest
    children: tuple[Descriptor, ...] = ()  # manifests of an index / list
    subject: Descriptor | None = None
    artifact_type: str | None = None  # for the referrers API
    annotations: dict[str, str] | None = field(default=None, hash=False)


def _invalid(why: str) -> RegistryError:
    return RegistryError(errcodes.MANIFEST_INVALID, {"reason": why})


def _descriptor(d: Any, where: str) -> Descriptor:
    if not isinstance(d, dict):
        raise _invalid(f"{where}: not a descriptor")
    digest, size, media = d.get("digest"), d.get("size"), d.get("mediaType")
    if not isinstance(digest, str) or not is_digest(digest) or digest.endswith("\n"):
        raise _invalid(f"{where}: invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: invalid size {size!r}")
    if not isinstance(media, str) or not media:
        raise _invalid(f"{where}: missing mediaType")
    urls = d.get("urls")
    return Descriptor(media, digest, size, foreign=bool(urls) and media in _FOREIGN)


def _bare(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_manifest(data: bytes, content_type: str | None = None) -> ManifestInfo:
    """Check the structure of a pushed manifest; ``MANIFEST_INVALID`` says what is wrong.

    ``content_type`` is the PUT's header: it must agree with ``mediaType`` when both name a
    manifest kind, and names the kind when the body does not (OCI only).
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("not JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("not a JSON object")
    ct = _bare(content_type)
    if doc.get("schemaVersion") == 1 or ct in _SCHEMA1:
        raise _invalid("schema1 manifests are not supported")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType is not a string")
    if body_type and ct in KINDS and body_type != ct:
        raise _invalid(f"mediaType {body_type} does not match Content-Type {ct}")
    media = body_type or _guess(doc)
    if media not in KINDS:
        raise _invalid(f"unsupported manifest media type {media!r}")
    if ct in KINDS and media != ct:  # e.g. a docker kind sent without its mediaType
        raise _invalid(f"Content-Type {ct} needs mediaType in the manifest")
    subject = _descriptor(doc["subject"], "subject") if "subject" in doc else None
    annotations = doc.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise _invalid("annotations must map strings to strings")
    artifact = doc.get("artifactType")
    if artifact is not None and not isinstance(artifact, str):
        raise _invalid("artifactType is not a string")
    if media in (mt.DOCKER_MANIFEST, mt.OCI_MANIFEST):
        config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers is not a list")
        blobs = (config, *(_descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)))
        return ManifestInfo(media, blobs=blobs, subject=subject,
                            artifact_type=artifact or config.media_type, annotations=annotations)
    children = doc.get("manifests", [])
    if not isinstance(children, list):
        raise _invalid("manifests is not a list")
    kids = tuple(_descriptor(x, f"manifests[{i}]") for i, x in enumerate(children))
    return ManifestInfo(media, children=kids, subject=subject, artifact_type=artifact,
                        annotations=annotations)


def _guess(doc: dict[str, Any]) -> str:
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    return ""


def media_type_of(data: bytes) -> str:
    """The media type of stored (already validated) manifest bytes."""
    try:
        doc = json.loads(data)
    except ValueError:
        return mt.OCI_MANIFEST
    body_type = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(body_type, str) and body_type:
        return body_type
    return _guess(doc) if isinstance(doc, dict) else mt.OCI_MANIFEST
