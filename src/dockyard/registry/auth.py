"""Who may do what: htpasswd users, Basic auth, and Bearer tokens from our own token endpoint.

Modes (``--auth``):

* ``none``: everyone may do everything.
* ``basic``: ``Authorization: Basic`` checked against an htpasswd file (bcrypt ``$2y$``, as
  ``htpasswd -B`` writes it); otherwise ``401`` +
  ``WWW-Authenticate: Basic realm="Registry Realm"``.
* ``token``: Docker Hub's flow. A request without a valid token gets ``401`` +
  ``WWW-Authenticate: Bearer realm="http(s)://HOST/token",service="dockyard-registry",
  scope="repository:NAME:pull,push"``; the client asks ``/token`` (served here, ``token_handler``)
  for that scope, with Basic credentials or none, or by the OAuth2 form (``POST``,
  ``grant_type=password|refresh_token``), and retries with ``Authorization: Bearer <token>``.

Tokens are JWTs signed with HMAC-SHA256 (``HS256``) under a per-root secret key
(``<root>/token.key``), with ``iss``, ``aud`` (the service), ``sub``, ``iat``/``nbf``/``exp``
and ``access: [{type, name, actions}]`` (distribution's token claims). Refresh tokens are the
same with ``kind: "refresh"`` and no access; neither kind is accepted as the other.

What a user may have is the ``Policy``'s: htpasswd users get every action
(``pull``, ``push``, ``delete``, ``*``) on every repository and ``registry:catalog:*``, users
listed as read-only get ``pull``; anonymous clients get ``pull`` with ``anonymous_pull``,
else nothing. The actions a request needs: ``GET``/``HEAD`` → ``pull``; writes and upload
sessions → ``push``; ``DELETE`` → ``delete``; ``/v2/_catalog`` → ``registry:catalog:*``.

A request that lacks access gets ``401`` with the challenge naming the scope it needs, unless
its user is known and the policy would never grant that scope: then ``403 DENIED`` (asking
again cannot help).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import bcrypt
from aiohttp import web

from dockyard.util.atomicfile import write_atomic

from . import errcodes
from .errcodes import RegistryError
from .names import is_name

__all__ = [
    "Access", "Authorizer", "BasicAuth", "Htpasswd", "Identity", "NoAuth", "Policy",
    "TokenAuth", "TokenError", "TokenService", "load_or_create_key", "parse_scope",
]

log = logging.getLogger("dockyard.registry.auth")

SERVICE = "dockyard-registry"
BASIC_REALM = "Registry Realm"
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True)
class Access:
    """``repository:library/busybox:pull,push`` as a value."""

    type: str
    name: str
    actions: frozenset[str]

    @property
    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


CATALOG = Access("registry", "catalog", frozenset({"*"}))


def parse_scope(scope: str) -> Access | None:
    """``type:name:actions``; the name may contain ``:`` (a host:port). ``None`` if malformed."""
    first, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    typ = first.split("(", 1)[0]  # repository(plugin) -> repository
    acts = frozenset(a for a in actions.split(",") if a)
    if not typ or not name or not acts:
        return None
    return Access(typ, name, acts)


def _covers(granted: Iterable[str], needed: Iterable[str]) -> bool:
    g = set(granted)
    return "*" in g or set(needed) <= g


class Policy:
    def __init__(self, read_only_users: Iterable[str] = (), anonymous_pull: bool = False) -> None:
        self.read_only_users = frozenset(read_only_users)
        self.anonymous_pull = anonymous_pull

    def allowed(self, user: str | None, typ: str, name: str) -> frozenset[str]:
        """Every action ``user`` (None: anonymous) may ever have on ``typ:name``."""
        if typ == "repository":
            if not is_name(name):
                return frozenset()
            if user is None:
                return frozenset({"pull"}) if self.anonymous_pull else frozenset()
            return frozenset({"pull"}) if user in self.read_only_users else ALL_ACTIONS
        if typ == "registry" and name == "catalog":
            return frozenset({"*"}) if user is not None else frozenset()
        return frozenset()

    def grant(self, user: str | None, requested: Access) -> Access | None:
        allowed = self.allowed(user, requested.type, requested.name)
        acts = frozenset(a for a in requested.actions if a in allowed)
        return Access(requested.type, requested.name, acts) if acts else None


class Htpasswd:
    """An htpasswd file of ``user:$2y$...`` lines, re-read when it changes.

    Successful checks are remembered (by a hash of the password) for as long as the user's
    line stays the same, so that Basic auth does not pay bcrypt on every request.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._sig: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._entries: dict[str, str] = {}
        self._ok: dict[tuple[str, bytes], str] = {}
        self._reload(force=True)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < 1.0:
            return
        self._checked_at = now
        st = self.path.stat()
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._sig:
            return
        entries: dict[str, str] = {}
        for lineno, line in enumerate(self.path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user:
                log.warning("%s:%d: not user:hash, ignored", self.path, lineno)
                continue
            if not hashed.startswith(("$2y$", "$2a$", "$2b$")):
                log.warning("%s:%d: user %s: only bcrypt hashes (htpasswd -B) are supported",
                            self.path, lineno, user)
                continue
            entries[user] = hashed
        self._entries, self._sig = entries, sig

    def has_user(self, user: str) -> bool:
        self._reload()
        return user in self._entries

    def check(self, user: str, password: str) -> bool:
        """Blocking (bcrypt): call it from a worker thread."""
        self._reload()
        hashed = self._entries.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if self._ok.get(key) == hashed:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            log.warning("%s: user %s: malformed bcrypt hash", self.path, user)
            return False
        if ok:
            self._ok[key] = hashed
        return ok


def load_or_create_key(root: str | os.PathLike[str] | None) -> bytes:
    """The token signing key kept in ``<root>/token.key`` (mode 0600), made on first use."""
    if root is None:
        return secrets.token_bytes(32)
    path = Path(root) / "token.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, key.hex() + "\n", mode=0o600)
    return key


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class TokenError(Exception):
    pass


class TokenService:
    def __init__(self, key: bytes, *, service: str = SERVICE, issuer: str = SERVICE,
                 ttl: int = 300, refresh_ttl: int = 30 * 86400) -> None:
        self.key, self.service, self.issuer = key, service, issuer
        self.ttl, self.refresh_ttl = ttl, refresh_ttl
        self.kid = hashlib.sha256(key).hexdigest()[:16]

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64(json.dumps(claims, separators=(",", ":")).encode()))
        sig = hmac.new(self.key, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(sig)

    def _claims(self, sub: str, ttl: int, now: float | None) -> dict[str, Any]:
        t = int(time.time() if now is None else now)
        return {"iss": self.issuer, "sub": sub, "aud": self.service, "iat": t, "nbf": t - 1,
                "exp": t + ttl, "jti": secrets.token_hex(12)}

    def issue(self, sub: str, access: Iterable[Access], now: float | None = None) -> str:
        claims = self._claims(sub, self.ttl, now)
        claims["access"] = [a.to_json() for a in access]
        return self._sign(claims)

    def issue_refresh(self, sub: str, now: float | None = None) -> str:
        claims = self._claims(sub, self.refresh_ttl, now)
        claims["kind"] = "refresh"
        return self._sign(claims)

    def verify(self, token: str, kind: str = "access", now: float | None = None) -> dict[str, Any]:
        """The claims of a token we signed, for our service, not expired; ``TokenError``."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            sig = _unb64(parts[2])
        except (ValueError, binascii.Error):
            raise TokenError("malformed token") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenError("unsupported token algorithm")
        expected = hmac.new(self.key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, sig):
            raise TokenError("token signature is not ours")
        if not isinstance(claims, dict):
            raise TokenError("malformed token")
        if claims.get("iss") != self.issuer or claims.get("aud") != self.service:
            raise TokenError("token was issued for another service")
        if claims.get("kind", "access") != kind:
            raise TokenError(f"not an {kind} token")
        t = time.time() if now is None else now
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or t >= exp:
            raise TokenError("token expired")
        if not isinstance(nbf, int) or t < nbf:
            raise TokenError("token not valid yet")
        return claims


# --- per-request authorisation


class Identity(Protocol):
    user: str | None

    def permits(self, access: Access) -> bool: ...


@dataclass
class _Everyone:
    user: str | None = None

    def permits(self, access: Access) -> bool:
        return True


@dataclass
class _PolicyIdentity:
    user: str | None
    policy: Policy

    def permits(self, access: Access) -> bool:
        return _covers(self.policy.allowed(self.user, access.type, access.name), access.actions)


@dataclass
class _TokenIdentity:
    user: str | None
    granted: list[Access]

    def permits(self, access: Access) -> bool:
        return any(g.type == access.type and g.name == access.name
                   and _covers(g.actions, access.actions) for g in self.granted)


class Authorizer(Protocol):
    async def authorize(self, request: web.Request, needed: list[Access]) -> Identity:
        """The identity behind ``request`` if it has every access in ``needed``;
        ``RegistryError`` UNAUTHORIZED (with the challenge) or DENIED otherwise."""
        ...


class NoAuth:
    async def authorize(self, request: web.Request, needed: list[Access]) -> Identity:
        return _Everyone()


def _denied(needed: list[Access]) -> RegistryError:
    return RegistryError(errcodes.DENIED, [a.to_json() for a in needed])


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(user, password)`` from ``Authorization: Basic``, None if absent; 401 if garbled."""
    hdr = request.headers.get("Authorization", "")
    scheme, _, value = hdr.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        user, sep, password = "", "", ""
    if not sep:
        raise RegistryError(errcodes.UNAUTHORIZED, message="malformed basic credentials")
    return user, password


class BasicAuth:
    def __init__(self, htpasswd: Htpasswd, policy: Policy | None = None,
                 realm: str = BASIC_REALM) -> None:
        self.htpasswd, self.policy, self.realm = htpasswd, policy or Policy(), realm

    def _challenge(self, needed: list[Access], message: str | None = None) -> RegistryError:
        return RegistryError(errcodes.UNAUTHORIZED, [a.to_json() for a in needed] or None,
                             message=message,
                             headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'})

    async def authorize(self, request: web.Request, needed: list[Access]) -> Identity:
        try:
            creds = _basic_credentials(request)
        except RegistryError as e:
            raise self._challenge(needed, e.message) from None
        user = None
        if creds is not None:
            if not await asyncio.to_thread(self.htpasswd.check, *creds):
                raise self._challenge(needed, "invalid username or password")
            user = creds[0]
        ident = _PolicyIdentity(user, self.policy)
        if user is None and not needed and not self.policy.anonymous_pull:
            raise self._challenge(needed)
        missing = [a for a in needed if not ident.permits(a)]
        if missing:
            raise self._challenge(missing) if user is None else _denied(missing)
        return ident


class TokenAuth:
    def __init__(self, tokens: TokenService, htpasswd: Htpasswd | None,
                 policy: Policy | None = None, realm: str | None = None) -> None:
        self.tokens, self.htpasswd, self.policy = tokens, htpasswd, policy or Policy()
        self.realm = realm  # None: http(s)://<Host of the request>/token

    def realm_for(self, request: web.Request) -> str:
        return self.realm or f"{request.scheme}://{request.host}/token"

    def _challenge(self, request: web.Request, needed: list[Access], message: str | None = None,
                   error: str | None = None) -> RegistryError:
        params = f'realm="{self.realm_for(request)}",service="{self.tokens.service}"'
        if needed:
            params += f',scope="{" ".join(a.scope for a in needed)}"'
        if error:
            params += f',error="{error}"'
        return RegistryError(errcodes.UNAUTHORIZED, [a.to_json() for a in needed] or None,
                             message=message, headers={"WWW-Authenticate": "Bearer " + params})

    async def authorize(self, request: web.Request, needed: list[Access]) -> Identity:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._challenge(request, needed)
        try:
            claims = self.tokens.verify(token.strip())
        except TokenError as e:
            raise self._challenge(request, needed, str(e), "invalid_token") from None
        granted = []
        for a in claims.get("access") or []:
            if isinstance(a, dict) and isinstance(a.get("actions"), list):
                granted.append(Access(str(a.get("type")), str(a.get("name")),
                                      frozenset(str(x) for x in a["actions"])))
        user = claims.get("sub") or None
        ident = _TokenIdentity(user, granted)
        missing = [a for a in needed if not ident.permits(a)]
        if missing:
            if user is not None and not all(
                    _covers(self.policy.allowed(user, a.type, a.name), a.actions)
                    for a in missing):
                raise _denied(missing)
            raise self._challenge(request, missing, "insufficient scope", "insufficient_scope")
        return ident

    # --- the token endpoint

    async def _user(self, user: str, password: str) -> str:
        if self.htpasswd is None or not await asyncio.to_thread(self.htpasswd.check, user,
                                                                password):
            raise RegistryError(errcodes.UNAUTHORIZED, message="invalid username or password",
                                headers={"WWW-Authenticate": f'Basic realm="{BASIC_REALM}"'})
        return user

    def _reply(self, user: str | None, scopes: list[str], refresh: bool) -> web.Response:
        granted = []
        for s in scopes:
            for one in s.split():
                req = parse_scope(one)
                if req is not None and (g := self.policy.grant(user, req)) is not None:
                    granted.append(g)
        now = time.time()
        token = self.tokens.issue(user or "", granted, now)
        body: dict[str, Any] = {
            "token": token, "access_token": token, "expires_in": self.tokens.ttl,
            "issued_at": datetime.fromtimestamp(now, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "scope": " ".join(g.scope for g in granted),
        }
        if refresh and user:
            body["refresh_token"] = self.tokens.issue_refresh(user, now)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _oauth_error(self, error: str, description: str) -> web.HTTPBadRequest:
        """OAuth2's error reply (RFC 6749 5.2): the token endpoint is not the registry API."""
        return web.HTTPBadRequest(
            text=json.dumps({"error": error, "error_description": description}),
            content_type="application/json")

    def _check_service(self, service: str | None) -> None:
        if service and service != self.tokens.service:
            raise self._oauth_error("invalid_request",
                                    f"this token server serves {self.tokens.service!r}")

    async def token_handler(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            q = request.query
            self._check_service(q.get("service"))
            creds = _basic_credentials(request)
            user = await self._user(*creds) if creds is not None else None
            return self._reply(user, q.getall("scope", []), q.get("offline_token") == "true")
        form = await request.post()
        self._check_service(str(form.get("service", "")) or None)
        grant = str(form.get("grant_type", ""))
        if grant == "password":
            user = await self._user(str(form.get("username", "")), str(form.get("password", "")))
        elif grant == "refresh_token":
            try:
                user = self.tokens.verify(str(form.get("refresh_token", "")), "refresh")["sub"]
            except TokenError as e:
                raise RegistryError(errcodes.UNAUTHORIZED, message=str(e)) from None
            if self.htpasswd is None or not self.htpasswd.has_user(user):
                raise RegistryError(errcodes.UNAUTHORIZED, message="no such user")
        else:
            raise self._oauth_error("unsupported_grant_type",
                                    "grant_type must be password or refresh_token")
        return self._reply(user, [str(s) for s in form.getall("scope", [])],
                           refresh=grant == "password")
