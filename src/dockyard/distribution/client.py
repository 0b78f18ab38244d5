"""``RegistryClient``: the OCI Distribution API of one registry endpoint.

One client serves one operation (a pull, a push) against one :class:`Endpoint`; the scopes
its token covers grow as the operation touches repositories (``pull`` to read, ``pull,push``
to write, ``pull`` on the source of a cross-repository mount). Clients share a
:class:`Transport` (connections) and a :class:`TokenCache` (tokens).

Every method maps failures to ``dockyard.errors`` (see ``transport``): a registry's error
body keeps its message (``manifest unknown: manifest unknown``), 401 → ``Unauthorized``,
network failures → ``Unavailable``.

Redirects (a blob GET answered with 307 to a storage backend) are followed here, not by
aiohttp, so that ``Authorization`` is only ever sent to the registry's own origin.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from dockyard.errors import DockyardError, InvalidArgument, Unauthorized, Unavailable
from dockyard.oci import mediatypes as mt

from .auth import Authorizer, Credentials, TokenCache, parse_www_authenticate, scope_string
from .hosts import Endpoint
from .manifest import Descriptor
from .transport import SMALL_BODY_LIMIT, Transport, error_from_response, read_limited

__all__ = ["MANIFEST_ACCEPT", "RegistryClient"]

MANIFEST_ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 10

Body = bytes | Callable[[], AsyncIterable[bytes]] | None


def _same_origin(a: URL, b: URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


class RegistryClient:
    """Requests to one registry endpoint, authorised for the repositories used so far."""

    def __init__(self, transport: Transport, endpoint: Endpoint,
                 creds: Credentials | None = None, *, cache: TokenCache | None = None) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.base = endpoint.url
        self.auth = Authorizer(transport, endpoint.host, creds, cache=cache)
        self._scopes: dict[str, set[str]] = {}
        #: True once ``/v2/`` answered: this endpoint speaks the API (no more fallback)
        self.confirmed = False

    # -- scopes and the request core ------------------------------------------------------

    def want(self, repo: str, *actions: str) -> None:
        """Ask for ``actions`` on ``repo`` in every token from now on."""
        self._scopes.setdefault(repo, set()).update(actions)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(sorted(scope_string(r, a) for r, a in self._scopes.items()))

    def url(self, path: str) -> URL:
        return self.base.with_path(path, encoded=False)

    async def ping(self) -> None:
        """``GET /v2/``: learn the auth challenge. Unavailable if the endpoint is unreachable
        or is not a registry."""
        url = self.url("/v2/")
        resp = await self.transport.fetch("GET", url)
        if resp.status == 401:
            self.auth.challenges = parse_www_authenticate(resp.www_authenticate)
        elif resp.status != 200:
            err = error_from_response(resp.status, resp.body, method="GET", url=url,
                                      reason=resp.reason)
            if resp.status == 404:
                raise Unavailable(f"{url} does not look like a registry: {err.message}")
            raise err
        self.confirmed = True

    async def request(self, method: str, url: URL, *, repo: str | None = None,
                      actions: Iterable[str] = ("pull",), headers: Mapping[str, str] | None = None,
                      body: Body = None, ok: Iterable[int] = (200,),
                      follow: bool = True) -> aiohttp.ClientResponse:
        """Send a request with auth; retry once after a helpful 401; follow redirects.

        Returns the response with a status in ``ok`` (the caller reads and releases it);
        anything else is raised as a dockyard error. ``body`` may be a factory of an async
        byte iterable so that a retry can resend it.
        """
        if not self.confirmed:
            await self.ping()
        if repo:
            self.want(repo, *actions)
        ok = tuple(ok)
        for attempt in (0, 1):
            resp, used = await self._send(method, url, headers, body, follow)
            if resp.status == 401 and attempt == 0:
                www = tuple(resp.headers.getall("WWW-Authenticate", ()))
                if self.auth.on_unauthorized(www, used, self.scopes):
                    resp.release()
                    continue
            if resp.status in ok:
                return resp
            await self._raise(method, resp)
        raise AssertionError("unreachable")

    async def _send(self, method: str, url: URL, headers: Mapping[str, str] | None,
                    body: Body, follow: bool) -> tuple[aiohttp.ClientResponse, str | None]:
        hops = 0
        while True:
            h = dict(headers or {})
            used = None
            if _same_origin(url, self.base):
                try:
                    used = await self.auth.header(self.scopes)
                except Unauthorized as exc:
                    raise Unauthorized(f'{method.capitalize()} "{url}": {exc.message}') from exc
                if used:
                    h["Authorization"] = used
            data: Any = body() if callable(body) else body
            resp = await self.transport.request(method, url, headers=h, data=data)
            if not (follow and resp.status in _REDIRECTS and "Location" in resp.headers):
                return resp, used
            hops += 1
            if hops > _MAX_REDIRECTS:
                resp.release()
                raise Unavailable(f'{method.capitalize()} "{url}": stopped after '
                                  f"{_MAX_REDIRECTS} redirects")
            url = self._location(resp)
            resp.release()

    @staticmethod
    def _location(resp: aiohttp.ClientResponse) -> URL:
        loc = resp.headers.get("Location", "")
        if not loc:
            raise InvalidArgument(f"registry reply from {resp.url} has no Location header")
        u = URL(loc, encoded=True)
        return u if u.is_absolute() else resp.url.join(u)

    async def _raise(self, method: str, resp: aiohttp.ClientResponse) -> None:
        try:
            body = b"" if method == "HEAD" else await read_limited(
                resp, SMALL_BODY_LIMIT, method, resp.url)
        except DockyardError:
            body = b""
        finally:
            resp.release()
        raise error_from_response(resp.status, body, method=method, url=resp.url,
                                  reason=resp.reason or "")

    # -- manifests -------------------------------------------------------------------------

    async def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """``(body, Content-Type, Docker-Content-Digest or "")`` of a tag or digest."""
        url = self.url(f"/v2/{repo}/manifests/{reference}")
        resp = await self.request("GET", url, repo=repo, headers={"Accept": MANIFEST_ACCEPT})
        try:
            body = await read_limited(resp, SMALL_BODY_LIMIT, "GET", url)
        finally:
            resp.release()
        return (body, resp.headers.get("Content-Type", ""),
                resp.headers.get("Docker-Content-Digest", ""))

    async def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        """The manifest's descriptor (digest from ``Docker-Content-Digest``), None if absent."""
        url = self.url(f"/v2/{repo}/manifests/{reference}")
        resp = await self.request("HEAD", url, repo=repo, headers={"Accept": MANIFEST_ACCEPT},
                                  ok=(200, 404))
        resp.release()
        if resp.status == 404:
            return None
        return Descriptor(resp.headers.get("Content-Type", "").split(";")[0].strip(),
                          resp.headers.get("Docker-Content-Digest", ""),
                          int(resp.headers.get("Content-Length", "0") or 0))

    async def put_manifest(self, repo: str, reference: str, data: bytes,
                           media_type: str) -> str:
        """Store a manifest under a tag (or its digest); returns the registry's digest."""
        url = self.url(f"/v2/{repo}/manifests/{reference}")
        resp = await self.request("PUT", url, repo=repo, actions=("pull", "push"),
                                  headers={"Content-Type": media_type}, body=data,
                                  ok=(200, 201, 202))
        resp.release()
        return resp.headers.get("Docker-Content-Digest", "")

    async def list_tags(self, repo: str, page_size: int = 0) -> list[str]:
        """Every tag of ``repo``, following ``Link: <...>; rel="next"`` pages."""
        url = self.url(f"/v2/{repo}/tags/list")
        if page_size:
            url = url.with_query(n=str(page_size))
        tags: list[str] = []
        for _ in range(10000):
            resp = await self.request("GET", url, repo=repo)
            try:
                body = await read_limited(resp, SMALL_BODY_LIMIT, "GET", url)
            finally:
                resp.release()
            doc = _json(body)
            page = doc.get("tags") if isinstance(doc, dict) else None
            tags += [t for t in (page or []) if isinstance(t, str)]
            nxt = _next_link(resp.headers.getall("Link", ()))
            if not nxt:
                break
            u = URL(nxt, encoded=True)
            url = u if u.is_absolute() else resp.url.join(u)
        return tags

    # -- blobs ----------------------------------------------------------------------------

    async def head_blob(self, repo: str, digest: str) -> int | None:
        """The blob's size if ``repo`` has it, else None."""
        url = self.url(f"/v2/{repo}/blobs/{digest}")
        resp = await self.request("HEAD", url, repo=repo, ok=(200, 404))
        resp.release()
        if resp.status == 404:
            return None
        return int(resp.headers.get("Content-Length", "-1") or -1)

    async def open_blob(self, repo: str, digest: str, offset: int = 0) -> aiohttp.ClientResponse:
        """``GET`` a blob (from ``offset`` with ``Range``): a 200 or 206 response to stream.

        A server that ignores ``Range`` answers 200 with the whole blob: check the status.
        """
        url = self.url(f"/v2/{repo}/blobs/{digest}")
        headers = {"Range": f"bytes={offset}-"} if offset else None
        return await self.request("GET", url, repo=repo, headers=headers, ok=(200, 206))

    async def start_upload(self, repo: str, *, mount: str = "",
                           from_repo: str = "") -> tuple[bool, URL | None]:
        """``POST .../blobs/uploads/``: ``(True, None)`` if mounted from ``from_repo``, else
        ``(False, location)`` of a new upload session."""
        url = self.url(f"/v2/{repo}/blobs/uploads/")
        if mount and from_repo:
            url = url.with_query(mount=mount, **{"from": from_repo})
            self.want(from_repo, "pull")
        resp = await self.request("POST", url, repo=repo, actions=("pull", "push"),
                                  ok=(201, 202), follow=False)
        resp.release()
        if resp.status == 201 and mount:
            return True, None
        return False, self._location(resp)

    async def upload(self, repo: str, location: URL, digest: str, size: int,
                     body: Body, *, monolithic: bool) -> str:
        """Send a blob into an upload session and close it with its digest.

        ``monolithic``: one ``PUT location?digest=`` carrying the bytes. Otherwise the
        docker way: one ``PATCH`` with the whole blob (no ``Content-Range``), then an empty
        ``PUT <new location>?digest=``. Returns the registry's digest (or ``digest``).
        """
        octet = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if not monolithic:
            resp = await self.request("PATCH", location, repo=repo, actions=("pull", "push"),
                                      headers=octet, body=body, ok=(202, 204), follow=False)
            resp.release()
            location = self._location(resp) if "Location" in resp.headers else location
            put_headers: dict[str, str] = {"Content-Length": "0"}
            put_body: Body = b""
        else:
            put_headers, put_body = octet, body
        resp = await self.request("PUT", location.extend_query(digest=digest), repo=repo,
                                  actions=("pull", "push"), headers=put_headers,
                                  body=put_body, ok=(201, 204), follow=False)
        resp.release()
        got = resp.headers.get("Docker-Content-Digest", "")
        if got and got != digest:
            raise InvalidArgument(f"registry stored blob {got} instead of {digest}")
        return got or digest

    async def cancel_upload(self, location: URL) -> None:
        """Best effort ``DELETE`` of an upload session."""
        try:
            resp = await self.request("DELETE", location, ok=(200, 202, 204, 404), follow=False)
            resp.release()
        except DockyardError:
            pass


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _next_link(values: Iterable[str]) -> str:
    """The target of ``Link: </v2/x/tags/list?n=2&last=b>; rel="next"``, or ``""``."""
    for v in values:
        for part in v.split(","):
            if 'rel="next"' in part or "rel=next" in part:
                start, end = part.find("<"), part.find(">")
                if 0 <= start < end:
                    return part[start + 1:end].strip()
    return ""
