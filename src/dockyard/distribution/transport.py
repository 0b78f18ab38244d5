"""The HTTP layer shared by every registry client: one aiohttp session, TLS per host, and the
translation of failures into ``dockyard.errors``.

* Connection failures, resets and timeouts → ``Unavailable`` worded as Go's ``url.Error``:
  ``Get "http://127.0.0.1:1/v2/": connect: connection refused``.
* A registry error body ``{"errors":[{"code","message","detail"}]}`` → the class its code
  (or else its status) means, with docker's text ``manifest unknown: manifest unknown``
  (the code lower-cased with spaces, then the registry's message). The exception carries
  ``status`` (int) and ``codes`` (list of :class:`ErrorCode`) as attributes.

The session never decompresses (a layer is a ``.tar.gz`` and must stay one), sends
``Accept-Encoding: identity``, ignores proxy variables, and follows no redirect by itself:
``RegistryClient`` follows them so that ``Authorization`` goes to the registry's host only.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl as _ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp
from yarl import URL

from dockyard.errors import (
    Conflict,
    DockyardError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthorized,
    Unavailable,
    Unsupported,
)

from .auth import SimpleResponse
from .hosts import RegistryHosts

__all__ = ["ErrorCode", "Transport", "USER_AGENT", "error_from_response", "network_error"]

def _version() -> str:
    try:
        from importlib.metadata import version
        return version("dockyard")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0"


USER_AGENT = f"dockyard/{_version()} (linux)"
#: bytes aiohttp may buffer per response before it stops reading the socket (x2)
READ_BUFSIZE = 4 << 20
#: manifests, token replies and error bodies are small; refuse more (docker: 4 MiB manifests)
SMALL_BODY_LIMIT = 4 << 20


@dataclass(frozen=True)
class ErrorCode:
    """One entry of a registry's ``errors`` array."""

    code: str
    message: str = ""
    detail: Any = None

    def __str__(self) -> str:
        text = self.code.lower().replace("_", " ")
        return f"{text}: {self.message}" if self.message else text


_CODE_CLASS: dict[str, type[DockyardError]] = {
    "UNAUTHORIZED": Unauthorized,
    "DENIED": PermissionDenied,
    "BLOB_UNKNOWN": NotFound,
    "BLOB_UPLOAD_UNKNOWN": NotFound,
    "MANIFEST_UNKNOWN": NotFound,
    "NAME_UNKNOWN": NotFound,
    "BLOB_UPLOAD_INVALID": InvalidArgument,
    "DIGEST_INVALID": InvalidArgument,
    "MANIFEST_BLOB_UNKNOWN": InvalidArgument,
    "MANIFEST_INVALID": InvalidArgument,
    "MANIFEST_UNVERIFIED": InvalidArgument,
    "NAME_INVALID": InvalidArgument,
    "SIZE_INVALID": InvalidArgument,
    "TAG_INVALID": InvalidArgument,
    "RANGE_INVALID": InvalidArgument,
    "PAGINATION_NUMBER_INVALID": InvalidArgument,
    "UNSUPPORTED": Unsupported,
    "TOOMANYREQUESTS": Unavailable,
    "UNAVAILABLE": Unavailable,
}
_STATUS_CLASS: dict[int, type[DockyardError]] = {
    400: InvalidArgument, 401: Unauthorized, 403: PermissionDenied, 404: NotFound,
    405: Unsupported, 409: Conflict, 413: InvalidArgument, 414: InvalidArgument,
    415: Unsupported, 416: InvalidArgument, 429: Unavailable, 501: Unsupported,
    502: Unavailable, 503: Unavailable, 504: Unavailable,
}


def _parse_codes(body: bytes) -> tuple[list[ErrorCode], str]:
    """``(codes, details)`` from an error body; both empty if it is not one."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return [], ""
    if not isinstance(doc, dict):
        return [], ""
    codes: list[ErrorCode] = []
    errs = doc.get("errors")
    if isinstance(errs, list):
        for e in errs:
            if isinstance(e, dict) and isinstance(e.get("code"), str):
                codes.append(ErrorCode(e["code"].upper(), str(e.get("message") or ""),
                                       e.get("detail")))
    details = doc.get("details")
    return codes, details if isinstance(details, str) else ""


def error_from_response(status: int, body: bytes, *, method: str = "", url: URL | str = "",
                        reason: str = "") -> DockyardError:
    """The dockyard error for a failed registry reply (see the module docstring)."""
    codes, details = _parse_codes(body)
    if codes:
        cls = _CODE_CLASS.get(codes[0].code) or _STATUS_CLASS.get(status, Internal)
        if len(codes) == 1:
            msg = str(codes[0])
        else:
            msg = "errors:\n" + "".join(f"{c}\n" for c in codes)
    elif status == 401:
        cls = Unauthorized
        codes = [ErrorCode("UNAUTHORIZED", details or "authentication required")]
        msg = str(codes[0])
    else:
        cls = _STATUS_CLASS.get(status, Internal)
        reason = reason or _reason(status)
        msg = f"received unexpected HTTP status: {status} {reason}".rstrip()
    exc = cls(msg)
    exc.status = status  # type: ignore[attr-defined]
    exc.codes = codes    # type: ignore[attr-defined]
    exc.url = str(url)   # type: ignore[attr-defined]
    return exc


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def network_error(method: str, url: URL | str, exc: BaseException) -> Unavailable:
    """``Unavailable`` worded as Go's ``url.Error``: ``Get "URL": <what went wrong>``."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        what = f"tls: failed to verify certificate: {exc.certificate_error}"
    elif isinstance(exc, (aiohttp.ClientSSLError, _ssl.SSLError)):
        what = f"tls: {exc}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        errno = getattr(exc.os_error, "errno", None)
        reason = os.strerror(errno).lower() if errno else str(exc.os_error or exc)
        what = f"dial tcp {exc.host}:{exc.port}: connect: {reason}"
    elif isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        what = "net/http: timeout awaiting response headers"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "EOF"
    else:
        what = str(exc) or type(exc).__name__
    u = URL(url) if isinstance(url, str) else url
    shown = u.with_query(None) if u.query_string and "token" in u.path else u
    err = Unavailable(f'{method.capitalize()} "{shown}": {what}')
    err.__cause__ = exc
    return err


#: what a network failure can raise out of aiohttp (ClientError covers payload errors too)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, _ssl.SSLError)


class Transport:
    """One aiohttp session and the TLS rules of :class:`RegistryHosts`.

    Create it inside the event loop that will use it (or let it create its session lazily);
    ``await close()`` (or ``async with``) when done.
    """

    def __init__(self, hosts: RegistryHosts | None = None, *, user_agent: str = USER_AGENT,
                 connect_timeout: float = 30.0, read_timeout: float = 300.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.hosts = hosts or RegistryHosts()
        self.user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=60),
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
                read_bufsize=READ_BUFSIZE,
                headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "Transport":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, url: URL, *, headers: Mapping[str, str] | None = None,
                      data: Any = None) -> aiohttp.ClientResponse:
        """Send one request; the caller reads and releases the response. No redirects."""
        try:
            return await self.session.request(
                method, url, headers=headers, data=data, allow_redirects=False,
                ssl=self.hosts.ssl_for(url))
        except NETWORK_ERRORS as exc:
            raise network_error(method, url, exc) from exc

    async def fetch(self, method: str, url: URL, *, headers: Mapping[str, str] | None = None,
                    data: bytes | Mapping[str, str] | None = None) -> SimpleResponse:
        """``auth.HTTP``: one small request, read whole (at most 4 MiB)."""
        resp = await self.request(method, url, headers=headers, data=data)
        try:
            body = await read_limited(resp, SMALL_BODY_LIMIT, method, url)
        finally:
            resp.release()
        return SimpleResponse(resp.status, resp.headers, body, resp.url, resp.reason or "",
                              tuple(resp.headers.getall("WWW-Authenticate", ())))


async def read_limited(resp: aiohttp.ClientResponse, limit: int, method: str,
                       url: URL) -> bytes:
    """The whole body, refusing more than ``limit`` bytes."""
    if resp.content_length is not None and resp.content_length > limit:
        raise InvalidArgument(f"{method} {url}: response of {resp.content_length} bytes "
                              f"is larger than {limit}")
    parts: list[bytes] = []
    n = 0
    try:
        while chunk := await resp.content.read(1 << 20):
            n += len(chunk)
            if n > limit:
                raise InvalidArgument(f"{method} {url}: response larger than {limit} bytes")
            parts.append(chunk)
    except NETWORK_ERRORS as exc:
        raise network_error(method, url, exc) from exc
    return b"".join(parts)
