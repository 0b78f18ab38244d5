"""THE error → HTTP status table (moby's httpstatus.FromError), and the docker error body.

This is the only place where a dockyard error class becomes an HTTP status. An exception
that is not a DockyardError is a bug: it is logged with its type and answered with 500.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from dockyard import errors

__all__ = ["STATUS", "error_response", "status_of"]

log = logging.getLogger("dockyard.daemon")

#: most specific first; the first matching class wins
STATUS: tuple[tuple[type[errors.DockyardError], int], ...] = (
    (errors.NotFound, 404),
    (errors.InvalidArgument, 400),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.FailedPrecondition, 409),
    (errors.Unauthorized, 401),
    (errors.PermissionDenied, 403),
    (errors.NotModified, 304),
    (errors.Unsupported, 501),
    (errors.Unavailable, 503),
    (errors.Internal, 500),
)


def status_of(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: BaseException) -> web.Response:
    """Docker's error body: ``{"message": "..."}`` with Content-Type exactly application/json."""
    status = status_of(exc)
    if isinstance(exc, errors.DockyardError):
        message = exc.message
    else:
        log.error("unclassified error %s: %s", type(exc).__name__, exc, exc_info=exc)
        message = f"{type(exc).__name__}: {exc}"
    if status == 304:
        return web.Response(status=304)
    body = (json.dumps({"message": message}) + "\n").encode()
    return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})
