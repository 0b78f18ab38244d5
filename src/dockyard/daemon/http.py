"""Small request/response helpers shared by the route modules: docker's JSON encoding,
query-parameter parsing (bools, ints, filters), and request bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from dockyard.errors import InvalidArgument

__all__ = [
    "json_body",
    "json_response",
    "q_bool",
    "q_filters",
    "q_int",
    "q_list",
]


def json_response(data: Any, status: int = 200) -> web.Response:
    """Like Go's json.NewEncoder: compact JSON and a trailing newline, exact content type."""
    body = (json.dumps(data, separators=(",", ":")) + "\n").encode()
    return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})


def q_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolValue: absent → default; "", "0", "no", "false", "none" → False."""
    if name not in request.query:
        return default
    return request.query[name].strip().lower() not in ("", "0", "no", "false", "none")


def q_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name, "")
    if v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {v!r}: not an integer") from None


def q_list(request: web.Request, name: str) -> list[str]:
    return request.query.getall(name, [])


def q_filters(request: web.Request) -> dict[str, list[str]]:
    """``filters`` as ``{"key": ["v1", "v2"]}``; also docker's legacy ``{"key": {"v": true}}``."""
    raw = request.query.get("filters", "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid filter: {raw!r}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"invalid filter: {raw!r}")
    out: dict[str, list[str]] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out[str(k)] = [str(x) for x, on in v.items() if on]
        elif isinstance(v, list):
            out[str(k)] = [str(x) for x in v]
        else:
            raise InvalidArgument(f"invalid filter: {raw!r}")
    return out


async def json_body(request: web.Request, *, allow_empty: bool = True) -> Any:
    """The request's JSON body; an empty body is ``{}`` when allowed."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidArgument("invalid JSON: empty body")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
