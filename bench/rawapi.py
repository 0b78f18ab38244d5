"""A minimal HTTP/1.1 client for the Engine API on a unix socket, for timing the daemon.

Nothing of dockyard's own client is used, so what is measured is the daemon (and the
kernel), not our client library: one request line, a few headers, a body framed by
``Content-Length`` or ``Transfer-Encoding: chunked``, keep-alive by default.

    c = Conn("/tmp/x/d.sock")
    status, body = c.request("POST", "/v1.47/containers/create", b'{"Image": "busybox"}')
    w = Conn(path)                      # a streaming wait holds its own connection
    w.send("POST", f"/v1.47/containers/{cid}/wait?condition=next-exit")
    w.read_head()                        # the daemon flushes the headers at once
    ...                                  # start the container on c
    status_code = json.loads(w.read_body())["StatusCode"]
"""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["Conn", "HTTPError"]


class HTTPError(Exception):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300]!r}")
        self.status = status


class Conn:
    """One keep-alive connection; ``request`` or ``send`` + ``read_head`` + ``read_body``."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = bytearray()
        self._head: tuple[int, dict[str, str]] | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------------
    def send(self, method: str, target: str, body: bytes | None = None,
             content_type: str = "application/json") -> None:
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + (body or b""))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the daemon closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_head(self) -> tuple[int, dict[str, str]]:
        status = int(self._line().split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while line := self._line():
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        self._head = (status, headers)
        return status, headers

    def read_body(self, method: str = "") -> bytes:
        assert self._head is not None, "read_head first"
        status, headers = self._head
        self._head = None
        if method == "HEAD" or status in (204, 304) or status < 200:
            return b""
        if "chunked" in headers.get("transfer-encoding", ""):
            parts: list[bytes] = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers up to the empty line
                        pass
                    return b"".join(parts)
                parts.append(self._exact(size))
                self._line()
        if "content-length" in headers:
            return self._exact(int(headers["content-length"]))
        while True:  # until close
            try:
                self._fill()
            except ConnectionError:
                data = bytes(self.buf)
                self.buf.clear()
                return data

    def request(self, method: str, target: str, body: bytes | None = None,
                ok: tuple[int, ...] = (200, 201, 204, 304)) -> tuple[int, bytes]:
        self.send(method, target, body)
        status, _ = self.read_head()
        data = self.read_body(method)
        if status not in ok:
            raise HTTPError(method, target, status, data)
        return status, data

    def json(self, method: str, target: str, obj: Any = None) -> Any:
        body = None if obj is None else json.dumps(obj).encode()
        _, data = self.request(method, target, body)
        return json.loads(data) if data.strip() else None
