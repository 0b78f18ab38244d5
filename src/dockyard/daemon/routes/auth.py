"""``POST /auth`` (``docker login``): the daemon checks the credentials against the
registry's challenge (Basic or Bearer) and answers ``{"Status": "Login Succeeded",
"IdentityToken": ""}``; wrong credentials are a 401 with the registry's wording. The CLI,
not the daemon, stores the credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from dockyard.daemon.app import add_route
from dockyard.daemon.http import json_body, json_response
from dockyard.errors import InvalidArgument

__all__ = ["AuthBackend", "setup"]


class AuthBackend(Protocol):
    async def login(self, config: Mapping[str, Any]) -> dict[str, str]:
        """``config`` is docker's AuthConfig (``username``, ``password``,
        ``serveraddress``, or ``identitytoken``). Unauthorized on wrong credentials,
        Unavailable when the registry cannot be reached."""


def setup(app: web.Application, backend: AuthBackend) -> None:
    async def auth(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("invalid auth configuration: not a JSON object")
        return json_response(await backend.login(body))

    add_route(app, "POST", "/auth", auth)
