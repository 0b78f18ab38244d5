"""The HTTP surface without an engine: version prefixes, docker's error bodies and headers,
the ping, and the wait's early headers, against fake backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from dockyard import errors
from dockyard.daemon.app import API_VERSION, make_app


class FakeSystem:
    def version_info(self) -> dict[str, Any]:
        return {"Version": "0.1.0", "Components": [{"Name": "Engine", "Details": {}}]}

    def system_info(self) -> dict[str, Any]:
        return {"Containers": 0}


class FakeContainers:
    def __init__(self) -> None:
        self.fut: asyncio.Future[dict[str, Any]] | None = None

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        if ref != "c1":
            raise errors.NotFound(f"No such container: {ref}")
        return {"Id": "c1", "Config": {"Tty": False}}

    def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if name == "taken":
            raise errors.Conflict('Conflict. The container name "/taken" is already in use')
        return {"Id": "c1", "Warnings": []}

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[dict[str, Any]]:
        self.inspect(ref)
        self.fut = asyncio.get_running_loop().create_future()
        return self.fut

    async def kill(self, ref: str, sig: str | None = None) -> None:
        raise RuntimeError("a bug")

    async def start(self, ref: str) -> None:
        raise errors.NotModified("already started")


class FakeEngine:
    def __init__(self) -> None:
        self.system = FakeSystem()
        self.containers = FakeContainers()
        self.execs = object()
        self.images = object()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _client() -> tuple[TestClient, FakeEngine]:
    engine = FakeEngine()
    c = TestClient(TestServer(make_app(engine)))
    await c.start_server()
    return c, engine


def test_ping_head_and_get() -> None:
    async def go() -> None:
        c, _ = await _client()
        try:
            r = await c.head("/_ping")
            assert r.status == 200
            assert r.headers["Api-Version"] == API_VERSION
            assert r.headers["Ostype"] == "linux"
            assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
            r = await c.get("/v1.41/_ping")
            assert await r.text() == "OK"
        finally:
            await c.close()

    run(go())


def test_versions_and_errors() -> None:
    async def go() -> None:
        c, _ = await _client()
        try:
            r = await c.get("/v1.12/version")
            assert r.status == 400 and "too old" in (await r.json())["message"]
            r = await c.get("/v9.99/version")
            assert r.status == 400 and "too new" in (await r.json())["message"]
            r = await c.get("/version")
            doc = await r.json()
            assert doc["ApiVersion"] == API_VERSION and doc["MinAPIVersion"] == "1.24"
            assert doc["Components"][0]["Details"]["ApiVersion"] == API_VERSION
            r = await c.get("/v1.47/containers/nope/json")
            assert r.status == 404
            assert r.headers["Content-Type"] == "application/json"  # exactly: the CLI needs it
            assert await r.json() == {"message": "No such container: nope"}
            r = await c.post("/containers/create?name=taken", data=b"{}")
            assert r.status == 409
            r = await c.post("/containers/create", data=b"{not json")
            assert r.status == 400 and "invalid JSON" in (await r.json())["message"]
            r = await c.post("/containers/c1/kill")
            assert r.status == 500 and "RuntimeError" in (await r.json())["message"]
            r = await c.post("/containers/c1/start")
            assert r.status == 304
            r = await c.get("/no/such/route")
            assert r.status == 404 and (await r.json())["message"] == "page not found"
        finally:
            await c.close()

    run(go())


def test_wait_sends_headers_before_the_exit() -> None:
    async def go() -> None:
        c, engine = await _client()
        try:
            r = await asyncio.wait_for(c.post("/v1.47/containers/c1/wait?condition=next-exit"), 5)
            assert r.status == 200  # headers arrived while the container still runs
            assert engine.containers.fut is not None and not engine.containers.fut.done()
            engine.containers.fut.set_result({"StatusCode": 3, "Error": None})
            body = await asyncio.wait_for(r.read(), 5)
            assert json.loads(body) == {"StatusCode": 3, "Error": None}
        finally:
            await c.close()

    run(go())
