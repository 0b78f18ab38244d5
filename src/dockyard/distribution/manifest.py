"""Descriptors, manifests and platform selection: the data side of pull and push (no I/O).

* :class:`Descriptor` — ``{mediaType, size, digest[, urls, annotations, platform]}``.
* :func:`detect_media_type` — what a manifest body is, from its Content-Type and its JSON.
* :func:`select_platform` — the index/list entry for ``linux/amd64`` (or another platform),
  skipping attestation entries (``unknown/unknown``) and honouring variants
  (``arm/v7`` accepts ``v7``, ``v6``, ``v5``, best first; ``amd64`` means ``v1``; ``arm64``
  means ``v8``).
* :func:`build_schema2_manifest`, :func:`build_manifest` — the manifest bytes for a config
  and its layers, formatted as docker's (``json.MarshalIndent`` with three spaces).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument, NotFound, Unsupported
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import parse_digest

__all__ = [
    "Descriptor",
    "Platform",
    "SCHEMA1_TYPES",
    "build_manifest",
    "build_schema2_manifest",
    "detect_media_type",
    "parse_manifest",
    "select_platform",
]

SCHEMA1_TYPES = frozenset({mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED})
_FOREIGN = frozenset({mt.DOCKER_LAYER_FOREIGN_GZIP, mt.OCI_LAYER_ND, mt.OCI_LAYER_ND_GZIP,
                      mt.OCI_LAYER_ND_ZSTD})


@dataclass(frozen=True)
class Descriptor:
    """An OCI/Docker content descriptor. ``digest`` is ``alg:hex``; ``size`` in bytes."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] | None = field(default=None, compare=False, hash=False)
    platform: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Descriptor":
        """Parse and validate one descriptor object; InvalidArgument if malformed."""
        if not isinstance(d, Mapping):
            raise InvalidArgument("invalid descriptor: not an object")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str):
            raise InvalidArgument("invalid descriptor: missing digest")
        parse_digest(digest)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid descriptor {digest}: bad size {size!r}")
        urls = d.get("urls") or ()
        return cls(
            media_type=str(d.get("mediaType") or ""),
            digest=digest,
            size=size,
            urls=tuple(str(u) for u in urls),
            annotations=d.get("annotations"),
            platform=d.get("platform"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Docker's field order: mediaType, size, digest, urls, annotations, platform."""
        out: dict[str, Any] = {"mediaType": self.media_type, "size": self.size,
                               "digest": self.digest}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @property
    def is_foreign(self) -> bool:
        """A non-distributable layer (Windows base layers): never pushed, fetched from urls."""
        return self.media_type in _FOREIGN


# -- media types --------------------------------------------------------------------------

def detect_media_type(content_type: str, body: bytes) -> str:
    """The manifest's media type: the Content-Type if it is one we know, else from the JSON.

    Registries sometimes answer ``application/json`` or ``text/plain``; then ``mediaType``,
    ``manifests`` (an index) or ``schemaVersion: 1`` decide.
    """
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct in mt.MANIFESTS or ct in mt.INDEXES or ct in SCHEMA1_TYPES:
        return ct
    try:
        doc = json.loads(body)
    except ValueError:
        raise InvalidArgument(f"invalid manifest: not JSON (Content-Type {ct or 'none'})") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    if doc.get("schemaVersion") == 1:
        return mt.DOCKER_MANIFEST_V1_SIGNED if "signatures" in doc else mt.DOCKER_MANIFEST_V1
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc or "layers" in doc:
        return mt.OCI_MANIFEST
    return ct or "application/octet-stream"


def parse_manifest(body: bytes, media_type: str) -> dict[str, Any]:
    """The manifest or index as a dict, checked enough for pull and push to walk it."""
    if media_type in SCHEMA1_TYPES:
        raise Unsupported("Docker Image manifest version 2, schema 1 is not supported: "
                          "ask the image's author to push it in the Docker schema2 or OCI format")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidArgument(f"invalid manifest: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    if doc.get("schemaVersion") == 1:
        return parse_manifest(body, mt.DOCKER_MANIFEST_V1)
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"invalid manifest: schemaVersion {doc.get('schemaVersion')!r}")
    if media_type in mt.INDEXES:
        if not isinstance(doc.get("manifests"), list):
            raise InvalidArgument("invalid manifest list: no manifests")
    elif media_type in mt.MANIFESTS:
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers", []), list):
            raise InvalidArgument("invalid manifest: no config or layers")
    else:
        raise Unsupported(f"unsupported manifest media type: {media_type}")
    return doc


# -- platforms ----------------------------------------------------------------------------

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "arm": ("arm", ""),
    "i386": ("386", ""), "i686": ("386", ""), "386": ("386", ""),
}
_DEFAULT_VARIANT = {"amd64": "v1", "arm64": "v8", "arm": "v7"}


def _variant_num(v: str) -> int | None:
    v = v.lower().lstrip("v")
    return int(v) if v.isdigit() else None


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``, normalised the way containerd's ``platforms`` does."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, spec: str) -> "Platform":
        parts = [p.strip() for p in spec.strip().lower().split("/")]
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidArgument(f"invalid platform: {spec!r} (want os/arch[/variant])")
        return cls.of(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def of(cls, os: str, arch: str, variant: str = "") -> "Platform":
        arch, alias_variant = _ARCH_ALIASES.get(arch.lower(), (arch.lower(), ""))
        variant = (variant or alias_variant).lower()
        if variant and variant[0].isdigit():
            variant = "v" + variant
        if variant == _DEFAULT_VARIANT.get(arch):
            variant = ""
        return cls(os.lower(), arch, variant)

    def variant_level(self) -> int | None:
        return _variant_num(self.variant or _DEFAULT_VARIANT.get(self.architecture, ""))

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def _match_rank(want: Platform, entry: Mapping[str, Any]) -> int | None:
    """0 = exact, higher = a compatible older variant, None = not usable."""
    os_ = str(entry.get("os") or "")
    arch = str(entry.get("architecture") or "")
    if not os_ or not arch or os_ == "unknown" or arch == "unknown":
        return None
    got = Platform.of(os_, arch, str(entry.get("variant") or ""))
    if got.os != want.os or got.architecture != want.architecture:
        return None
    if got.variant == want.variant:
        return 0
    w, g = want.variant_level(), got.variant_level()
    if w is None or g is None or g > w:
        return None
    return w - g


def select_platform(index: Mapping[str, Any], platform: str | Platform) -> Descriptor:
    """The best ``manifests[]`` entry of an index for ``platform``; NotFound as docker says it."""
    want = platform if isinstance(platform, Platform) else Platform.parse(platform)
    best: tuple[int, int, Descriptor] | None = None
    for i, entry in enumerate(index.get("manifests") or ()):
        if not isinstance(entry, Mapping):
            continue
        plat = entry.get("platform")
        if not isinstance(plat, Mapping):
            continue
        ann = entry.get("annotations") or {}
        if isinstance(ann, Mapping) and "vnd.docker.reference.type" in ann:
            continue
        rank = _match_rank(want, plat)
        if rank is None:
            continue
        desc = Descriptor.from_dict(entry)
        if best is None or (rank, i) < best[:2]:
            best = (rank, i, desc)
    if best is None:
        raise NotFound(f"no matching manifest for {platform} in the manifest list entries")
    return best[2]


# -- building -----------------------------------------------------------------------------

_TO_DOCKER_LAYER = {
    mt.DOCKER_LAYER_GZIP: mt.DOCKER_LAYER_GZIP,
    mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER_GZIP,
    mt.DOCKER_LAYER_FOREIGN_GZIP: mt.DOCKER_LAYER_FOREIGN_GZIP,
    mt.OCI_LAYER_ND_GZIP: mt.DOCKER_LAYER_FOREIGN_GZIP,
}
_TO_OCI_LAYER = {
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_FOREIGN_GZIP: mt.OCI_LAYER_ND_GZIP,
}


def _dump(doc: Mapping[str, Any]) -> bytes:
    # Go's json.MarshalIndent(v, "", "   "): three spaces, ": " after keys, no trailing newline
    return json.dumps(doc, indent=3, separators=(",", ": "), ensure_ascii=False).encode()


def build_schema2_manifest(config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """A Docker image manifest v2 schema 2 (the format ``docker push`` writes).

    Layers must be gzip-compressed (Docker or OCI gzip media type; OCI gzip is renamed to
    Docker's). Uncompressed or zstd layers need an OCI manifest: InvalidArgument.
    """
    out_layers = []
    for layer in layers:
        media = _TO_DOCKER_LAYER.get(layer.media_type)
        if media is None:
            raise InvalidArgument(
                f"layer {layer.digest} has media type {layer.media_type!r}, "
                "which a Docker schema2 manifest cannot carry (use an OCI manifest)")
        out_layers.append(Descriptor(media, layer.digest, layer.size, layer.urls,
                                     layer.annotations).to_dict())
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": Descriptor(mt.DOCKER_CONFIG, config.digest, config.size).to_dict(),
        "layers": out_layers,
    }
    return _dump(doc)


def _build_oci_manifest(config: Descriptor, layers: Sequence[Descriptor],
                        annotations: Mapping[str, str] | None) -> bytes:
    out_layers = [
        Descriptor(_TO_OCI_LAYER.get(x.media_type, x.media_type), x.digest, x.size, x.urls,
                   x.annotations).to_dict()
        for x in layers
    ]
    cfg_type = config.media_type if config.media_type not in ("", mt.DOCKER_CONFIG) \
        else mt.OCI_CONFIG
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": Descriptor(cfg_type, config.digest, config.size).to_dict(),
        "layers": out_layers,
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return _dump(doc)


def build_manifest(config: Descriptor, layers: Sequence[Descriptor], *,
                   media_type: str = mt.DOCKER_MANIFEST,
                   annotations: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """``(manifest bytes, media type)``: Docker schema2 by default, OCI on request.

    With the default, an image whose layers a schema2 manifest cannot carry (uncompressed
    tar, zstd) gets an OCI manifest instead, as containerd does.
    """
    if media_type == mt.OCI_MANIFEST:
        return _build_oci_manifest(config, layers, annotations), mt.OCI_MANIFEST
    if media_type != mt.DOCKER_MANIFEST:
        raise InvalidArgument(f"cannot build a manifest of type {media_type}")
    if annotations or any(x.media_type not in _TO_DOCKER_LAYER for x in layers):
        return _build_oci_manifest(config, layers, annotations), mt.OCI_MANIFEST
    return build_schema2_manifest(config, layers), mt.DOCKER_MANIFEST
