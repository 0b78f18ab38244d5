"""HTTP status → ``dockyard.errors`` classes: the inverse of ``dockyard.daemon.errors``' table.

The daemon maps each error class to a status in one table (404/400/409/401/403/304/501/503,
else 500); this module maps a status back to the same class, so a caller catches
``NotFound`` whether the error happened in-process or on the far side of the socket.

An error built from a daemon response carries ``status`` (the HTTP status) and
``from_daemon = True``; the CLI prints those as ``Error response from daemon: <message>``,
as the docker CLI does. The message is the daemon's ``{"message": ...}`` when the body is
``application/json`` (exactly, as the Go client checks), else the raw body text.
"""

from __future__ import annotations

from dockyard.client.jsoncodec import loads
from dockyard.errors import (
    Conflict,
    DockyardError,
    Internal,
    InvalidArgument,
    NotFound,
    NotModified,
    PermissionDenied,
    Unauthorized,
    Unavailable,
    Unsupported,
)

__all__ = [
    "STATUS_TO_ERROR",
    "ConnectionFailed",
    "error_class_for_status",
    "error_from_response",
    "is_daemon_error",
]

#: HTTP status → error class; any other status ≥ 400 maps to ``Internal``
STATUS_TO_ERROR: dict[int, type[DockyardError]] = {
    304: NotModified,
    400: InvalidArgument,
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    501: Unsupported,
    503: Unavailable,
}

_STATUS_TEXT = {
    304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}


class ConnectionFailed(Unavailable):
    """The daemon's socket could not be reached (no daemon, wrong ``-H``, permissions)."""


def error_class_for_status(status: int) -> type[DockyardError]:
    return STATUS_TO_ERROR.get(status, Internal)


def is_daemon_error(err: BaseException) -> bool:
    """True for an error that the daemon answered (print it with docker's prefix)."""
    return bool(getattr(err, "from_daemon", False))


def error_from_response(
    status: int,
    body: bytes,
    content_type: str = "",
    reason: str = "",
    url: str = "",
) -> DockyardError:
    """Build the error for a non-2xx response, with docker's client wording."""
    status_msg = f"{status} {reason or _STATUS_TEXT.get(status, '')}".rstrip()
    if not body:
        if url:
            msg = (f"request returned {status_msg} for API route and version {url}, "
                   "check if the server supports the requested API version")
        else:
            msg = (f"request returned {status_msg}; "
                   "check if the server supports the requested API version")
        err = error_class_for_status(status)(msg)
        err.status = status  # type: ignore[attr-defined]
        return err
    if content_type == "application/json":
        try:
            parsed = loads(body)
        except ValueError as exc:
            err = error_class_for_status(status)(f"Error reading JSON: {exc}")
            err.status = status  # type: ignore[attr-defined]
            return err
        message = parsed.get("message", "") if isinstance(parsed, dict) else ""
        if not message:
            message = (f"API returned a {status} ({_STATUS_TEXT.get(status, '')}) "
                       "but provided no error-message")
        message = str(message).strip()
    else:
        message = body.decode("utf-8", "replace").strip()
    err = error_class_for_status(status)(message)
    err.status = status  # type: ignore[attr-defined]
    err.from_daemon = True  # type: ignore[attr-defined]
    return err
