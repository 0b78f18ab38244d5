"""Registry authentication: challenges, credentials, bearer tokens, and ``docker login``.

The flow (distribution's ``docs/spec/auth/token.md``, as dockerd runs it):

1. ``GET /v2/`` without credentials. ``200``: no auth. ``401``: the ``WWW-Authenticate``
   header carries one or more challenges, ``Basic realm="..."`` or
   ``Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"``.
2. Basic: every request to the registry's host carries ``Authorization: Basic b64(user:pass)``.
3. Bearer: a token is fetched for the scopes the operation needs
   (``repository:<path>:pull`` / ``pull,push``; a cross-repository mount adds
   ``repository:<from>:pull``), with ``GET realm?service=..&scope=..&scope=..`` (Basic
   credentials when we have them; ``account=<user>``), or — with an identity token — with
   the OAuth2 form ``POST realm`` ``grant_type=refresh_token``. Tokens are cached per
   (realm, service, credentials, scopes) until ``expires_in`` (at least 60 s) runs out.
4. A ``401`` on a request made with a token drops that token; if the new challenge names a
   scope we did not ask for (``error="insufficient_scope"``), it is added; the request is
   retried once.

``Credentials`` is docker's ``AuthConfig`` (the ``X-Registry-Auth`` header, base64url JSON:
``{"username","password","serveraddress"}`` or ``{"identitytoken"}``); the daemon decodes
the header (:func:`decode_registry_auth`) and passes the dict on.

HTTP goes through the small :class:`HTTP` protocol (``dockyard.distribution.transport``
implements it), so this module holds no connection state of its own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from yarl import URL

from dockyard.errors import DockyardError, InvalidArgument, Unauthorized, Unavailable

from .hosts import RegistryHosts, normalize_registry

__all__ = [
    "Authorizer",
    "Challenge",
    "Credentials",
    "HTTP",
    "SimpleResponse",
    "TokenCache",
    "decode_registry_auth",
    "login",
    "parse_www_authenticate",
    "scope_string",
]

CLIENT_ID = "docker"
#: dockerd's floor for a token's lifetime (``minimumTokenLifetimeSeconds``)
MIN_TOKEN_LIFETIME = 60.0
_EXPIRY_MARGIN = 5.0
_ACTION_ORDER = {"pull": 0, "push": 1, "delete": 2, "*": 3}


# -- HTTP seam ----------------------------------------------------------------------------

@dataclass
class SimpleResponse:
    """A fully read, small response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: URL
    reason: str = ""
    www_authenticate: tuple[str, ...] = ()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HTTP(Protocol):
    async def fetch(self, method: str, url: URL, *, headers: Mapping[str, str] | None = None,
                    data: bytes | Mapping[str, str] | None = None) -> SimpleResponse:
        """Send one small request and read the whole reply. Network failures raise
        Unavailable with Go's wording (``Get "URL": ...``)."""


# -- challenges ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: ``scheme`` lower-cased, ``params`` keys too."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)


_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token(s: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] in _TCHARS:
        j += 1
    return s[i:j], j


def _skip(s: str, i: int, chars: str = " \t") -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def _quoted(s: str, i: int) -> tuple[str, int]:
    # s[i] == '"'
    out = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Parse one or several ``WWW-Authenticate`` values into challenges (RFC 7235).

    ``Bearer realm="r",service="s",scope="a b"`` → ``Challenge("bearer", {...})``; several
    challenges may share one header (``Bearer realm="r", Basic realm="x"``).
    """
    items = [values] if isinstance(values, str) else list(values)
    out: list[Challenge] = []
    for s in items:
        i = 0
        while True:
            i = _skip(s, i, " \t,")
            if i >= len(s):
                break
            scheme, j = _token(s, i)
            if not scheme:
                i += 1          # junk: skip a character and resynchronise
                continue
            i = j
            params: dict[str, str] = {}
            while True:
                j = _skip(s, i, " \t,")
                key, k = _token(s, j)
                k = _skip(s, k)
                if not key or k >= len(s) or s[k] != "=":
                    i = j       # not a parameter: the next challenge (or the end) is at j
                    break
                k = _skip(s, k + 1)
                if k < len(s) and s[k] == '"':
                    value, i = _quoted(s, k)
                else:
                    value, i = _token(s, k)
                params[key.lower()] = value
            out.append(Challenge(scheme.lower(), params))
    return out


# -- credentials --------------------------------------------------------------------------

def decode_registry_auth(value: str | bytes | None) -> dict[str, Any]:
    """Decode an ``X-Registry-Auth`` header: base64url(JSON), padding optional.

    Empty → ``{}``. Malformed → InvalidArgument (dockerd: ``invalid X-Registry-Auth header``).
    """
    if not value:
        return {}
    raw = value.encode() if isinstance(value, str) else value
    raw = raw.strip()
    raw += b"=" * (-len(raw) % 4)
    try:
        try:
            data = base64.urlsafe_b64decode(raw)
        except (binascii.Error, ValueError):
            data = base64.b64decode(raw)
        doc = json.loads(data)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    return doc


@dataclass(frozen=True)
class Credentials:
    """Docker's ``AuthConfig``: username/password, or an identity (refresh) token, or a
    registry (bearer) token to send as it is."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""
    server_address: str = ""

    @classmethod
    def from_auth_config(
            cls, cfg: Mapping[str, Any] | "Credentials" | None) -> "Credentials | None":
        """From the decoded ``X-Registry-Auth`` dict (keys any case; ``auth`` = b64(u:p))."""
        if cfg is None or isinstance(cfg, Credentials):
            return cfg
        low = {str(k).lower(): v for k, v in cfg.items() if isinstance(v, str)}
        user, pw = low.get("username", ""), low.get("password", "")
        if not user and low.get("auth"):
            try:
                user, _, pw = base64.b64decode(low["auth"]).decode().partition(":")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise InvalidArgument("invalid auth configuration: bad \"auth\" field") from None
        c = cls(user, pw, low.get("identitytoken", ""), low.get("registrytoken", ""),
                low.get("serveraddress", ""))
        return None if c.anonymous else c

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @property
    def key(self) -> str:
        """A cache key for tokens fetched with these credentials (the secret is hashed)."""
        h = hashlib.sha256("\0".join((self.username, self.password, self.identity_token,
                                      self.registry_token)).encode()).hexdigest()[:16]
        return f"{self.username}#{h}"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, server_address={self.server_address!r})"


def scope_string(resource: str, actions: Iterable[str], type: str = "repository") -> str:
    """``repository:library/busybox:pull,push`` (actions in docker's order)."""
    acts = sorted(set(actions), key=lambda a: (_ACTION_ORDER.get(a, 9), a))
    return f"{type}:{resource}:{','.join(acts)}"


# -- tokens -------------------------------------------------------------------------------

class TokenCache:
    """Bearer tokens by (realm, service, credentials key, scopes), until they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    def get(self, key: tuple[str, ...]) -> str | None:
        hit = self._tokens.get(key)
        if hit is None:
            return None
        token, expires = hit
        if self.clock() >= expires:
            del self._tokens[key]
            return None
        return token

    def put(self, key: tuple[str, ...], token: str, expires_in: float) -> None:
        now = self.clock()
        if len(self._tokens) >= 256:          # a daemon lives long: forget expired tokens
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        life = max(float(expires_in or 0), MIN_TOKEN_LIFETIME)
        self._tokens[key] = (token, now + life - _EXPIRY_MARGIN)

    def drop(self, token: str) -> None:
        for k, (t, _) in list(self._tokens.items()):
            if t == token:
                del self._tokens[k]

    def __len__(self) -> int:
        return len(self._tokens)


def _error_message(resp: SimpleResponse) -> str:
    """The token server's complaint: errcode ``errors[0].message``, or ``details``."""
    doc = resp.json()
    if isinstance(doc, dict):
        errs = doc.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            msg = errs[0].get("message")
            if msg:
                return str(msg)
        for key in ("details", "detail", "message", "error_description", "error"):
            if isinstance(doc.get(key), str) and doc[key]:
                return str(doc[key])
    return "authentication required"


class Authorizer:
    """The ``Authorization`` header for requests to one registry host.

    ``challenges`` come from the ping (or a later 401). ``header(scopes)`` gives the value to
    send for an operation needing ``scopes`` (None: send nothing). ``on_unauthorized``
    digests a 401 and says whether a retry may succeed.
    """

    def __init__(self, http: HTTP, host: str, creds: Credentials | None, *,
                 cache: TokenCache | None = None, offline_token: bool = False) -> None:
        self.http = http
        self.host = host
        self.creds = creds
        self.cache = cache if cache is not None else TokenCache()
        self.challenges: list[Challenge] = []
        self.extra_scopes: set[str] = set()
        self.offline_token = offline_token
        #: a refresh token handed out by the token server (``docker login``'s IdentityToken)
        self.refresh_token = ""
        self._fetching: dict[tuple[str, ...], asyncio.Future[None]] = {}

    def _challenge(self) -> Challenge | None:
        for scheme in ("bearer", "basic"):
            for c in self.challenges:
                if c.scheme == scheme:
                    return c
        return None

    async def header(self, scopes: Iterable[str]) -> str | None:
        c = self._challenge()
        if c is None:
            return None
        if c.scheme == "basic":
            if self.creds is None or not (self.creds.username or self.creds.password):
                return None
            return self.creds.basic_header()
        if self.creds is not None and self.creds.registry_token:
            return "Bearer " + self.creds.registry_token
        all_scopes = tuple(sorted(set(scopes) | self.extra_scopes))
        token = await self.token(c, all_scopes)
        return "Bearer " + token

    async def token(self, c: Challenge, scopes: Sequence[str]) -> str:
        """A token for ``scopes``: cached, or fetched once however many requests ask at the
        same moment (concurrent layer transfers share one fetch)."""
        creds_key = self.creds.key if self.creds else ""
        key = (c.realm, c.service, creds_key, *scopes)
        while True:
            tok = self.cache.get(key)
            if tok is not None:
                return tok
            pending = self._fetching.get(key)
            if pending is None:
                break
            try:
                await asyncio.shield(pending)
            except Exception:  # noqa: BLE001 - that fetch failed: try our own
                break
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fetching[key] = fut
        try:
            tok, expires_in = await self._fetch_token(c, scopes)
            self.cache.put(key, tok, expires_in)
        except BaseException as exc:
            fut.set_exception(exc if isinstance(exc, Exception) else Unavailable("cancelled"))
            fut.exception()                # retrieved: no "never retrieved" warning
            raise
        else:
            fut.set_result(None)
        finally:
            self._fetching.pop(key, None)
        return tok

    async def _fetch_token(self, c: Challenge, scopes: Sequence[str]) -> tuple[str, float]:
        if not c.realm:
            raise Unauthorized(f"bearer challenge from {self.host} has no realm")
        realm = URL(c.realm)
        if realm.scheme not in ("http", "https"):
            raise Unauthorized(f"token realm {c.realm!r} is not an http(s) URL")
        creds = self.creds
        refresh = (creds.identity_token if creds else "") or self.refresh_token
        if refresh:
            form = {"grant_type": "refresh_token", "refresh_token": refresh,
                    "client_id": CLIENT_ID}
            if c.service:
                form["service"] = c.service
            if scopes:
                form["scope"] = " ".join(scopes)
            if self.offline_token:
                form["access_type"] = "offline"
            resp = await self.http.fetch("POST", realm, data=form)
            if resp.status not in (404, 405):
                return self._token_reply(resp, realm)
            # the server has no OAuth2 endpoint: fall through to the GET flow
        query: list[tuple[str, str]] = []
        if c.service:
            query.append(("service", c.service))
        query += [("scope", s) for s in scopes]
        headers: dict[str, str] = {}
        if creds is not None and creds.username:
            query.append(("account", creds.username))
            headers["Authorization"] = creds.basic_header()
        if self.offline_token:
            query += [("client_id", CLIENT_ID), ("offline_token", "true")]
        url = realm.extend_query(query) if query else realm
        resp = await self.http.fetch("GET", url, headers=headers)
        return self._token_reply(resp, url)

    def _token_reply(self, resp: SimpleResponse, url: URL) -> tuple[str, float]:
        if resp.status in (401, 403):
            raise Unauthorized(f"{'unauthorized' if resp.status == 401 else 'denied'}: "
                               f"{_error_message(resp)}")
        if resp.status != 200:
            raise Unauthorized(f"token auth attempt for registry: {url.with_query(None)} "
                               f"request failed with status: {resp.status} {resp.reason}")
        doc = resp.json()
        if not isinstance(doc, dict):
            raise Unauthorized(f"token server {url.with_query(None)} sent an invalid reply")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"token server {url.with_query(None)} sent no token")
        if isinstance(doc.get("refresh_token"), str) and doc["refresh_token"]:
            self.refresh_token = doc["refresh_token"]
        expires = doc.get("expires_in")
        return token, float(expires) if isinstance(expires, (int, float)) else 0.0

    def on_unauthorized(self, www_authenticate: Sequence[str], used: str | None,
                        scopes: Iterable[str]) -> bool:
        """Digest a 401 (``used`` = the Authorization we sent). True: one retry may help.

        It may when the challenge is new (a registry that let ``/v2/`` through can still
        want auth for a repository), when it names a scope we did not ask for, or when we
        sent a token (it may have expired or been revoked: it is dropped from the cache).
        The caller retries at most once.
        """
        changed = False
        new = parse_www_authenticate(www_authenticate)
        if new and new != self.challenges:
            self.challenges = new
            changed = True
        have = set(scopes) | self.extra_scopes
        for c in new:
            if c.scheme == "bearer":
                for s in c.scopes:
                    if s not in have:
                        self.extra_scopes.add(s)
                        changed = True
        if used and used.startswith("Bearer ") and not (
                self.creds is not None and self.creds.registry_token):
            self.cache.drop(used[len("Bearer "):])
            changed = True
        best = self._challenge()
        if used is None and best is not None and (
                best.scheme == "bearer" or self.creds is not None):
            changed = True
        return changed


# -- login --------------------------------------------------------------------------------

async def login(registry: str, username: str, password: str, *, http: HTTP | None = None,
                hosts: RegistryHosts | None = None, identity_token: str = "") -> dict[str, str]:
    """Check credentials against a registry, as ``POST /auth`` (``docker login``) does.

    ``GET /v2/`` → 401 challenge → Basic retry, or a token fetch with ``account=<user>``
    (and ``offline_token=true``: a refresh token in the reply becomes the IdentityToken) →
    ``GET /v2/`` with the token → 200. Returns ``{"Status": "Login Succeeded",
    "IdentityToken": ""}``. Wrong credentials raise Unauthorized with dockerd's message
    (``login attempt to http://h/v2/ failed with status: 401 Unauthorized`` for Basic,
    ``Get "http://h/v2/": unauthorized: ...`` for a token server); an unreachable registry
    raises Unavailable. Over an insecure registry's endpoints (https then http) the next is
    tried only when the previous could not be reached.
    """
    if http is None:
        from .transport import Transport  # lazy: transport imports this module

        async with Transport(hosts) as t:
            return await login(registry, username, password, http=t, hosts=t.hosts,
                               identity_token=identity_token)
    hosts = hosts or RegistryHosts()
    domain = normalize_registry(registry)
    creds = Credentials(username, password, identity_token, "", registry)
    last: DockyardError | None = None
    for ep in hosts.endpoints(domain, push=True):
        url = ep.url.with_path("/v2/")
        try:
            return await _login_endpoint(http, url, ep.host, creds)
        except Unavailable as exc:
            last = exc
            continue
    assert last is not None
    raise last


async def _login_endpoint(http: HTTP, url: URL, host: str, creds: Credentials) -> dict[str, str]:
    resp = await http.fetch("GET", url)
    if resp.status == 200:
        return {"Status": "Login Succeeded", "IdentityToken": ""}
    if resp.status != 401:
        raise Unauthorized(f"login attempt to {url} failed with status: "
                           f"{resp.status} {resp.reason}")
    auth = Authorizer(http, host, creds, offline_token=True)
    auth.challenges = parse_www_authenticate(resp.www_authenticate)
    c = auth._challenge()
    if c is None:
        raise Unauthorized(f"login attempt to {url} failed with status: 401 Unauthorized")
    if c.scheme == "bearer":
        try:
            header = await auth.header(())
        except Unauthorized as exc:
            raise Unauthorized(f'Get "{url}": {exc.message}') from None
    else:
        header = await auth.header(())
    resp = await http.fetch("GET", url, headers={"Authorization": header} if header else None)
    if resp.status == 200:
        return {"Status": "Login Succeeded", "IdentityToken": auth.refresh_token}
    raise Unauthorized(f"login attempt to {url} failed with status: {resp.status} {resp.reason}")
