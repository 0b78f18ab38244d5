"""An in-memory ``Transport`` for tests, in the spirit of httpx's ``MockTransport``.

A handler function receives each ``MockRequest`` and returns a ``MockResponse`` (or, for
a hijack, a ``MockHijack`` with the bytes the daemon would stream). The reply is encoded as
real HTTP/1.1 bytes and parsed by the same code as a socket's, so framing is exercised too::

    def handler(req):
        if req.path.endswith("/containers/json"):
            return MockResponse(json=[])
        return MockResponse(404, json={"message": "page not found"})

    client = APIClient(MockTransport(handler))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.client.errors import error_from_response
from dockyard.client.interface import Body
from dockyard.client.transport import (
    HijackedConnection,
    Response,
    _iter_body,
    _read_head,
    _Reader,
)

__all__ = ["MockHijack", "MockRequest", "MockResponse", "MockTransport"]

_REASONS = {101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable"}


@dataclass
class MockRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs

        q = self.target.split("?", 1)[1] if "?" in self.target else ""
        return parse_qs(q, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class MockResponse:
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False

    def encode(self) -> bytes:
        body = self.body
        headers = dict(self.headers)
        if self.json is not None:
            body = (json.dumps(self.json) + "\n").encode()
            headers.setdefault("Content-Type", "application/json")
        head = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if self.chunked:
            head.append("Transfer-Encoding: chunked")
            payload = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        else:
            head.append(f"Content-Length: {len(body)}")
            payload = body
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@dataclass
class MockHijack:
    """The daemon's side of an upgraded connection: ``output`` is streamed to the client."""

    output: bytes = b""
    content_type: str = "application/vnd.docker.multiplexed-stream"


class _FakeSocket:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.sent = bytearray()
        self.shut_wr = False
        self.closed = False

    def recv(self, n: int) -> bytes:
        chunk = bytes(self._data[:n])
        self._data = self._data[n:]
        return chunk

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown(self, how: int) -> None:
        self.shut_wr = True

    def close(self) -> None:
        self.closed = True


Handler = Callable[[MockRequest], "MockResponse | MockHijack"]


class MockTransport:
    """Records every request in ``requests`` and answers with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[MockRequest] = []
        self.sockets: list[_FakeSocket] = []

    def _record(self, method: str, path: str, headers: Mapping[str, str] | None,
                body: Body) -> MockRequest:
        if body is None:
            data = b""
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = b"".join(_iter_body(body))
        req = MockRequest(method, path, dict(headers or {}), data)
        self.requests.append(req)
        return req

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                body: Body = None) -> Response:
        req = self._record(method, path, headers, body)
        reply = self.handler(req)
        if not isinstance(reply, MockResponse):
            raise TypeError("handler must return a MockResponse for a plain request")
        sock = _FakeSocket(reply.encode())
        self.sockets.append(sock)
        reader = _Reader(sock)
        status, reason, hdrs = _read_head(reader)
        return Response(reader, status, reason, hdrs, method, path, None)

    def hijack(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
               body: bytes | None = None) -> HijackedConnection:
        hdrs = dict(headers or {})
        hdrs["Connection"] = "Upgrade"
        hdrs["Upgrade"] = "tcp"
        req = self._record(method, path, hdrs, body)
        reply = self.handler(req)
        if isinstance(reply, MockResponse):
            data = reply.body if reply.json is None else json.dumps(reply.json).encode()
            ctype = "application/json" if reply.json is not None else reply.headers.get(
                "Content-Type", "")
            raise error_from_response(reply.status, data, ctype, "", path)
        sock = _FakeSocket(reply.output)
        self.sockets.append(sock)
        return HijackedConnection(sock, b"", reply.content_type)

    def close(self) -> None:
        pass
