"""``/_ping``, ``/version``, ``/info``."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from dockyard.daemon.app import API_VERSION, MIN_API_VERSION, add_route
from dockyard.daemon.http import json_response


class SystemBackend(Protocol):
    def version_info(self) -> dict[str, Any]:
        """The ``/version`` document (Version, ApiVersion, MinAPIVersion, Components, ...)."""

    def system_info(self) -> dict[str, Any]:
        """The ``/info`` document (Containers, Images, Driver, ...)."""


_PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Swarm": "inactive",
    "Content-Type": "text/plain; charset=utf-8",
}


def setup(app: web.Application, backend: SystemBackend) -> None:
    async def ping(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200, headers={**_PING_HEADERS, "Content-Length": "0"})
        return web.Response(status=200, body=b"OK", headers=_PING_HEADERS)

    async def version(request: web.Request) -> web.Response:
        doc = backend.version_info()
        doc.update(ApiVersion=API_VERSION, MinAPIVersion=MIN_API_VERSION)
        for comp in doc.get("Components") or []:
            if comp.get("Name") == "Engine":
                comp.setdefault("Details", {}).update(
                    ApiVersion=API_VERSION, MinAPIVersion=MIN_API_VERSION
                )
        return json_response(doc)

    async def info(request: web.Request) -> web.Response:
        return json_response(backend.system_info())

    for method in ("GET", "HEAD"):
        add_route(app, method, "/_ping", ping)
    add_route(app, "GET", "/version", version)
    add_route(app, "GET", "/info", info)
