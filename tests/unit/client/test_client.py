"""The Engine API client: HTTP framing, negotiation, error mapping, streams, hijack, config."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest

from dockyard import errors
from dockyard.client import APIClient, MockHijack, MockResponse, MockTransport, UnixTransport
from dockyard.client.config import ConfigFile, auth_key_for_domain, encode_auth
from dockyard.client.errors import ConnectionFailed, error_from_response
from dockyard.client.streams import Demuxer, SystemErr, frame, iter_json_messages, stdcopy


def ping(version: str = "1.47") -> MockResponse:
    return MockResponse(200, headers={"Api-Version": version, "Ostype": "linux"})


def client_with(routes: dict[str, MockResponse | MockHijack | Callable[..., object]],
                version: str = "1.47") -> tuple[APIClient, MockTransport]:
    def handler(req):  # type: ignore[no-untyped-def]
        if req.path == "/_ping":
            return ping(version)
        key = f"{req.method} {req.path}"
        r = routes.get(key)
        if callable(r):
            return r(req)
        return r if r is not None else MockResponse(404, json={"message": f"no route {key}"})

    t = MockTransport(handler)
    return APIClient(t), t


# -- negotiation and paths ---------------------------------------------------------------------

@pytest.mark.parametrize("server, want", [("1.50", "1.47"), ("1.47", "1.47"), ("1.41", "1.41"),
                                          ("", "1.24")])
def test_version_negotiation(server: str, want: str) -> None:
    c, t = client_with({f"GET /v{want}/containers/json": MockResponse(json=[])}, server)
    assert c.containers() == []
    assert [(r.method, r.target) for r in t.requests] == [
        ("HEAD", "/_ping"), ("GET", f"/v{want}/containers/json")]


def test_ping_falls_back_to_get() -> None:
    seen = []

    def handler(req):  # type: ignore[no-untyped-def]
        seen.append(req.method)
        if req.method == "HEAD":
            return MockResponse(405)
        if req.path == "/_ping":
            return MockResponse(200, body=b"OK", headers={"Api-Version": "1.45"})
        return MockResponse(json={"Version": "x"})

    c = APIClient(MockTransport(handler))
    assert c.version() == {"Version": "x"} and c.api_version == "1.45"
    assert seen == ["HEAD", "GET", "GET"]


def test_query_encoding_matches_go() -> None:
    from dockyard.client.api import encode_query, filters_json

    assert encode_query({"tail": "all", "stdout": "1", "stderr": "1"}) == \
        "stderr=1&stdout=1&tail=all"
    assert encode_query({"fromImage": "docker.io/library/busybox", "tag": "latest"}) == \
        "fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest"
    assert encode_query({"changes": ["ENV A=1", "CMD sh"], "x": None, "b": True}) == \
        "b=1&changes=ENV+A%3D1&changes=CMD+sh"
    assert filters_json({"status": ["running"], "label": ["a=b"]}) == \
        '{"status":{"running":true},"label":{"a=b":true}}'


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, cls", [
    (400, errors.InvalidArgument), (401, errors.Unauthorized), (403, errors.PermissionDenied),
    (404, errors.NotFound), (409, errors.Conflict), (304, errors.NotModified),
    (500, errors.Internal), (501, errors.Unsupported), (503, errors.Unavailable),
    (418, errors.Internal),
])
def test_status_maps_to_the_error_taxonomy(status: int, cls: type) -> None:
    c, _ = client_with({"GET /v1.47/containers/x/json":
                        MockResponse(status, json={"message": "No such container: x "})})
    with pytest.raises(cls) as ei:
        c.container_inspect("x")
    assert ei.value.status == status  # type: ignore[attr-defined]
    if status != 304:  # a 304 has no body
        assert str(ei.value) == "No such container: x"
        assert ei.value.from_daemon  # type: ignore[attr-defined]


def test_error_bodies() -> None:
    e = error_from_response(500, b'{"message":"x"}', "application/json; charset=utf-8")
    assert str(e) == '{"message":"x"}'
    e = error_from_response(404, b"", "", "Not Found", "/v1.47/x")
    assert str(e) == ("request returned 404 Not Found for API route and version /v1.47/x, "
                      "check if the server supports the requested API version")
    e = error_from_response(400, b"{}", "application/json")
    assert str(e) == "API returned a 400 (Bad Request) but provided no error-message"


def test_304_is_success_for_start_and_stop() -> None:
    c, _ = client_with({"POST /v1.47/containers/x/start": MockResponse(304),
                        "POST /v1.47/containers/x/stop": MockResponse(304)})
    c.container_start("x")
    c.container_stop("x")


def test_requests_bodies_and_headers() -> None:
    def create(req):  # type: ignore[no-untyped-def]
        assert req.headers["Content-Type"] == "application/json"
        assert req.json() == {"Image": "busybox"}
        assert req.query == {"name": ["web"]}
        return MockResponse(201, json={"Id": "abc", "Warnings": []})

    c, t = client_with({
        "POST /v1.47/containers/create": create,
        "POST /v1.47/images/create": MockResponse(json={"status": "ok"}, chunked=True),
        "POST /v1.47/images/busybox/push": MockResponse(body=b""),
    })
    assert c.container_create({"Image": "busybox"}, name="web") == {"Id": "abc", "Warnings": []}
    resp = c.image_create("docker.io/library/busybox", "latest", registry_auth="e30=")
    assert list(iter_json_messages(resp.iter_raw())) == [{"status": "ok"}]
    assert t.requests[-1].headers["X-Registry-Auth"] == "e30="
    c.image_push("busybox", "latest").read()
    assert t.requests[-1].headers["X-Registry-Auth"] == "e30="
    assert t.requests[-1].target == "/v1.47/images/busybox/push?tag=latest"


def test_hijack_through_the_mock() -> None:
    out = frame(1, b"hi\n") + frame(2, b"oops\n")
    c, t = client_with({"POST /v1.47/containers/x/attach": MockHijack(out)})
    conn = c.container_attach("x", stdin=True)
    got: list[bytes] = []
    stdcopy(conn.recv, got.append, got.append)
    assert got == [b"hi\n", b"oops\n"]
    req = t.requests[-1]
    assert req.headers["Connection"] == "Upgrade" and req.headers["Upgrade"] == "tcp"
    assert req.query == {"stdin": ["1"], "stdout": ["1"], "stderr": ["1"], "stream": ["1"]}
    c2, _ = client_with({})
    with pytest.raises(errors.NotFound):
        c2.container_attach("nosuch")


# -- streams -----------------------------------------------------------------------------------

def test_demuxer_handles_frames_split_anywhere() -> None:
    data = frame(1, b"hello") + frame(2, b"") + frame(2, b"world!") + frame(1, b"x" * 70000)
    for step in (1, 3, 8, 9, 100, len(data)):
        d = Demuxer()
        got: dict[int, bytes] = {1: b"", 2: b""}
        for i in range(0, len(data), step):
            for stream, payload in d.feed(data[i:i + step]):
                got[stream] += payload
        assert got == {1: b"hello" + b"x" * 70000, 2: b"world!"}
        assert not d.pending


def test_stdcopy_systemerr() -> None:
    chunks = [frame(1, b"a"), frame(3, b"runtime error")]
    with pytest.raises(SystemErr, match="runtime error"):
        stdcopy(lambda: chunks.pop(0) if chunks else b"", lambda b: None, lambda b: None)


def test_json_stream_split_across_reads() -> None:
    raw = ('{"status":"Pulling","id":"l"}\r\n{"stream":"caf\u00e9\\n"}\r\n'
           '{"aux":{"ID":"sha256:1"}}').encode()
    for step in (1, 2, 7, len(raw)):
        msgs = list(iter_json_messages(raw[i:i + step] for i in range(0, len(raw), step)))
        assert msgs == [{"status": "Pulling", "id": "l"}, {"stream": "café\n"},
                        {"aux": {"ID": "sha256:1"}}]
    with pytest.raises(ValueError):
        list(iter_json_messages([b'{"status": "trunc']))


# -- the real transport over a unix socket -------------------------------------------------------

class RawServer:
    """Replies with scripted raw bytes, one script per connection; records what it got."""

    def __init__(self, path: str, scripts: list[Callable[[socket.socket], None]]) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.scripts = scripts
        self.received: list[bytes] = []
        self.threads: list[threading.Thread] = []
        self.accepts = 0
        t = threading.Thread(target=self._loop, daemon=True)
        t.start()
        self.threads.append(t)

    def _loop(self) -> None:
        for script in self.scripts:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            t = threading.Thread(target=self._run, args=(conn, script), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, conn: socket.socket, script: Callable[[socket.socket], None]) -> None:
        with conn:
            script(conn)

    def close(self) -> None:
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
            while len(rest) < n:
                rest += conn.recv(65536)
    if b"transfer-encoding: chunked" in head.lower():
        while not rest.endswith(b"0\r\n\r\n"):
            rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


@pytest.fixture
def sock_path() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    try:
        yield os.path.join(d, "s")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_keepalive_content_length_and_chunked(sock_path: str) -> None:
    got: list[bytes] = []

    def script(conn: socket.socket) -> None:
        got.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 3\r\n\r\n[]\n")
        got.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
        got.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    srv = RawServer(sock_path, [script])
    t = UnixTransport(sock_path)
    try:
        assert t.request("GET", "/a").read() == b"[]\n"
        r = t.request("POST", "/b", body=b"xyz", headers={"Content-Type": "text/plain"})
        assert r.read() == b"hello world"
        r = t.request("DELETE", "/c")
        assert (r.status, r.read()) == (204, b"")
    finally:
        t.close()
        srv.close()
    assert srv.accepts == 1  # one connection for all three
    assert got[0].startswith(b"GET /a HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: ")
    assert b"Content-Length: 3\r\n" in got[1] and got[1].endswith(b"\r\n\r\nxyz")


def test_streamed_body_is_sent_chunked(sock_path: str) -> None:
    got: list[bytes] = []

    def script(conn: socket.socket) -> None:
        got.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstreamed until close")

    srv = RawServer(sock_path, [script])
    t = UnixTransport(sock_path)
    try:
        r = t.request("POST", "/images/create", body=iter([b"ab", b"", b"cde"]))
        assert r.read() == b"streamed until close"
    finally:
        t.close()
        srv.close()
    assert got[0].endswith(b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")


def test_hijack_half_close_and_stream(sock_path: str) -> None:
    seen = {}

    def script(conn: socket.socket) -> None:
        seen["req"] = read_request(conn)
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                     b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly")
        data = b""
        while True:
            chunk = conn.recv(1024)
            if not chunk:
                break  # the client's half-close
            data += chunk
        seen["stdin"] = data
        conn.sendall(b" and late output")  # still writable after the client's SHUT_WR

    srv = RawServer(sock_path, [script])
    t = UnixTransport(sock_path)
    try:
        conn = t.hijack("POST", "/v1.47/containers/x/attach?stdin=1", body=b"")
        assert conn.content_type == "application/vnd.docker.raw-stream"
        conn.sendall(b"input")
        conn.close_write()
        out = b""
        while True:
            d = conn.recv()
            if not d:
                break
            out += d
        conn.close()
    finally:
        t.close()
        srv.close()
    assert out == b"early and late output" and seen["stdin"] == b"input"
    assert b"Connection: Upgrade\r\nUpgrade: tcp\r\n" in seen["req"]


def test_hijack_refused(sock_path: str) -> None:
    def notfound(conn: socket.socket) -> None:
        read_request(conn)
        body = b'{"message":"No such container: x"}'
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def ok200(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    srv = RawServer(sock_path, [notfound, ok200])
    t = UnixTransport(sock_path)
    try:
        with pytest.raises(errors.NotFound, match="No such container: x"):
            t.hijack("POST", "/attach")
        with pytest.raises(ConnectionFailed, match="unable to upgrade to tcp, received 200"):
            t.hijack("POST", "/attach")
    finally:
        t.close()
        srv.close()


def test_streaming_wait_headers_first(sock_path: str) -> None:
    release = threading.Event()

    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        release.wait(5)
        body = b'{"Error":null,"StatusCode":7}\n'
        conn.sendall(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")

    srv = RawServer(sock_path, [script])
    c = APIClient(UnixTransport(sock_path), version="1.47")
    try:
        w = c.container_wait("x", "next-exit")  # returns with only the headers
        assert not w.done()
        release.set()
        assert w.result(5) == {"Error": None, "StatusCode": 7}
    finally:
        c.close()
        srv.close()


def test_connection_failure(sock_path: str) -> None:
    c = APIClient(UnixTransport(sock_path, "unix://" + sock_path))
    with pytest.raises(ConnectionFailed) as ei:
        c.containers()
    assert str(ei.value) == (f"Cannot connect to the dockyard daemon at unix://{sock_path}. "
                             "Is the dockyard daemon running?")
    assert isinstance(ei.value, errors.Unavailable)


# -- config.json -----------------------------------------------------------------------------------

def test_config_credentials_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = str(tmp_path / "cfg")
    cfg = ConfigFile.load(d)
    assert cfg.get_auth("127.0.0.1:5000") == {}
    assert cfg.store_auth("127.0.0.1:5000", "tracer", "tracerpass") is True
    assert cfg.store_auth("127.0.0.1:5000", "tracer", "tracerpass") is False
    cfg.data["psFormat"] = "table {{.ID}}"
    cfg.save()
    again = ConfigFile.load(d)
    assert again.get_auth("127.0.0.1:5000") == {"username": "tracer", "password": "tracerpass",
                                                "serveraddress": "127.0.0.1:5000"}
    assert again.ps_format == "table {{.ID}}"
    with open(os.path.join(d, "config.json")) as f:
        raw = json.load(f)
    assert raw["auths"] == {"127.0.0.1:5000": {"auth": "dHJhY2VyOnRyYWNlcnBhc3M="}}
    assert again.erase_auth("127.0.0.1:5000") and not again.erase_auth("127.0.0.1:5000")
    # keys written as URLs are found by host name
    again.store_auth("https://reg.example:5000/v2/", "u", "p")
    assert again.get_auth("reg.example:5000")["username"] == "u"


def test_registry_auth_header_values() -> None:
    assert encode_auth(None) == "e30="
    assert encode_auth({"username": "tracer", "password": "tracerpass",
                        "serveraddress": "127.0.0.1:5000"}) == (
        "eyJ1c2VybmFtZSI6InRyYWNlciIsInBhc3N3b3JkIjoidHJhY2VycGFzcyIsInNlcnZlcmFkZHJlc3MiOiIxMjcu"
        "MC4wLjE6NTAwMCJ9")
    assert auth_key_for_domain("docker.io") == "https://index.docker.io/v1/"
    assert auth_key_for_domain("localhost:5000") == "localhost:5000"
