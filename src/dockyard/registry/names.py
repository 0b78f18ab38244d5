"""Validation of what a client puts in a URL: repository names, tags, digests.

A name is path components ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`` joined by ``/``, at most
255 characters (distribution-spec). No component can start with ``_``, so names never collide
with the storage layout's own ``_manifests``, ``_layers``, ... directories, and ``..`` is
impossible. A tag is ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``; a digest ``sha256:<64 hex>`` or
``sha512:<128 hex>``.
"""

from __future__ import annotations

import re

from dockyard.oci.digest import is_digest

from . import errcodes
from .errcodes import RegistryError

__all__ = ["MAX_NAME", "check_digest", "check_name", "check_tag", "is_name"]

MAX_NAME = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")  # ASCII: \w would take any letter


def is_name(name: str) -> bool:
    return len(name) <= MAX_NAME and _NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not is_name(name):
        raise RegistryError(errcodes.NAME_INVALID, {"name": name})
    return name


def check_tag(tag: str) -> str:
    if _TAG_RE.fullmatch(tag) is None:
        raise RegistryError(errcodes.TAG_INVALID, {"tag": tag})
    return tag


def check_digest(digest: str) -> str:
    # oci.digest's pattern ends in ``$``, which also matches before a trailing newline
    if not is_digest(digest) or digest.endswith("\n"):
        raise RegistryError(errcodes.DIGEST_INVALID, {"digest": digest},
                            message="invalid digest")
    return digest
