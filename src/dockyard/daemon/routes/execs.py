"""Exec routes: ``POST /containers/{id}/exec``, ``/exec/{id}/start|resize|json``."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from dockyard import errors
from dockyard.daemon.app import API_VERSION_KEY, add_route
from dockyard.daemon.http import json_body, json_response, q_int
from dockyard.daemon.streams import frame, hijack, parse_detach_keys, relay, stream_content_type


class ExecBackend(Protocol):
    def create(self, ref: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def inspect(self, exec_id: str) -> dict[str, Any]: ...
    def check_startable(self, exec_id: str) -> None: ...
    async def start(
        self,
        exec_id: str,
        *,
        detach: bool,
        tty: bool | None = None,
        console: list[int] | None = None,
    ) -> Any: ...
    async def finished(self, exec_id: str, timeout: float = 10.0) -> None: ...
    async def resize(self, exec_id: str, height: int, width: int) -> None: ...


def setup(app: web.Application, backend: ExecBackend) -> None:
    async def create(request: web.Request) -> web.Response:
        body = await json_body(request, allow_empty=False)
        return json_response(backend.create(request.match_info["id"], body), status=201)

    async def inspect(request: web.Request) -> web.Response:
        return json_response(backend.inspect(request.match_info["id"]))

    async def resize(request: web.Request) -> web.Response:
        await backend.resize(
            request.match_info["id"], q_int(request, "h", 0) or 0, q_int(request, "w", 0) or 0
        )
        return web.Response(status=200)

    async def start(request: web.Request) -> web.StreamResponse:
        eid = request.match_info["id"]
        body = await json_body(request)
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the exec start config must be an object")
        info = backend.inspect(eid)  # 404 before anything else
        detach = bool(body.get("Detach"))
        tty = body.get("Tty")
        tty = info["ProcessConfig"]["tty"] if tty is None else bool(tty)
        console = body.get("ConsoleSize") if isinstance(body.get("ConsoleSize"), list) else None
        keys = parse_detach_keys(info["DetachKeys"]) if tty else None
        if detach:
            await backend.start(eid, detach=True, tty=tty, console=console)
            return web.Response(status=200)
        backend.check_startable(eid)  # state errors are a proper status (404, 409)
        client = await hijack(request, stream_content_type(tty, request[API_VERSION_KEY]))
        try:
            try:
                stream = await backend.start(eid, detach=False, tty=tty, console=console)
            except errors.DockyardError as exc:
                # as dockerd: after the upgrade, the error goes to the session's stdout and
                # the exec's ExitCode (126/127) tells the CLI how it ended
                text = exc.message.encode() + b"\n"
                await client.write(text if tty else frame(1, text))
                return client.response
            detached = await relay(
                client, stream, forward_stdin=info["OpenStdin"], detach_keys=keys
            )
            if not detached:
                await backend.finished(eid)  # the exit code is known before the stream ends
        except ConnectionError:
            pass
        finally:
            await client.close()
        return client.response

    add_route(app, "POST", "/containers/{id}/exec", create)
    add_route(app, "POST", "/exec/{id}/start", start)
    add_route(app, "POST", "/exec/{id}/resize", resize)
    add_route(app, "GET", "/exec/{id}/json", inspect)
