"""The aiohttp application: routes with and without the ``/v1.NN`` prefix, the version
check, docker's response headers, and the single error-mapping middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard import __version__
from dockyard.daemon.errors import error_response
from dockyard.daemon.http import json_response
from dockyard.errors import DockyardError, InvalidArgument

__all__ = ["API_VERSION", "API_VERSION_KEY", "MIN_API_VERSION", "add_route", "make_app"]

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
SERVER = f"Dockyard/{__version__} (linux)"
#: the API version the request was made with (its /v1.NN prefix, or ours)
API_VERSION_KEY = web.RequestKey("api_version", str)

log = logging.getLogger("dockyard.daemon")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Register ``path`` both bare and under ``/v{version}``, as dockerd does."""
    app.router.add_route(method, path, handler)
    app.router.add_route(method, "/v{version:[0-9][0-9.]*}" + path, handler)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    version = request.match_info.get("version", "")
    if version:
        if _vtuple(version) > _vtuple(API_VERSION):
            return error_response(
                _BadVersion(
                    f"client version {version} is too new. "
                    f"Maximum supported API version is {API_VERSION}"
                )
            )
        if _vtuple(version) < _vtuple(MIN_API_VERSION):
            return error_response(
                _BadVersion(
                    f"client version {version} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version"
                )
            )
    request[API_VERSION_KEY] = version or API_VERSION
    try:
        return await handler(request)
    except DockyardError as exc:
        return error_response(exc)
    except web.HTTPNotFound:
        return json_response({"message": "page not found"}, status=404)
    except web.HTTPMethodNotAllowed:
        return json_response({"message": "page not found"}, status=404)
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # a bug: logged with its type by error_response
        return error_response(exc)


class _BadVersion(InvalidArgument):
    """The path's API version is outside what this daemon speaks (400)."""


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    if response.status == 101:
        return
    response.headers.setdefault("Api-Version", API_VERSION)
    response.headers.setdefault("Ostype", "linux")
    response.headers.setdefault("Docker-Experimental", "false")
    response.headers["Server"] = SERVER


def make_app(engine: Any) -> web.Application:
    """Build the application over ``engine``: ``engine.system``, ``engine.containers``,
    ``engine.execs`` and ``engine.images`` implement the Backend protocols their route
    modules declare."""
    from dockyard.daemon.routes import auth, containers, execs, images, system

    app = web.Application(
        middlewares=[api_middleware],
        client_max_size=16 * 1024 * 1024,
        handler_args={"access_log": None},
    )
    app.on_response_prepare.append(_add_headers)
    system.setup(app, engine.system)
    containers.setup(app, engine.containers)
    execs.setup(app, engine.execs)
    images.setup(app, engine.images)
    auth.setup(app, engine.images)  # issue 3: POST /auth (login) is the image backend's
    return app
