"""Content digests: ``algorithm:hex``, validation, and hashing while streaming."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["Digester", "digest_bytes", "is_digest", "parse_digest", "validate_digest"]

_ALGOS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"(sha256|sha512):([0-9a-f]+)")


def parse_digest(d: str) -> tuple[str, str]:
    """Split and validate ``sha256:<64 lowercase hex>``; InvalidArgument otherwise."""
    m = _DIGEST_RE.fullmatch(d)
    if not m or len(m.group(2)) != _ALGOS[m.group(1)]:
        raise InvalidArgument(f"invalid digest: {d!r}")
    return m.group(1), m.group(2)


def validate_digest(d: str) -> str:
    parse_digest(d)
    return d


def is_digest(d: str) -> bool:
    try:
        parse_digest(d)
    except InvalidArgument:
        return False
    return True


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class Digester:
    """Feed bytes as they stream by; ``digest()`` gives ``alg:hex``, ``size`` the count."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _ALGOS:
            raise InvalidArgument(f"unsupported digest algorithm: {algorithm}")
        self.algorithm = algorithm
        self._h: Any = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return f"{self.algorithm}:{self._h.hexdigest()}"
