"""An in-process OCI registry for the client's unit tests (aiohttp test server, loopback).

Small but strict where the client's behaviour matters: it checks ``Accept`` on manifest
GETs, authorises every request (none / Basic / Bearer with its own ``/token`` endpoint and
scoped, expiring tokens), records every request, and can be told to misbehave (corrupt a
blob, drop a connection half-way, ignore ``Range``, redirect blob GETs to another origin).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

MANIFEST_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _err(status: int, code: str, message: str,
         headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message, "detail": None}]},
                             status=status, headers=headers)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_len: int = 0


@dataclass
class Token:
    scopes: set[str]
    expires: float
    user: str


@dataclass
class FakeRegistry:
    auth: str = "none"                  # none | basic | bearer
    users: dict[str, str] = field(default_factory=lambda: {"user": "pass"})
    anonymous_pull: bool = False
    token_ttl: int = 300
    #: blobs this registry corrupts when serving (one byte flipped)
    corrupt: set[str] = field(default_factory=set)
    #: blob digest -> serve this many bytes once, then drop the connection
    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    #: base URL of another server to 307-redirect blob GETs to ("" = serve here)
    redirect_to: str = ""
    refuse_mount: bool = False
    #: serve this (repo, ref) manifest with a wrong body (for digest checks)
    tamper_manifest: set[tuple[str, str]] = field(default_factory=set)
    blob_delay: float = 0.0
    #: page size of tags/list when the client gives no ``n`` (0 = everything at once)
    tag_page: int = 0

    def __post_init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.repo_blobs: dict[str, set[str]] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}     # digest -> (body, media type)
        self.repo_manifests: dict[str, set[str]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, tuple[str, bytearray]] = {}
        self.seen: list[Seen] = []
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.active_blob_gets = 0
        self.max_active_blob_gets = 0
        self.server: TestServer | None = None
        self.patch_info: list[dict[str, Any]] = []

    # -- content helpers --------------------------------------------------------------

    def add_blob(self, repo: str, data: bytes) -> str:
        d = sha256(data)
        self.blobs[d] = data
        self.repo_blobs.setdefault(repo, set()).add(d)
        return d

    def add_manifest(self, repo: str, body: bytes, media_type: str, tag: str = "") -> str:
        d = sha256(body)
        self.manifests[d] = (body, media_type)
        self.repo_manifests.setdefault(repo, set()).add(d)
        if tag:
            self.tags.setdefault(repo, {})[tag] = d
        return d

    def add_image(self, repo: str, tag: str, layers: list[bytes], *,
                  arch: str = "amd64", oci: bool = False) -> dict[str, Any]:
        """Blobs + config + manifest; returns their digests and the manifest body."""
        lds = [self.add_blob(repo, x) for x in layers]
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers",
                                        "diff_ids": [sha256(b"diff" + x) for x in layers]}
                             }).encode()
        cd = self.add_blob(repo, config)
        mtype = ("application/vnd.oci.image.manifest.v1+json" if oci
                 else "application/vnd.docker.distribution.manifest.v2+json")
        ltype = ("application/vnd.oci.image.layer.v1.tar+gzip" if oci
                 else "application/vnd.docker.image.rootfs.diff.tar.gzip")
        man = json.dumps({
            "schemaVersion": 2, "mediaType": mtype,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": cd},
            "layers": [{"mediaType": ltype, "size": len(x), "digest": d}
                       for x, d in zip(layers, lds, strict=True)],
        }).encode()
        md = self.add_manifest(repo, man, mtype, tag)
        return {"manifest": man, "digest": md, "config": cd, "layers": lds, "config_bytes": config}

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [s for s in self.seen
                if (method is None or s.method == method) and contains in s.path]

    # -- server ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/token", self._token)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self) -> "FakeRegistry":
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def __aenter__(self) -> "FakeRegistry":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- auth -----------------------------------------------------------------------

    def _check_basic(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == pw and user else None

    def _authorize(self, request: web.Request, scope: str | None) -> web.Response | None:
        if self.auth == "none":
            return None
        header = request.headers.get("Authorization", "")
        if self.auth == "basic":
            if self._check_basic(header):
                return None
            return _err(401, "UNAUTHORIZED", "authentication required",
                        {"WWW-Authenticate": 'Basic realm="fake"'})
        # bearer
        tok = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        now = time.monotonic()
        challenge = f'Bearer realm="{self.base}/token",service="fake"'
        if scope:
            challenge += f',scope="{scope}"'
        if tok is None or tok.expires <= now:
            return _err(401, "UNAUTHORIZED", "authentication required",
                        {"WWW-Authenticate": challenge})
        if scope and not self._covers(tok.scopes, scope):
            return _err(401, "UNAUTHORIZED", "authentication required",
                        {"WWW-Authenticate": challenge + ',error="insufficient_scope"'})
        return None

    @staticmethod
    def _covers(granted: set[str], scope: str) -> bool:
        typ, name, actions = scope.split(":")
        have: set[str] = set()
        for g in granted:
            t, n, a = g.split(":")
            if t == typ and n == name:
                have |= set(a.split(","))
        return set(actions.split(",")) <= have

    async def _token(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            form = dict(await request.post())
            self.token_requests.append({"method": "POST", **form})
            user = None
            if form.get("grant_type") == "refresh_token":
                user = self.refresh_tokens.get(str(form.get("refresh_token")))
            elif form.get("grant_type") == "password":
                u = str(form.get("username"))
                user = u if self.users.get(u) == form.get("password") else None
            if user is None:
                return web.json_response({"details": "invalid refresh token"}, status=401)
            scopes = str(form.get("scope", "")).split()
            return self._issue(user, scopes, offline=False)
        q = request.query
        self.token_requests.append({"method": "GET", "scope": q.getall("scope", []),
                                    "service": q.get("service"), "account": q.get("account"),
                                    "offline_token": q.get("offline_token"),
                                    "authorization": request.headers.get("Authorization", "")})
        header = request.headers.get("Authorization", "")
        user = ""
        if header:
            user = self._check_basic(header) or ""
            if not user:
                return web.json_response({"details": "incorrect username or password"},
                                         status=401)
        elif not self.anonymous_pull:
            pass  # anonymous gets a token with no access (like Docker Hub)
        return self._issue(user, q.getall("scope", []), offline=q.get("offline_token") == "true")

    def _issue(self, user: str, scopes: list[str], offline: bool) -> web.Response:
        granted = set()
        for s in scopes:
            typ, name, actions = s.split(":")
            acts = set(actions.split(","))
            if not user:
                acts &= {"pull"} if self.anonymous_pull else set()
            if acts:
                granted.add(f"{typ}:{name}:{','.join(sorted(acts))}")
        tok = secrets.token_hex(16)
        self.tokens[tok] = Token(granted, time.monotonic() + self.token_ttl, user)
        doc: dict[str, Any] = {"token": tok, "access_token": tok, "expires_in": self.token_ttl,
                               "issued_at": "2026-11-28T00:00:00Z"}
        if offline and user:
            rt = secrets.token_hex(16)
            self.refresh_tokens[rt] = user
            doc["refresh_token"] = rt
        return web.json_response(doc)

    # -- routes ---------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        seen = Seen(request.method, path, {k: request.query.getall(k) for k in request.query},
                    dict(request.headers))
        self.seen.append(seen)
        if path.startswith("/direct/"):           # the redirect target (another origin)
            return await self._serve_blob(request, path[len("/direct/"):])
        if path == "/v2/" or path == "/v2":
            denied = self._authorize(request, None)
            return denied or web.json_response({})
        if not path.startswith("/v2/"):
            return web.Response(status=404)
        rest = path[4:]
        if "/manifests/" in rest:
            repo, ref = rest.rsplit("/manifests/", 1)
            actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
            denied = self._authorize(request, f"repository:{repo}:{actions}")
            if denied:
                return denied
            if request.method in ("GET", "HEAD"):
                return self._get_manifest(request, repo, ref)
            if request.method == "PUT":
                body = await request.read()
                seen.body_len = len(body)
                return self._put_manifest(request, repo, ref, body)
        if "/blobs/uploads" in rest:
            repo, _, uid = rest.partition("/blobs/uploads")
            uid = uid.strip("/")
            denied = self._authorize(request, f"repository:{repo}:pull,push")
            if denied:
                return denied
            if request.method == "POST" and not uid:
                return self._start_upload(request, repo)
            body = await request.read()
            seen.body_len = len(body)
            return self._upload(request, repo, uid, body)
        if "/blobs/" in rest:
            repo, digest = rest.rsplit("/blobs/", 1)
            denied = self._authorize(request, f"repository:{repo}:pull")
            if denied:
                return denied
            if digest not in self.repo_blobs.get(repo, set()):
                return _err(404, "BLOB_UNKNOWN", "blob unknown to registry")
            if request.method == "HEAD":
                return web.Response(headers={"Content-Length": str(len(self.blobs[digest])),
                                             "Docker-Content-Digest": digest})
            if self.redirect_to:
                return web.Response(status=307,
                                    headers={"Location": f"{self.redirect_to}/direct/{digest}"})
            return await self._serve_blob(request, digest)
        if rest.endswith("/tags/list"):
            repo = rest[: -len("/tags/list")]
            denied = self._authorize(request, f"repository:{repo}:pull")
            if denied:
                return denied
            return self._tags(request, repo)
        return _err(404, "NAME_UNKNOWN", "repository name not known to registry")

    def _get_manifest(self, request: web.Request, repo: str, ref: str) -> web.Response:
        digest = self.tags.get(repo, {}).get(ref, ref if ref.startswith("sha256:") else "")
        if repo not in self.repo_manifests and repo not in self.tags:
            return _err(404, "NAME_UNKNOWN", "repository name not known to registry")
        if digest not in self.repo_manifests.get(repo, set()):
            return _err(404, "MANIFEST_UNKNOWN", "manifest unknown")
        body, mtype = self.manifests[digest]
        accept = {a.split(";")[0].strip() for h in request.headers.getall("Accept", [])
                  for a in h.split(",")}
        if mtype not in accept and "schema1" not in mtype and "v1+prettyjws" not in mtype:
            return _err(404, "MANIFEST_UNKNOWN",
                        f"{mtype} found, but accept header does not support it")
        if (repo, ref) in self.tamper_manifest:
            body = body.replace(b"}", b" }", 1)
        headers = {"Content-Type": mtype, "Docker-Content-Digest": digest}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(headers=headers)
        return web.Response(body=body, headers=headers)

    def _put_manifest(self, request: web.Request, repo: str, ref: str,
                      body: bytes) -> web.Response:
        mtype = request.headers.get("Content-Type", "")
        if mtype not in MANIFEST_TYPES:
            return _err(400, "MANIFEST_INVALID", f"bad media type {mtype}")
        doc = json.loads(body)
        for d in [doc.get("config", {})] + doc.get("layers", []):
            if d.get("digest") not in self.repo_blobs.get(repo, set()):
                return _err(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
        digest = self.add_manifest(repo, body, mtype, "" if ref.startswith("sha256:") else ref)
        return web.Response(status=201, headers={"Docker-Content-Digest": digest,
                                                 "Location": f"/v2/{repo}/manifests/{digest}"})

    def _tags(self, request: web.Request, repo: str) -> web.Response:
        if repo not in self.tags:
            return _err(404, "NAME_UNKNOWN", "repository name not known to registry")
        tags = sorted(self.tags[repo])
        last = request.query.get("last", "")
        tags = [t for t in tags if t > last]
        n = int(request.query.get("n", "0") or 0) or self.tag_page
        headers = {}
        if n and len(tags) > n:
            tags = tags[:n]
            headers["Link"] = f'</v2/{repo}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
        return web.json_response({"name": repo, "tags": tags}, headers=headers)

    async def _serve_blob(self, request: web.Request, digest: str) -> web.StreamResponse:
        data = self.blobs.get(digest)
        if data is None:
            return _err(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = request.headers.get("Range", "")
        status = 200
        if rng.startswith("bytes=") and not self.ignore_range:
            start = int(rng[6:].split("-")[0])
            status = 206
        part = data[start:]
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Content-Length": str(len(part))}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        resp = web.StreamResponse(status=status, headers=headers)
        self.active_blob_gets += 1
        self.max_active_blob_gets = max(self.max_active_blob_gets, self.active_blob_gets)
        try:
            await resp.prepare(request)
            cut = self.drop_after.pop(digest, None)
            if cut is not None:
                await resp.write(part[:cut])
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.close()      # the client sees a short body
                return resp
            step = 256 << 10
            for i in range(0, len(part), step):
                await resp.write(part[i:i + step])
                if self.blob_delay:
                    await asyncio.sleep(self.blob_delay)
            await resp.write_eof()
            return resp
        finally:
            self.active_blob_gets -= 1

    def _start_upload(self, request: web.Request, repo: str) -> web.Response:
        mount, src = request.query.get("mount"), request.query.get("from")
        if mount and src and not self.refuse_mount and mount in self.repo_blobs.get(src, set()):
            self.repo_blobs.setdefault(repo, set()).add(mount)
            return web.Response(status=201, headers={"Docker-Content-Digest": mount,
                                                     "Location": f"/v2/{repo}/blobs/{mount}"})
        uid = uuid.uuid4().hex
        self.uploads[uid] = (repo, bytearray())
        # a query parameter the client must carry along verbatim
        return web.Response(status=202, headers={
            "Location": f"/v2/{repo}/blobs/uploads/{uid}?_state=s{uid[:6]}",
            "Docker-Upload-UUID": uid, "Range": "0-0"})

    def _upload(self, request: web.Request, repo: str, uid: str, body: bytes) -> web.Response:
        if uid not in self.uploads:
            return _err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        if request.query.get("_state") != f"s{uid[:6]}":
            return _err(400, "BLOB_UPLOAD_INVALID", "lost the upload state")
        urepo, buf = self.uploads[uid]
        if request.method == "PATCH":
            self.patch_info.append({
                "content_range": request.headers.get("Content-Range"),
                "chunked": request.headers.get("Transfer-Encoding", "") == "chunked",
                "length": len(body)})
            buf += body
            return web.Response(status=202, headers={
                "Location": f"/v2/{repo}/blobs/uploads/{uid}?_state=s{uid[:6]}",
                "Range": f"0-{max(len(buf) - 1, 0)}", "Docker-Upload-UUID": uid})
        if request.method == "PUT":
            buf += body
            digest = request.query.get("digest", "")
            if sha256(bytes(buf)) != digest:
                return _err(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            del self.uploads[uid]
            self.blobs[digest] = bytes(buf)
            self.repo_blobs.setdefault(urepo, set()).add(digest)
            return web.Response(status=201, headers={"Docker-Content-Digest": digest,
                                                     "Location": f"/v2/{repo}/blobs/{digest}"})
        if request.method == "DELETE":
            del self.uploads[uid]
            return web.Response(status=204)
        return web.Response(status=405)
