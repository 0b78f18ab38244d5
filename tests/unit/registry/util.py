"""Helpers for the registry handler tests: an in-process server and small image builders."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.oci import mediatypes as mt
from dockyard.registry.app import make_app
from dockyard.registry.auth import Authorizer
from dockyard.registry.storage.driver import StorageDriver
from dockyard.registry.storage.repo import Registry

Client = TestClient[web.Request, web.Application]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Harness:
    """One storage driver; ``client()`` serves a fresh app (and, with ``restart=True``, a fresh
    ``Registry``: what a restarted process would have) over it."""

    def __init__(self, driver: StorageDriver, auth: Authorizer | None = None) -> None:
        self.driver = driver
        self.auth = auth
        self.registry = Registry(driver)

    @asynccontextmanager
    async def client(self, auth: Authorizer | None = None, restart: bool = False
                     ) -> AsyncIterator[Client]:
        if restart:
            self.registry = Registry(self.driver)
        app = make_app(self.registry, auth or self.auth)
        async with TestClient(TestServer(app)) as c:
            yield c


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["code"] for e in body["errors"]]


async def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, (resp.status, await resp.text())
    body: dict[str, Any] = await resp.json()
    assert error_codes(body) == [code], body
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    return body


async def push_blob(c: Client, name: str, data: bytes) -> str:
    d = sha(data)
    r = await c.post(f"/v2/{name}/blobs/uploads/", params={"digest": d}, data=data)
    assert r.status == 201, await r.text()
    return d


def descriptor(data: bytes, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data)}


def image_manifest(config: bytes, layers: list[bytes], docker: bool = False,
                   **extra: Any) -> bytes:
    layer_type = mt.DOCKER_LAYER_GZIP if docker else mt.OCI_LAYER_GZIP
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        "config": descriptor(config, mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG),
        "layers": [descriptor(layer, layer_type) for layer in layers],
        **extra,
    }
    # not canonical on purpose: the registry must keep these exact bytes
    return json.dumps(doc, indent=3).encode() + b"\n"


async def push_image(c: Client, name: str, tag: str, layers: list[bytes] | None = None,
                     docker: bool = False, **extra: Any) -> tuple[str, bytes]:
    layers = [b"layer-" + name.encode() + b"-" + tag.encode()] if layers is None else layers
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in [config, *layers]:
        await push_blob(c, name, blob)
    man = image_manifest(config, layers, docker, **extra)
    media = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    r = await c.put(f"/v2/{name}/manifests/{tag}", data=man, headers={"Content-Type": media})
    assert r.status == 201, await r.text()
    assert r.headers["Docker-Content-Digest"] == sha(man)
    return sha(man), man


async def raw_request(c: Client, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (request line + headers, no blank line) and ``body`` byte for byte, as
    no HTTP client would (``..`` kept); the status and the whole reply."""
    import asyncio

    reader, writer = await asyncio.open_connection(c.server.host, c.server.port)
    try:
        head += "\nConnection: close"
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(data.split(b" ", 2)[1]) if data else 0
    return status, data
