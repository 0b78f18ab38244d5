"""Container routes: ``/containers/...``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from dockyard import errors
from dockyard.daemon.app import API_VERSION_KEY, add_route
from dockyard.daemon.http import json_body, json_response, q_bool, q_filters, q_int
from dockyard.daemon.streams import frame, hijack, parse_detach_keys, relay, stream_content_type
from dockyard.util.timefmt import parse_rfc3339


class LogEntry(Protocol):
    stream: str
    data: bytes
    time: str


class ContainersBackend(Protocol):
    def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]: ...
    async def start(self, ref: str) -> None: ...
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None: ...
    async def restart(
        self, ref: str, timeout: int | None = None, sig: str | None = None
    ) -> None: ...
    async def kill(self, ref: str, sig: str | None = None) -> None: ...
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...
    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...
    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]: ...
    async def resize(self, ref: str, height: int, width: int) -> None: ...
    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> Any: ...
    def rename(self, ref: str, new: str) -> None: ...
    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]: ...
    def list(
        self,
        all_: bool = False,
        limit: int = -1,
        size: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]: ...
    def wait_future(self, ref: str, condition: str) -> asyncio.Future[dict[str, Any]]: ...
    def logs(
        self,
        ref: str,
        *,
        stdout: bool,
        stderr: bool,
        follow: bool = False,
        since_ns: int = 0,
        until_ns: int = 0,
        tail: int = -1,
    ) -> AsyncIterator[LogEntry]: ...


def _time_param(request: web.Request, name: str) -> int:
    """``since``/``until``: unix seconds (``"1700000000.5"``, ``"1700000000.000000001"``)
    or RFC 3339; 0 when absent."""
    v = request.query.get(name, "")
    if not v or v == "0":
        return 0
    if "." in v and v.replace(".", "", 1).lstrip("-").isdigit():
        sec, frac = v.split(".", 1)
        return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
    if v.lstrip("-").isdigit():
        return int(v) * 1_000_000_000
    try:
        return parse_rfc3339(v)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {v!r}") from None


def setup(app: web.Application, backend: ContainersBackend) -> None:
    async def list_(request: web.Request) -> web.Response:
        limit = q_int(request, "limit", -1)
        return json_response(
            backend.list(
                all_=q_bool(request, "all"),
                limit=limit if limit is not None else -1,
                size=q_bool(request, "size"),
                filters=q_filters(request),
            )
        )

    async def create(request: web.Request) -> web.Response:
        body = await json_body(request, allow_empty=False)
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the container config must be an object")
        return json_response(backend.create(request.query.get("name") or None, body), status=201)

    async def inspect(request: web.Request) -> web.Response:
        return json_response(
            backend.inspect(request.match_info["id"], size=q_bool(request, "size"))
        )

    async def start(request: web.Request) -> web.Response:
        await backend.start(request.match_info["id"])
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.Response:
        await backend.stop(
            request.match_info["id"], q_int(request, "t"), request.query.get("signal") or None
        )
        return web.Response(status=204)

    async def restart(request: web.Request) -> web.Response:
        await backend.restart(
            request.match_info["id"], q_int(request, "t"), request.query.get("signal") or None
        )
        return web.Response(status=204)

    async def kill(request: web.Request) -> web.Response:
        await backend.kill(request.match_info["id"], request.query.get("signal") or None)
        return web.Response(status=204)

    async def rename(request: web.Request) -> web.Response:
        backend.rename(request.match_info["id"], request.query.get("name", ""))
        return web.Response(status=204)

    async def top(request: web.Request) -> web.Response:
        return json_response(
            await backend.top(request.match_info["id"], request.query.get("ps_args", ""))
        )

    async def resize(request: web.Request) -> web.Response:
        h, w = q_int(request, "h", 0) or 0, q_int(request, "w", 0) or 0
        await backend.resize(request.match_info["id"], h, w)
        return web.Response(status=200)

    async def delete(request: web.Request) -> web.Response:
        await backend.remove(
            request.match_info["id"], force=q_bool(request, "force"), volumes=q_bool(request, "v")
        )
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        return json_response(await backend.prune(q_filters(request)))

    async def wait(request: web.Request) -> web.StreamResponse:
        fut = backend.wait_future(request.match_info["id"], request.query.get("condition", ""))
        # headers go out now: the docker CLI calls start only after it has them
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        while not fut.done():
            await asyncio.wait([fut], timeout=1.0)
            transport = request.transport
            if not fut.done() and (transport is None or transport.is_closing()):
                fut.cancel()  # the client went away (``run -d`` abandons its wait)
                return resp
        try:
            await resp.write((json.dumps(fut.result()) + "\n").encode())
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def logs(request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        stdout, stderr = q_bool(request, "stdout"), q_bool(request, "stderr")
        if not stdout and not stderr:
            raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
        info = backend.inspect(ref)
        tty = bool(info["Config"].get("Tty"))
        tail_s = request.query.get("tail", "all")
        try:
            tail = -1 if tail_s in ("", "all") else max(int(tail_s), 0)
        except ValueError:
            tail = -1
        timestamps = q_bool(request, "timestamps")
        entries = backend.logs(
            ref,
            stdout=stdout,
            stderr=stderr,
            follow=q_bool(request, "follow"),
            since_ns=_time_param(request, "since"),
            until_ns=_time_param(request, "until"),
            tail=tail,
        )
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": stream_content_type(tty, request[API_VERSION_KEY])}
        )
        await resp.prepare(request)
        try:
            async for e in entries:
                data = (e.time.encode() + b" " + e.data) if timestamps else e.data
                await resp.write(data if tty else frame(1 if e.stream == "stdout" else 2, data))
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def attach(request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        info = backend.inspect(ref)
        tty = bool(info["Config"].get("Tty"))
        stdin = q_bool(request, "stdin")
        stdout, stderr = q_bool(request, "stdout"), q_bool(request, "stderr")
        keys = parse_detach_keys(request.query.get("detachKeys", "")) if tty and stdin else None
        client = await hijack(request, stream_content_type(tty, request[API_VERSION_KEY]))
        try:
            if q_bool(request, "logs"):
                async for e in backend.logs(ref, stdout=stdout, stderr=stderr):
                    await client.write(
                        e.data if tty else frame(1 if e.stream == "stdout" else 2, e.data)
                    )
            if q_bool(request, "stream"):
                attach_task = asyncio.ensure_future(backend.attach(ref, stdin, stdout, stderr))
                # until the container starts, notice a client that hangs up
                while not attach_task.done():
                    await asyncio.wait([attach_task], timeout=1.0)
                    if not attach_task.done() and client.closing():
                        attach_task.cancel()
                if attach_task.cancelled():
                    return client.response
                await relay(client, attach_task.result(), forward_stdin=stdin, detach_keys=keys)
        except (errors.DockyardError, ConnectionError):
            pass  # e.g. the start failed or the container was removed: the stream just ends
        finally:
            await client.close()
        return client.response

    add_route(app, "GET", "/containers/json", list_)
    add_route(app, "POST", "/containers/create", create)
    add_route(app, "POST", "/containers/prune", prune)
    add_route(app, "GET", "/containers/{id}/json", inspect)
    add_route(app, "POST", "/containers/{id}/start", start)
    add_route(app, "POST", "/containers/{id}/stop", stop)
    add_route(app, "POST", "/containers/{id}/restart", restart)
    add_route(app, "POST", "/containers/{id}/kill", kill)
    add_route(app, "POST", "/containers/{id}/rename", rename)
    add_route(app, "GET", "/containers/{id}/top", top)
    add_route(app, "POST", "/containers/{id}/resize", resize)
    add_route(app, "POST", "/containers/{id}/wait", wait)
    add_route(app, "GET", "/containers/{id}/logs", logs)
    add_route(app, "POST", "/containers/{id}/attach", attach)
    add_route(app, "DELETE", "/containers/{id}", delete)
