"""Basic auth over htpasswd, the Bearer token flow and our token endpoint."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import bcrypt
import pytest

from dockyard.registry.auth import (
    Access,
    BasicAuth,
    Htpasswd,
    NoAuth,
    Policy,
    TokenAuth,
    TokenError,
    TokenService,
    load_or_create_key,
    parse_scope,
)
from dockyard.registry.storage.inmemory import InMemoryDriver

from .util import Harness, assert_error, push_image


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    """Users alice/wonder and bob/builder (read-only), as ``htpasswd -B`` writes them."""
    lines = []
    for user, pw in [("alice", "wonder"), ("bob", "builder")]:
        h = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
        lines.append(f"{user}:{h}")
    p = tmp_path / "htpasswd"
    p.write_text("\n".join(lines) + "\n# comment\nbroken line\nmd5:$apr1$xyz\n")
    return p


def test_htpasswd(htpasswd: Path) -> None:
    h = Htpasswd(htpasswd)
    assert h.check("alice", "wonder")
    assert h.check("alice", "wonder")  # cached
    assert not h.check("alice", "wrong")
    assert not h.check("nobody", "wonder")
    assert not h.check("md5", "x")  # not bcrypt: refused
    # a changed file is re-read (and the cached success forgotten)
    new = bcrypt.hashpw(b"new", bcrypt.gensalt(5)).decode()
    htpasswd.write_text(f"alice:{new}\n")
    h._checked_at = 0
    assert not h.check("alice", "wonder")
    assert h.check("alice", "new")


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="needs htpasswd (apache2-utils)")
def test_htpasswd_file_from_apache_tool(tmp_path: Path) -> None:
    p = tmp_path / "pw"
    subprocess.run(["htpasswd", "-B", "-b", "-c", str(p), "carol", "s3cret"], check=True,
                   capture_output=True)
    assert p.read_text().startswith("carol:$2y$")
    assert Htpasswd(p).check("carol", "s3cret")
    assert not Htpasswd(p).check("carol", "nope")


# --- Basic


async def test_basic_auth(htpasswd: Path) -> None:
    reg = Harness(InMemoryDriver(), BasicAuth(Htpasswd(htpasswd), Policy(["bob"])))
    async with reg.client() as c:
        r = await c.get("/v2/")
        await assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
        r = await c.get("/v2/", headers=basic("alice", "wrong"))
        await assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
        r = await c.get("/v2/", headers={"Authorization": "Basic !!!"})
        await assert_error(r, 401, "UNAUTHORIZED")
        assert (await c.get("/v2/", headers=basic("alice", "wonder"))).status == 200
        r = await c.get("/v2/x/tags/list")
        await assert_error(r, 401, "UNAUTHORIZED")
        r = await c.post("/v2/x/blobs/uploads/", headers=basic("nobody", "wonder"))
        await assert_error(r, 401, "UNAUTHORIZED")
        r = await c.post("/v2/x/blobs/uploads/", headers=basic("alice", "wonder"))
        assert r.status == 202
        # bob may pull but not push or delete: 403, asking again would not help
        r = await c.post("/v2/x/blobs/uploads/", headers=basic("bob", "builder"))
        await assert_error(r, 403, "DENIED")
        r = await c.delete("/v2/x/manifests/latest", headers=basic("bob", "builder"))
        await assert_error(r, 403, "DENIED")
        r = await c.get("/v2/x/manifests/latest", headers=basic("bob", "builder"))
        await assert_error(r, 404, "MANIFEST_UNKNOWN")
        r = await c.get("/v2/_catalog", headers=basic("bob", "builder"))
        assert r.status == 200


async def test_basic_anonymous_pull(htpasswd: Path) -> None:
    reg = Harness(InMemoryDriver(), BasicAuth(Htpasswd(htpasswd), Policy([], anonymous_pull=True)))
    async with reg.client() as c:
        assert (await c.get("/v2/")).status == 200
        r = await c.get("/v2/x/manifests/latest")
        await assert_error(r, 404, "MANIFEST_UNKNOWN")
        r = await c.post("/v2/x/blobs/uploads/")
        await assert_error(r, 401, "UNAUTHORIZED")
        await assert_error(await c.get("/v2/_catalog"), 401, "UNAUTHORIZED")


# --- tokens


def test_token_service() -> None:
    ts = TokenService(b"k" * 32, ttl=60)
    acc = [Access("repository", "a/b", frozenset({"pull"}))]
    claims = ts.verify(ts.issue("alice", acc))
    assert claims["sub"] == "alice" and claims["aud"] == "dockyard-registry"
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull"]}]
    now = time.time()
    with pytest.raises(TokenError, match="expired"):
        ts.verify(ts.issue("alice", acc, now=now - 61))
    with pytest.raises(TokenError, match="not ours"):
        TokenService(b"x" * 32).verify(ts.issue("alice", acc))
    with pytest.raises(TokenError, match="another service"):
        TokenService(b"k" * 32, service="other").verify(ts.issue("alice", acc))
    with pytest.raises(TokenError, match="not an access"):
        ts.verify(ts.issue_refresh("alice"))
    with pytest.raises(TokenError, match="not an refresh"):
        ts.verify(ts.issue("alice", acc), "refresh")
    token = ts.issue("alice", acc)
    head, body, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["access"][0]["actions"] = ["push"]
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="not ours"):
        ts.verify(f"{head}.{forged_body}.{sig}")
    for junk in ("", "a.b", "a.b.c", "!!.??.**"):
        with pytest.raises(TokenError):
            ts.verify(junk)


def test_parse_scope_and_key(tmp_path: Path) -> None:
    assert parse_scope("repository:library/busybox:pull,push") == Access(
        "repository", "library/busybox", frozenset({"pull", "push"}))
    assert parse_scope("repository:localhost:5000/x:pull").name == "localhost:5000/x"
    assert parse_scope("repository(plugin):p:pull").type == "repository"
    assert parse_scope("registry:catalog:*") == Access("registry", "catalog", frozenset({"*"}))
    assert parse_scope("nonsense") is None
    k1 = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == k1 and len(k1) == 32
    assert (tmp_path / "token.key").stat().st_mode & 0o777 == 0o600


def _token_reg(htpasswd: Path, ttl: int = 300, key: bytes = b"s" * 32) -> tuple[Harness, TokenAuth]:
    auth = TokenAuth(TokenService(key, ttl=ttl), Htpasswd(htpasswd), Policy(["bob"]))
    return Harness(InMemoryDriver(), auth), auth


async def test_token_flow(htpasswd: Path) -> None:
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        r = await c.get("/v2/")
        await assert_error(r, 401, "UNAUTHORIZED")
        realm = f"http://{c.server.host}:{c.server.port}/token"
        assert r.headers["WWW-Authenticate"] == \
            f'Bearer realm="{realm}",service="dockyard-registry"'
        r = await c.get("/v2/lib/x/manifests/latest")
        assert r.headers["WWW-Authenticate"] == (
            f'Bearer realm="{realm}",service="dockyard-registry",'
            'scope="repository:lib/x:pull"')
        # token for pull,push with credentials
        r = await c.get("/token", params={"service": "dockyard-registry",
                                          "scope": "repository:lib/x:pull,push"},
                        headers=basic("alice", "wonder"))
        assert r.status == 200
        body = await r.json()
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        assert body["scope"] == "repository:lib/x:pull,push"
        assert "refresh_token" not in body
        tok = body["token"]
        assert (await c.get("/v2/", headers=bearer(tok))).status == 200
    async with reg.client(auth=NoAuth()) as admin:
        await push_image(admin, "lib/x", "1")
    async with reg.client() as c:
        r = await c.post("/v2/lib/x/blobs/uploads/", headers=bearer(tok))
        assert r.status == 202
        r = await c.get("/v2/lib/x/manifests/1", headers=bearer(tok))
        assert r.status == 200
        # the token names lib/x only
        r = await c.get("/v2/lib/y/manifests/1", headers=bearer(tok))
        await assert_error(r, 401, "UNAUTHORIZED")
        assert 'scope="repository:lib/y:pull"' in r.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        r = await c.delete("/v2/lib/x/manifests/1", headers=bearer(tok))
        await assert_error(r, 401, "UNAUTHORIZED")
        assert 'scope="repository:lib/x:delete"' in r.headers["WWW-Authenticate"]
        # catalog scope
        await assert_error(await c.get("/v2/_catalog", headers=bearer(tok)), 401, "UNAUTHORIZED")
        r = await c.get("/token", params={"scope": "registry:catalog:*"},
                        headers=basic("alice", "wonder"))
        r = await c.get("/v2/_catalog", headers=bearer((await r.json())["token"]))
        assert r.status == 200 and (await r.json())["repositories"] == ["lib/x"]


async def test_token_push_through_challenge(htpasswd: Path) -> None:
    """What docker does: hit the API, read the challenge, fetch the token, retry."""
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        r = await c.post("/v2/img/blobs/uploads/")
        challenge = r.headers["WWW-Authenticate"]
        params = dict(p.split("=", 1) for p in challenge.removeprefix("Bearer ").split(","))
        params = {k: v.strip('"') for k, v in params.items()}
        assert params["scope"] == "repository:img:push"
        r = await c.get("/token", params={"service": params["service"],
                                          "scope": "repository:img:pull,push"},
                        headers=basic("alice", "wonder"))
        tok = (await r.json())["token"]
        r = await c.post("/v2/img/blobs/uploads/", params={"digest": "sha256:" + "0" * 64},
                         data=b"", headers=bearer(tok))
        await assert_error(r, 400, "DIGEST_INVALID")  # got through auth


async def test_token_errors(htpasswd: Path) -> None:
    reg, auth = _token_reg(htpasswd, ttl=1)
    async with reg.client() as c:
        r = await c.get("/token", params={"scope": "repository:a:pull"},
                        headers=basic("alice", "nope"))
        await assert_error(r, 401, "UNAUTHORIZED")
        r = await c.get("/token", params={"service": "someone-else"})
        assert r.status == 400 and (await r.json())["error"] == "invalid_request"
        # expired
        acc = [Access("repository", "a", frozenset({"pull"}))]
        old = auth.tokens.issue("alice", acc, now=time.time() - 10)
        r = await c.get("/v2/a/tags/list", headers=bearer(old))
        await assert_error(r, 401, "UNAUTHORIZED")
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert "expired" in (await r.json())["errors"][0]["message"]
        # signed by another registry
        foreign = TokenService(b"f" * 32).issue("alice", acc)
        r = await c.get("/v2/a/tags/list", headers=bearer(foreign))
        await assert_error(r, 401, "UNAUTHORIZED")
        assert "not ours" in (await r.json())["errors"][0]["message"]
        await assert_error(await c.get("/v2/", headers=bearer("garbage")), 401, "UNAUTHORIZED")
        # a refresh token is not an access token
        refresh = auth.tokens.issue_refresh("alice")
        await assert_error(await c.get("/v2/", headers=bearer(refresh)), 401, "UNAUTHORIZED")


async def test_token_scope_policy(htpasswd: Path) -> None:
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        # anonymous: a token, but with nothing in it
        r = await c.get("/token", params={"scope": "repository:a:pull"})
        body = await r.json()
        assert r.status == 200 and body["scope"] == ""
        r = await c.get("/v2/a/tags/list", headers=bearer(body["token"]))
        await assert_error(r, 401, "UNAUTHORIZED")
        # bob asks for push, gets pull only; pushing is then DENIED (he can never have it)
        r = await c.get("/token", params={"scope": "repository:a:pull,push"},
                        headers=basic("bob", "builder"))
        body = await r.json()
        assert body["scope"] == "repository:a:pull"
        r = await c.post("/v2/a/blobs/uploads/", headers=bearer(body["token"]))
        await assert_error(r, 403, "DENIED")
        r = await c.get("/v2/a/tags/list", headers=bearer(body["token"]))
        await assert_error(r, 404, "NAME_UNKNOWN")
        # several scopes in one request, and "*"
        r = await c.get("/token", params=[("scope", "repository:a:*"),
                                          ("scope", "repository:b:pull repository:Bad:pull")],
                        headers=basic("alice", "wonder"))
        assert (await r.json())["scope"] == "repository:a:* repository:b:pull"


async def test_cross_mount_needs_pull_on_source(htpasswd: Path) -> None:
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        r = await c.get("/token", params=[("scope", "repository:src:pull,push")],
                        headers=basic("alice", "wonder"))
        src_tok = (await r.json())["token"]
        r = await c.post("/v2/src/blobs/uploads/", params={"digest": "sha256:" + _sha(b"m")},
                         data=b"m", headers=bearer(src_tok))
        assert r.status == 201
        r = await c.get("/token", params=[("scope", "repository:dst:pull,push")],
                        headers=basic("alice", "wonder"))
        dst_only = (await r.json())["token"]
        r = await c.post("/v2/dst/blobs/uploads/",
                         params={"mount": "sha256:" + _sha(b"m"), "from": "src"},
                         headers=bearer(dst_only))
        assert r.status == 202  # no pull on src: a plain session, nothing leaks
        r = await c.get("/token", params=[("scope", "repository:dst:pull,push"),
                                          ("scope", "repository:src:pull")],
                        headers=basic("alice", "wonder"))
        both = (await r.json())["token"]
        r = await c.post("/v2/dst/blobs/uploads/",
                         params={"mount": "sha256:" + _sha(b"m"), "from": "src"},
                         headers=bearer(both))
        assert r.status == 201


def _sha(b: bytes) -> str:
    import hashlib
    return hashlib.sha256(b).hexdigest()


async def test_oauth2_password_and_refresh(htpasswd: Path) -> None:
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        form = {"grant_type": "password", "username": "alice", "password": "wonder",
                "service": "dockyard-registry", "client_id": "docker", "access_type": "offline",
                "scope": "repository:a:pull repository:b:push"}
        r = await c.post("/token", data=form)
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["scope"] == "repository:a:pull repository:b:push"
        refresh = body["refresh_token"]
        r = await c.post("/token", data={**form, "password": "bad"})
        await assert_error(r, 401, "UNAUTHORIZED")
        r = await c.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                         "service": "dockyard-registry", "client_id": "docker",
                                         "scope": "repository:c:pull"})
        assert r.status == 200
        tok = (await r.json())["access_token"]
        await assert_error(await c.get("/v2/c/tags/list", headers=bearer(tok)), 404,
                           "NAME_UNKNOWN")
        r = await c.post("/token", data={"grant_type": "refresh_token", "refresh_token": tok})
        await assert_error(r, 401, "UNAUTHORIZED")
        r = await c.post("/token", data={"grant_type": "client_credentials"})
        assert r.status == 400 and (await r.json())["error"] == "unsupported_grant_type"
        # docker login asks GET /token?offline_token=true and keeps the refresh token
        r = await c.get("/token", params={"offline_token": "true", "client_id": "docker",
                                          "account": "alice"}, headers=basic("alice", "wonder"))
        assert "refresh_token" in await r.json()


async def test_token_realm_follows_scheme_and_host(htpasswd: Path) -> None:
    reg, _ = _token_reg(htpasswd)
    async with reg.client() as c:
        r = await c.get("/v2/", headers={"Host": "registry.test:5000"})
        assert 'realm="http://registry.test:5000/token"' in r.headers["WWW-Authenticate"]
