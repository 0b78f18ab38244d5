"""Authentication against the fake registry: Basic, Bearer tokens with scopes, token reuse
and expiry, re-authentication on 401, wrong passwords, identity tokens, and login."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from dockyard import errors
from dockyard.content.local import LocalContentStore
from dockyard.distribution import (
    Credentials,
    Distribution,
    RegistryClient,
    TokenCache,
    login,
    pull,
)
from dockyard.distribution.client import MANIFEST_ACCEPT
from dockyard.distribution.transfer import _ref

from .conftest import run
from .fakeregistry import FakeRegistry

AUTH = {"username": "user", "password": "pass", "serveraddress": "ignored"}


def test_basic_auth_pull_with_and_without_credentials(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="basic") as reg:
            reg.add_image("app", "1", [b"layer"])
            res = await pull(f"{reg.host}/app:1", store=store, auth=AUTH)
            assert res.layers
            want = "Basic " + base64.b64encode(b"user:pass").decode()
            assert all(s.headers.get("Authorization") == want
                       for s in reg.seen if s.path != "/v2/")
            with pytest.raises(errors.Unauthorized) as ei:
                await pull(f"{reg.host}/app:1", store=store,
                           auth={"username": "user", "password": "wrong"})
            assert ei.value.message == "unauthorized: authentication required"
            # anonymous: docker's "may require 'docker login'"
            with pytest.raises(errors.NotFound) as ei2:
                await pull(f"{reg.host}/app:1", store=store)
            assert ei2.value.message.startswith(
                f"pull access denied for {reg.host}/app, repository does not exist or may "
                "require 'docker login'")
    run(go())


def test_bearer_token_is_fetched_once_with_the_pull_scope(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("team/app", "1", [b"l1", b"l2", b"l3"])
            await pull(f"{reg.host}/team/app:1", store=store, auth=AUTH)
            [tr] = reg.token_requests
            assert tr["scope"] == ["repository:team/app:pull"]
            assert tr["service"] == "fake" and tr["account"] == "user"
            assert tr["authorization"].startswith("Basic ")
            toks = {s.headers.get("Authorization") for s in reg.seen if s.path != "/v2/"}
            assert len(toks) == 1 and toks.pop().startswith("Bearer ")
    run(go())


def test_anonymous_bearer_pull(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer", anonymous_pull=True) as reg:
            reg.add_image("app", "1", [b"l1"])
            await pull(f"{reg.host}/app:1", store=store)
            assert reg.token_requests[0]["authorization"] == ""
            assert reg.token_requests[0]["account"] is None
    run(go())


def test_wrong_password_with_a_token_server(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("app", "1", [b"l1"])
            with pytest.raises(errors.Unauthorized) as ei:
                await pull(f"{reg.host}/app:1", store=store,
                           auth={"username": "user", "password": "bad"})
            assert ei.value.message == (f'Get "http://{reg.host}/v2/app/manifests/1": '
                                        "unauthorized: incorrect username or password")
    run(go())


def test_cached_token_expires_and_is_refetched(store: LocalContentStore) -> None:
    async def go() -> None:
        now = [0.0]
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("app", "1", [b"l1"])
            async with Distribution(tokens=TokenCache(clock=lambda: now[0])) as dist:
                await dist.pull(f"{reg.host}/app:1", store=store, auth=AUTH)
                await dist.pull(f"{reg.host}/app:1", store=store, auth=AUTH)
                assert len(reg.token_requests) == 1          # cached across pulls
                now[0] += 301
                await dist.pull(f"{reg.host}/app:1", store=store, auth=AUTH)
                assert len(reg.token_requests) == 2
    run(go())


def test_token_rejected_by_the_server_is_dropped_and_renewed(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("app", "1", [b"l1"])
            async with Distribution() as dist:
                await dist.pull(f"{reg.host}/app:1", store=store, auth=AUTH)
                reg.tokens.clear()                           # the server forgot them all
                await dist.pull(f"{reg.host}/app:1", store=store, auth=AUTH)
            assert len(reg.token_requests) == 2
    run(go())


def test_insufficient_scope_widens_the_token() -> None:
    """A 401 whose challenge names a scope the token lacks (error="insufficient_scope")
    gets a new token with that scope added, and the request is retried once."""
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("app", "1", [b"l1"])
            reg.add_image("other", "1", [b"l2"])
            async with Distribution() as dist:
                ep = dist.hosts.endpoints(reg.host)[1]
                c = RegistryClient(dist.transport, ep, Credentials("user", "pass"),
                                   cache=dist.tokens)
                assert await c.head_blob("app", "sha256:" + "0" * 64) is None
                # a request that declares no scope: the server asks for other:pull
                resp = await c.request("GET", c.url("/v2/other/manifests/1"),
                                       headers={"Accept": MANIFEST_ACCEPT})
                assert resp.status == 200
                resp.release()
            scopes = [tuple(t["scope"]) for t in reg.token_requests]
            assert scopes == [("repository:app:pull",),
                              ("repository:app:pull", "repository:other:pull")]
            challenged = [s for s in reg.seen if s.path == "/v2/other/manifests/1"]
            assert len(challenged) == 2
    run(go())


def test_identity_token_uses_the_oauth2_form(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            reg.add_image("app", "1", [b"l1"])
            reg.refresh_tokens["rt-123"] = "user"
            await pull(f"{reg.host}/app:1", store=store, auth={"identitytoken": "rt-123"})
            [tr] = reg.token_requests
            assert tr["method"] == "POST" and tr["grant_type"] == "refresh_token"
            assert tr["refresh_token"] == "rt-123" and tr["client_id"] == "docker"
            assert tr["scope"] == "repository:app:pull" and tr["service"] == "fake"
    run(go())


# -- login --------------------------------------------------------------------------------

def test_login_basic() -> None:
    async def go() -> None:
        async with FakeRegistry(auth="basic") as reg:
            assert await login(reg.host, "user", "pass") == {
                "Status": "Login Succeeded", "IdentityToken": ""}
            with pytest.raises(errors.Unauthorized) as ei:
                await login(reg.host, "user", "nope")
            assert ei.value.message == (f"login attempt to http://{reg.host}/v2/ failed "
                                        "with status: 401 Unauthorized")
    run(go())


def test_login_bearer_returns_the_refresh_token_as_identity_token() -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            out = await login(f"http://{reg.host}/", "user", "pass")
            assert out["Status"] == "Login Succeeded"
            assert out["IdentityToken"] in reg.refresh_tokens
            tr = reg.token_requests[0]
            assert tr["account"] == "user" and tr["offline_token"] == "true"
            with pytest.raises(errors.Unauthorized) as ei:
                await login(reg.host, "user", "nope")
            assert ei.value.message == (f'Get "http://{reg.host}/v2/": '
                                        "unauthorized: incorrect username or password")
    run(go())


def test_login_to_an_open_registry_succeeds() -> None:
    async def go() -> dict[str, Any]:
        async with FakeRegistry() as reg:
            return await login(reg.host, "anyone", "anything")
    assert run(go())["Status"] == "Login Succeeded"


def test_login_to_nothing_is_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.Unavailable):
        run(login(f"127.0.0.1:{port}", "u", "p"))


def test_reference_defaults() -> None:
    assert str(_ref("127.0.0.1:5000/x")) == "127.0.0.1:5000/x:latest"
