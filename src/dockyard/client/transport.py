"""HTTP/1.1 over an AF_UNIX socket: requests, streamed responses, connection hijack.

The CLI's start-up time is a measured figure, and the stdlib ``http.client`` costs about
30-40 ms to import here (it pulls in ``email`` and ``ssl``), so this module speaks the small
part of HTTP/1.1 the Engine API needs over a plain socket:

* a request line, headers, and a body that is either bytes (``Content-Length``) or an
  iterable/file streamed with ``Transfer-Encoding: chunked`` (import, load, build);
* a response whose body is framed by ``Content-Length``, chunked, or read until close,
  readable all at once (``read``), piece by piece as it arrives (``read1``/``iter_raw``,
  for progress streams, ``logs -f`` and the streaming ``wait``);
* keep-alive: a connection goes back to the pool when its response was read to the end;
* hijack (``Connection: Upgrade`` / ``Upgrade: tcp``): after the ``101`` the socket is a
  raw bidirectional byte pipe with half-close (``HijackedConnection.close_write``).

``dockyard.client.interface.Transport`` is the interface; ``UnixTransport`` is the real
one and ``dockyard.client.mock.MockTransport`` a fake for tests. Only ``_socket`` and
``_thread`` are imported (``socket``/``threading`` cost import time the CLI cannot spare).
"""

from __future__ import annotations

import _socket
import _thread

from dockyard.client.errors import ConnectionFailed, error_from_response
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from dockyard.client.interface import Body, SocketLike

__all__ = [
    "DEFAULT_HOST",
    "HijackedConnection",
    "Response",
    "UnixTransport",
    "parse_host",
]

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
USER_AGENT = "Dockyard-Client/0.1.0 (linux)"
HOST_HEADER = "api.moby.localhost"
_CHUNK = 65536

def parse_host(host: str) -> str:
    """``unix:///path`` (or a bare absolute path) → the socket path."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if not path:
            raise InvalidArgument(f"invalid unix socket address: {host}")
        return path
    if host.startswith("/"):
        return host
    raise InvalidArgument(f"unsupported host {host!r}: only unix://PATH is supported")


class _Reader:
    """A buffered reader over a socket-like object."""

    __slots__ = ("sock", "buf", "eof")

    def __init__(self, sock: SocketLike, initial: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(initial)
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(_CHUNK)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit: int = 1 << 20) -> bytes:
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            start = len(self.buf)
            if start > limit:
                raise ConnectionError("response line too long")
            if not self.fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_some(self, n: int) -> bytes:
        if not self.buf and not self.fill():
            return b""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n and self.fill():
            pass
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class Headers(dict[str, str]):
    """Response headers, keys lower-cased; ``get`` is case-insensitive."""

    def get(self, key: str, default: str = "") -> str:  # type: ignore[override]
        return super().get(key.lower(), default)


def _read_head(reader: _Reader) -> tuple[int, str, Headers]:
    line = reader.readline()
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between messages
        line = reader.readline()
    if not line:
        raise ConnectionError("connection closed before a response was received")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ConnectionError(f"malformed HTTP status line: {line[:80]!r}")
    try:
        status = int(parts[1])
    except ValueError:
        raise ConnectionError(f"malformed HTTP status line: {line[:80]!r}") from None
    reason = parts[2] if len(parts) > 2 else ""
    headers = Headers()
    while True:
        h = reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, reason, headers


class Response:
    """A response whose body is read lazily from the connection.

    ``read()`` returns the whole body; ``read1()`` the next piece as soon as it is there
    (``b""`` at the end); ``iter_raw()`` iterates pieces. Reading to the end, or ``close()``,
    releases the connection (back to the pool if it can be reused).
    """

    def __init__(
        self,
        reader: _Reader,
        status: int,
        reason: str,
        headers: Headers,
        method: str,
        url: str = "",
        release: object = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self._reader = reader
        self._release = release  # callable(reusable: bool) or None
        self._done = False
        te = headers.get("transfer-encoding").lower()
        self._chunked = "chunked" in te
        self._remaining = -1  # bytes left: in the body (length mode) or the current chunk
        self._until_close = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._remaining = 0
            self._chunked = False
        elif self._chunked:
            self._remaining = 0
        elif headers.get("content-length"):
            try:
                self._remaining = int(headers.get("content-length"))
            except ValueError:
                self._until_close = True
        else:
            self._until_close = True
        if not self._chunked and not self._until_close and self._remaining == 0:
            self._finish(True)

    # -- body --------------------------------------------------------------------------
    @property
    def content_type(self) -> str:
        return self.headers.get("content-type")

    def _finish(self, reusable: bool) -> None:
        if self._done:
            return
        self._done = True
        release, self._release = self._release, None
        if callable(release):
            keep = reusable and "close" not in self.headers.get("connection").lower()
            release(keep)

    def read1(self, n: int = _CHUNK) -> bytes:
        if self._done:
            return b""
        r = self._reader
        if self._until_close:
            data = r.read_some(n)
            if not data:
                self._finish(False)
            return data
        if not self._chunked:
            data = r.read_some(min(n, self._remaining))
            if not data:
                self._finish(False)
                return b""
            self._remaining -= len(data)
            if self._remaining == 0:
                self._finish(True)
            return data
        while self._remaining == 0:
            line = r.readline()
            if not line:
                self._finish(False)
                return b""
            size_s = line.split(b";", 1)[0].strip()
            if not size_s:
                continue  # the CRLF after a chunk's data
            try:
                size = int(size_s, 16)
            except ValueError:
                self._finish(False)
                raise ConnectionError(f"malformed chunk size: {line[:40]!r}") from None
            if size == 0:
                while True:  # trailers, then the final CRLF
                    t = r.readline()
                    if t in (b"\r\n", b"\n", b""):
                        break
                self._finish(True)
                return b""
            self._remaining = size
        data = r.read_some(min(n, self._remaining))
        if not data:
            self._finish(False)
            return b""
        self._remaining -= len(data)
        if self._remaining == 0:
            # consume the CRLF that ends the chunk if it is already here
            if r.buf[:2] == b"\r\n":
                del r.buf[:2]
        return data

    def iter_raw(self) -> Iterator[bytes]:
        while True:
            data = self.read1()
            if not data:
                return
            yield data

    def read(self) -> bytes:
        return b"".join(self.iter_raw())

    def json(self) -> object:
        from dockyard.client.jsoncodec import loads

        data = self.read()
        return loads(data) if data.strip() else None

    def raise_for_status(self) -> None:
        if self.status >= 400:
            body = self.read()
            raise error_from_response(self.status, body, self.content_type, self.reason, self.url)

    def close(self) -> None:
        """Abandon the body; the connection is closed, not reused."""
        if not self._done:
            self._finish(False)


class HijackedConnection:
    """The raw socket of an upgraded (101) attach or exec-start request.

    ``recv``/``sendall`` move bytes; ``close_write`` half-closes (the daemon sees EOF on the
    container's stdin and keeps streaming output); ``close`` ends the session.
    """

    def __init__(self, sock: SocketLike, initial: bytes, content_type: str) -> None:
        self._reader = _Reader(sock, initial)
        self.sock = sock
        self.content_type = content_type
        self._closed = False

    def recv(self, n: int = _CHUNK) -> bytes:
        if self._closed:
            return b""
        try:
            return self._reader.read_some(n)
        except OSError:
            return b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> HijackedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode_head(method: str, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST_HEADER}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _iter_body(body: Body) -> Iterator[bytes]:
    if hasattr(body, "read"):
        f = body
        read1 = getattr(f, "read1", None) or f.read  # type: ignore[union-attr]
        while True:
            data = read1(_CHUNK)
            if not data:
                return
            yield data
    else:
        yield from body  # type: ignore[misc]


class UnixTransport:
    """HTTP/1.1 to a daemon on a unix socket, with a small pool of idle connections."""

    def __init__(self, path: str, host: str = "", timeout: float | None = None) -> None:
        self.path = path
        self.host = host or f"unix://{path}"
        self.timeout = timeout
        self._idle: list[tuple[_socket.socket, _Reader]] = []
        self._lock = _thread.allocate_lock()
        self._closed = False

    def _connect(self) -> _socket.socket:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise ConnectionFailed(
                f"Cannot connect to the dockyard daemon at {self.host}. "
                "Is the dockyard daemon running?"
            ) from exc
        return s

    def _checkout(self) -> tuple[_socket.socket, _Reader, bool]:
        with self._lock:
            if self._idle:
                s, r = self._idle.pop()
                return s, r, True
        s = self._connect()
        return s, _Reader(s), False

    def _send(self, s: _socket.socket, method: str, path: str,
              headers: Mapping[str, str] | None, body: Body) -> None:
        hdrs = dict(headers or {})
        if body is None:
            if method in ("POST", "PUT"):
                hdrs.setdefault("Content-Length", "0")
            s.sendall(_encode_head(method, path, hdrs))
        elif isinstance(body, (bytes, bytearray)):
            hdrs["Content-Length"] = str(len(body))
            s.sendall(_encode_head(method, path, hdrs) + bytes(body))
        else:
            hdrs["Transfer-Encoding"] = "chunked"
            s.sendall(_encode_head(method, path, hdrs))
            for data in _iter_body(body):
                if data:
                    s.sendall(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
            s.sendall(b"0\r\n\r\n")

    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> Response:
        for attempt in (0, 1):
            s, reader, reused = self._checkout()
            try:
                self._send(s, method, path, headers, body)
                status, reason, hdrs = _read_head(reader)
            except (ConnectionError, OSError) as exc:
                s.close()
                if reused and attempt == 0 and (body is None or isinstance(body, bytes)):
                    continue  # the idle connection was closed by the daemon: retry once
                if isinstance(exc, ConnectionFailed):
                    raise
                raise ConnectionFailed(
                    f"error during connect to {self.host}: {exc}"
                ) from exc
            break

        def release(keep: bool, s: _socket.socket = s, reader: _Reader = reader) -> None:
            if keep and not reader.buf:
                with self._lock:
                    if not self._closed:
                        self._idle.append((s, reader))
                        return
            else:
                try:  # wakes up a thread still blocked reading this response
                    s.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass
            s.close()

        return Response(reader, status, reason, hdrs, method, path, release)

    def hijack(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> HijackedConnection:
        hdrs = dict(headers or {})
        hdrs["Connection"] = "Upgrade"
        hdrs["Upgrade"] = "tcp"
        s = self._connect()
        reader = _Reader(s)
        try:
            self._send(s, method, path, hdrs, body if body is not None else b"")
            status, reason, rh = _read_head(reader)
        except (ConnectionError, OSError) as exc:
            s.close()
            raise ConnectionFailed(f"error during connect to {self.host}: {exc}") from exc
        if status != 101:
            resp = Response(reader, status, reason, rh, method, path, None)
            if status >= 400:
                try:
                    data = resp.read()
                finally:
                    s.close()
                raise error_from_response(status, data, resp.content_type, reason, path)
            s.close()
            raise ConnectionFailed(f"unable to upgrade to tcp, received {status}")
        return HijackedConnection(s, bytes(reader.buf), rh.get("content-type"))

    def close(self) -> None:
        """Close the idle connections; a response still being read closes its own."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for s, _ in idle:
            s.close()
