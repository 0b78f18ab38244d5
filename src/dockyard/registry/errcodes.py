"""The registry's error codes, each with its HTTP status: the one table (OCI distribution-spec).

Everything in ``dockyard.registry`` that fails a request raises ``RegistryError(CODE, detail)``
with a code from this table; one middleware (``app.py``) turns it into the spec body::

    {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {...}}]}

Codes are the spec's ("code-1..14") plus the ones docker's distribution also sends
(``TAG_INVALID``, ``RANGE_INVALID``, ``PAGINATION_NUMBER_INVALID``, ``UNKNOWN``,
``UNAVAILABLE``). ``MANIFEST_TOO_LARGE`` is a row of its own because it carries 413, but on
the wire it is the spec's ``MANIFEST_INVALID``. ``NOT_FOUND`` (a path that is no API route) is
ours; distribution answers those with a plain-text 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ErrorCode", "RegistryError", "BY_NAME", "error_body"]


@dataclass(frozen=True)
class ErrorCode:
    code: str  # the wire value
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400
)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_TOO_LARGE = ErrorCode("MANIFEST_INVALID", "manifest exceeds the size limit", 413)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
# docker/distribution extras
TAG_INVALID = ErrorCode("TAG_INVALID", "invalid tag", 400)
RANGE_INVALID = ErrorCode("RANGE_INVALID", "invalid content range", 416)
PAGINATION_NUMBER_INVALID = ErrorCode(
    "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
)
UNKNOWN = ErrorCode("UNKNOWN", "unknown error", 500)
UNAVAILABLE = ErrorCode("UNAVAILABLE", "service unavailable", 503)
NOT_FOUND = ErrorCode("NOT_FOUND", "no such route", 404)

#: the table, by Python name
BY_NAME: dict[str, ErrorCode] = {
    k: v for k, v in dict(globals()).items() if isinstance(v, ErrorCode)
}


@dataclass(eq=False)
class RegistryError(Exception):
    """A request failed with ``code``; ``detail`` is any JSON value, ``headers`` go on the reply
    (``WWW-Authenticate``, ``Range``, ...)."""

    code: ErrorCode
    detail: Any = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message or self.code.message)

    @property
    def status(self) -> int:
        return self.code.status

    def __str__(self) -> str:
        s = f"{self.code.code.lower().replace('_', ' ')}: {self.message or self.code.message}"
        return s if self.detail is None else f"{s} ({self.detail})"


def error_body(*errors: RegistryError) -> bytes:
    """The spec's JSON error body for one or more errors."""
    out = []
    for e in errors:
        item: dict[str, Any] = {"code": e.code.code, "message": e.message or e.code.message}
        if e.detail is not None:
            item["detail"] = e.detail
        out.append(item)
    return json.dumps({"errors": out}).encode()
