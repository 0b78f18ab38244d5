"""The registry's storage layout, drawn once (layout version 1). Every driver path comes from here.

::

    /                                            the driver's root (``--root DIR`` on disk)
    ├── layout-version                           "1": LAYOUT_VERSION (``repo.ensure_layout``)
    ├── blobs/                                   GLOBAL content-addressed store: each blob once
    │   └── <alg>/<hex[:2]>/<hex>/data           layer, config or manifest bytes; moved into
    │                                            place only after size and digest are verified
    └── repositories/
        └── <name>/                              one or more components: library/busybox
            ├── _layers/<alg>/<hex>/link         "this repository may serve blob <alg>:<hex>"
            ├── _manifests/
            │   ├── revisions/<alg>/<hex>/link   a manifest of this repository (bytes in blobs/)
            │   └── tags/<tag>/current/link      the digest the tag points to
            ├── _referrers/<alg>/<hex>/          manifests whose ``subject`` is <alg>:<hex>
            │   └── <alg>/<hex>/link             one per referring manifest
            └── _uploads/<uuid>/                 a blob upload in progress
                ├── data                         bytes received so far (appended to)
                └── startedat                    RFC 3339 UTC time of the POST

    <DIR>/token.key                              (filesystem only, not through the driver)
                                                 HMAC key of --auth token, mode 0600

Why links: a repository holds only *links* (files whose content is the digest) to the one
global store. A blob pushed to ten repositories is stored once; deleting a blob from a
repository removes its link; ``garbage-collect`` removes blobs that no manifest references.
Repository names cannot start a component with ``_`` (``names.py``), so ``_layers`` and the
rest can never be mistaken for part of a name, and a name ``a`` can sit beside ``a/b``.

Crash safety comes from the order of writes, each of them atomic (``put_content``, ``move``):
blob bytes, then the links that make them visible. A crash leaves at worst a blob nobody
links (collected later) or an upload directory (resumed, or purged by ``garbage-collect``).
"""

from __future__ import annotations

from dockyard.oci.digest import parse_digest

__all__ = [
    "BLOBS", "LAYOUT_VERSION", "LAYOUT_VERSION_FILE", "REPOSITORIES", "blob_data", "blob_dir",
    "layer_link", "layers_dir",
    "manifest_revision_link", "manifest_revisions_dir", "referrer_link", "referrers_dir",
    "repo_dir", "tag_dir", "tag_link", "tags_dir", "upload_data", "upload_dir",
    "upload_startedat", "uploads_dir", "digest_from_parts",
]

LAYOUT_VERSION = 1
LAYOUT_VERSION_FILE = "/layout-version"
BLOBS = "/blobs"
REPOSITORIES = "/repositories"


def _split(digest: str) -> tuple[str, str]:
    return parse_digest(digest)


def digest_from_parts(alg: str, hex_: str) -> str:
    return f"{alg}:{hex_}"


def blob_dir(digest: str) -> str:
    alg, hex_ = _split(digest)
    return f"{BLOBS}/{alg}/{hex_[:2]}/{hex_}"


def blob_data(digest: str) -> str:
    return blob_dir(digest) + "/data"


def repo_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers_dir(name: str) -> str:
    return f"{repo_dir(name)}/_layers"


def layer_link(name: str, digest: str) -> str:
    alg, hex_ = _split(digest)
    return f"{layers_dir(name)}/{alg}/{hex_}/link"


def manifest_revisions_dir(name: str) -> str:
    return f"{repo_dir(name)}/_manifests/revisions"


def manifest_revision_link(name: str, digest: str) -> str:
    alg, hex_ = _split(digest)
    return f"{manifest_revisions_dir(name)}/{alg}/{hex_}/link"


def tags_dir(name: str) -> str:
    return f"{repo_dir(name)}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{tag}"


def tag_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def referrers_dir(name: str, subject: str) -> str:
    alg, hex_ = _split(subject)
    return f"{repo_dir(name)}/_referrers/{alg}/{hex_}"


def referrer_link(name: str, subject: str, digest: str) -> str:
    alg, hex_ = _split(digest)
    return f"{referrers_dir(name, subject)}/{alg}/{hex_}/link"


def uploads_dir(name: str) -> str:
    return f"{repo_dir(name)}/_uploads"


def upload_dir(name: str, uuid: str) -> str:
    return f"{uploads_dir(name)}/{uuid}"


def upload_data(name: str, uuid: str) -> str:
    return upload_dir(name, uuid) + "/data"


def upload_startedat(name: str, uuid: str) -> str:
    return upload_dir(name, uuid) + "/startedat"
