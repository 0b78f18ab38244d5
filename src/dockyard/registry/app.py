"""The aiohttp application: routes of the OCI Distribution API, auth, the error middleware.

Routes (names contain ``/``, so each pattern is matched from the right)::

    GET          /v2/                                   base: 200 {} (the auth probe)
    GET          /v2/_catalog                           catalog.get
    GET          /v2/<name>/tags/list                   tags.list_tags
    GET HEAD PUT DELETE /v2/<name>/manifests/<ref>      manifests.*
    POST         /v2/<name>/blobs/uploads/              uploads.start
    GET PATCH PUT DELETE /v2/<name>/blobs/uploads/<id>  uploads.*
    GET HEAD DELETE /v2/<name>/blobs/<digest>           blobs.*
    GET          /v2/<name>/referrers/<digest>          referrers.get
    GET POST     /token                                 the token endpoint (``--auth token``)

Each request: match the route (``NOT_FOUND``), the method (``UNSUPPORTED`` + ``Allow``), the
name (``NAME_INVALID``), then auth for the access the route needs, then the handler. Every
``RegistryError`` becomes the spec's JSON body in one middleware, and every response carries
``Docker-Distribution-API-Version: registry/2.0``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler as WebHandler

from . import errcodes
from .auth import CATALOG, Access, Authorizer, NoAuth, TokenAuth
from .errcodes import RegistryError, error_body
from .handlers import blobs, catalog, manifests, referrers, tags, uploads
from .handlers.base import Ctx, Handler
from .names import check_name
from .storage.repo import Registry

__all__ = ["API_VERSION_HEADER", "make_app"]

log = logging.getLogger("dockyard.registry")

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
REGISTRY_KEY = web.AppKey("registry", Registry)
AUTH_KEY = web.AppKey("auth", object)

_READ, _WRITE, _DELETE = frozenset({"pull"}), frozenset({"push"}), frozenset({"delete"})


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    #: method -> actions needed on the repository (push for every upload-session method)
    actions: dict[str, frozenset[str]]


def _route(pattern: str, methods: dict[str, Handler],
           actions: dict[str, frozenset[str]] | None = None) -> Route:
    default = {"GET": _READ, "HEAD": _READ, "PUT": _WRITE, "PATCH": _WRITE, "POST": _WRITE,
               "DELETE": _DELETE}
    return Route(re.compile(pattern), methods, actions or {m: default[m] for m in methods})


ROUTES = (
    _route(r"_catalog", {"GET": catalog.get}, {"GET": frozenset()}),
    _route(r"(?P<name>.+)/tags/list", {"GET": tags.list_tags}),
    _route(r"(?P<name>.+)/manifests/(?P<reference>[^/]+)",
           {"GET": manifests.get, "HEAD": manifests.get, "PUT": manifests.put,
            "DELETE": manifests.delete}),
    _route(r"(?P<name>.+)/blobs/uploads/?", {"POST": uploads.start}),
    _route(r"(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)",
           {"GET": uploads.status, "PATCH": uploads.patch, "PUT": uploads.put,
            "DELETE": uploads.cancel},
           {m: _WRITE for m in ("GET", "PATCH", "PUT", "DELETE")}),
    _route(r"(?P<name>.+)/blobs/(?P<digest>[^/]+)",
           {"GET": blobs.get, "HEAD": blobs.get, "DELETE": blobs.delete}),
    _route(r"(?P<name>.+)/referrers/(?P<digest>[^/]+)", {"GET": referrers.get}),
)


async def _base(request: web.Request) -> web.Response:
    auth: Authorizer = request.app[AUTH_KEY]  # type: ignore[assignment]
    await auth.authorize(request, [])
    return web.json_response({})


async def _dispatch(request: web.Request) -> web.StreamResponse:
    tail = request.match_info["tail"]
    for route in ROUTES:
        m = route.pattern.fullmatch(tail)
        if m is not None:
            break
    else:
        raise RegistryError(errcodes.NOT_FOUND, {"path": request.path})
    handler = route.methods.get(request.method)
    if handler is None:
        raise RegistryError(errcodes.UNSUPPORTED, {"method": request.method},
                            headers={"Allow": ", ".join(route.methods)})
    params = m.groupdict()
    name = check_name(params.pop("name")) if "name" in params else ""
    needed = [Access("repository", name, route.actions[request.method])] if name else [CATALOG]
    auth: Authorizer = request.app[AUTH_KEY]  # type: ignore[assignment]
    identity = await auth.authorize(request, needed)
    ctx = Ctx(request, request.app[REGISTRY_KEY], identity, name, params)
    resp: web.StreamResponse = await handler(ctx)
    return resp


@web.middleware
async def _errors(request: web.Request, handler: WebHandler) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except RegistryError as e:
        if e.status >= 500:
            log.error("%s %s: %s", request.method, request.path, e)
        return web.Response(status=e.status, body=error_body(e), headers={
            "Content-Type": "application/json; charset=utf-8", **e.headers})
    except web.HTTPException:
        raise
    except Exception as e:
        log.exception("%s %s: unexpected %s", request.method, request.path, type(e).__name__)
        err = RegistryError(errcodes.UNKNOWN, message=f"{type(e).__name__}: {e}")
        return web.Response(status=500, body=error_body(err),
                            headers={"Content-Type": "application/json; charset=utf-8"})


async def _api_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]


def make_app(registry: Registry, auth: Authorizer | None = None) -> web.Application:
    """The registry application over ``registry``; ``auth`` defaults to none."""
    auth = auth or NoAuth()
    app = web.Application(middlewares=[_errors], client_max_size=1 << 20)
    app[REGISTRY_KEY] = registry
    app[AUTH_KEY] = auth
    app.on_response_prepare.append(_api_version)
    app.router.add_get("/v2/", _base)
    app.router.add_get("/v2", _base)
    app.router.add_route("*", "/v2/{tail:.+}", _dispatch)
    if isinstance(auth, TokenAuth):
        app.router.add_route("GET", "/token", auth.token_handler)
        app.router.add_route("POST", "/token", auth.token_handler)
    return app
