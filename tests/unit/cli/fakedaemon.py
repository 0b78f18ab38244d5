"""A fake Engine API daemon on a unix socket, for testing the CLI and the client.

Plain stdlib (sockets and threads), so it exercises the client's real HTTP code. It records
every request (``requests``) and answers the way dockerd does in ``shared/traces``:

* ``HEAD``/``GET /_ping`` with ``Api-Version``;
* a small container model: create (404 for unknown images until they are "pulled"),
  attach (hijack: ``101``, then output frames once the container starts; stdin echoed
  into ``stdin_received``), wait (headers at once, body when the container exits or is
  removed), start, kill, stop, rm, inspect, logs, exec;
* images: list, inspect, tag, rmi, pull (JSON progress), push, import, save, load;
* ``route(method, regex)`` adds or overrides a handler for a test.

A container's "program" is ``Program(stdout, stderr, exit_code, echo_stdin, wait_stdin)``
registered per image in ``programs``; ``echo_stdin`` copies stdin to stdout (like ``cat``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

API_VERSION = "1.47"


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    conn_no: int

    @property
    def path(self) -> str:
        p = self.target.split("?", 1)[0]
        return re.sub(r"^/v[0-9.]+", "", p)

    @property
    def query(self) -> dict[str, list[str]]:
        q = self.target.split("?", 1)[1] if "?" in self.target else ""
        return parse_qs(q, keep_blank_values=True)

    def q(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def line(self) -> str:
        return f"{self.method} {self.target}"


@dataclass
class Program:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    echo_stdin: bool = False
    delay: float = 0.0
    start_error: str = ""  # start fails with a 400 and this message (e.g. runc's exec error)
    start_status: int = 400
    block: bool = False  # runs until killed/stopped


@dataclass
class Container:
    id: str
    name: str
    config: dict[str, Any]
    state: str = "created"
    exit_code: int = 0
    started: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)
    removed: threading.Event = field(default_factory=threading.Event)
    attached: threading.Event = field(default_factory=threading.Event)
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: threading.Event = field(default_factory=threading.Event)
    created: int = field(default_factory=lambda: int(time.time()))


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class Reply:
    def __init__(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
                 chunks: list[bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.chunks = chunks


def jreply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, (json.dumps(obj) + "\n").encode(), {"Content-Type": "application/json"})


def jerror(status: int, message: str) -> Reply:
    return jreply({"message": message}, status)


def jstream(objs: list[dict[str, Any]]) -> Reply:
    return Reply(200, b"", {"Content-Type": "application/json"},
                 chunks=[(json.dumps(o) + "\r\n").encode() for o in objs])


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
            401: "Unauthorized", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
            503: "Service Unavailable"}

Handler = Callable[[Request, "Conn"], "Reply | None"]


class Conn:
    """One client connection (a handler may take it over: hijack, streaming wait)."""

    def __init__(self, sock: socket.socket, no: int) -> None:
        self.sock = sock
        self.no = no
        self.buf = bytearray()
        self.taken = False

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes | None:
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(b"\n")
        line = bytes(self.buf[: i + 1])
        del self.buf[: i + 1]
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self) -> bytes:
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            return data
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def head(self, status: int, headers: dict[str, str], reason: str = "") -> bool:
        lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'OK')}",
                 f"Api-Version: {API_VERSION}", "Ostype: linux", "Server: Docker/fake (linux)"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode())


class FakeDaemon:
    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: list[Request] = []
        self.containers: dict[str, Container] = {}
        self._all: list[Container] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.pullable: dict[str, str] = {}  # "docker.io/library/busybox:latest" → image id
        self.programs: dict[str, Program] = {}
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.exec_codes: dict[str, int] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.auth_ok: dict[str, str] = {}
        self.imported: list[bytes] = []
        self.loaded: list[bytes] = []
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._conn_no = 0
        self._lock = threading.Lock()
        self._ids = 0
        self._install_defaults()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeDaemon:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.listen(64)
        self._sock = s
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for c in self._all:
            c.started.set()
            c.exited.set()
            c.removed.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(timeout=2)
            if t.is_alive():  # pragma: no cover - a debugging aid
                import sys
                import traceback

                frame = sys._current_frames().get(t.ident or 0)
                print("fake daemon thread still running:", "".join(
                    traceback.format_stack(frame)) if frame else t, file=sys.stderr)
        try:
            os.unlink(self.path)
        except OSError:
            pass

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def lines(self, skip_ping: bool = True) -> list[str]:
        return [r.line() for r in self.requests if not (skip_ping and r.path == "/_ping")]

    # -- server ------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                cs, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conn_no += 1
                no = self._conn_no
                self._conns.append(cs)
            t = threading.Thread(target=self._serve, args=(Conn(cs, no),), daemon=True)
            t.start()
            self._threads.append(t)

    def _read_request(self, conn: Conn) -> Request | None:
        line = conn.readline()
        while line in (b"\r\n", b"\n"):
            line = conn.readline()
        if not line:
            return None
        method, target, _ = line.decode().split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            h = conn.readline()
            if h is None or h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size_line = conn.readline()
                if size_line is None:
                    break
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    conn.readline()
                    break
                parts.append(conn.read_exact(size))
                conn.readline()
            body = b"".join(parts)
        elif headers.get("content-length"):
            body = conn.read_exact(int(headers["content-length"]))
        return Request(method, target, headers, body, conn.no)

    def _serve(self, conn: Conn) -> None:
        try:
            while not self._stop.is_set():
                req = self._read_request(conn)
                if req is None:
                    return
                with self._lock:
                    self.requests.append(req)
                reply = self._dispatch(req, conn)
                if conn.taken:
                    return
                if reply is None:
                    reply = jerror(404, "page not found")
                self._send(conn, req, reply)
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass

    def _send(self, conn: Conn, req: Request, reply: Reply) -> None:
        headers = dict(reply.headers)
        if reply.chunks is not None:
            headers["Transfer-Encoding"] = "chunked"
            conn.head(reply.status, headers)
            for c in reply.chunks:
                conn.send(b"%x\r\n" % len(c) + c + b"\r\n")
            conn.send(b"0\r\n\r\n")
            return
        if reply.status not in (204, 304):
            headers["Content-Length"] = str(len(reply.body))
        conn.head(reply.status, headers)
        if req.method != "HEAD" and reply.status not in (204, 304):
            conn.send(reply.body)

    def _dispatch(self, req: Request, conn: Conn) -> Reply | None:
        for method, rx, handler in reversed(self.routes):
            if method == req.method and rx.fullmatch(req.path):
                return handler(req, conn)
        return None

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern), fn))
            return fn
        return deco

    # -- model helpers -------------------------------------------------------------------
    def new_id(self) -> str:
        with self._lock:
            self._ids += 1
            n = self._ids
        return f"{n:04x}" + "ab" * 30

    def add_image(self, ref: str, image_id: str | None = None, **extra: Any) -> str:
        iid = image_id or "sha256:" + (f"{len(self.images) + 1:02x}" * 32)
        name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        img = self.images.setdefault(iid, {
            "Id": iid, "RepoTags": [], "RepoDigests": [], "Created": int(time.time()) - 3600,
            "Size": 4326768, "SharedSize": -1, "Containers": -1, "Labels": {}, "ParentId": "",
        })
        img["RepoTags"].append(name)
        img.update(extra)
        return iid

    def find_image(self, ref: str) -> dict[str, Any] | None:
        cands = {ref, ref + ":latest", "docker.io/library/" + ref,
                 "docker.io/library/" + ref + ":latest"}
        for img in self.images.values():
            short = img["Id"].removeprefix("sha256:")
            if img["Id"] == ref or (len(ref) >= 6 and short.startswith(ref)):
                return img
            if cands & set(img["RepoTags"]):
                return img
        return None

    def find(self, ref: str) -> Container | None:
        for c in self.containers.values():
            if c.id == ref or c.name == ref or (len(ref) >= 4 and c.id.startswith(ref)):
                return c
        return None

    def _exit(self, c: Container, code: int) -> None:
        c.exit_code = code
        c.state = "exited"
        c.exited.set()
        if c.config.get("HostConfig", {}).get("AutoRemove"):
            time.sleep(0.01)
            self.containers.pop(c.id, None)
            c.removed.set()

    def _program(self, c: Container) -> Program:
        return self.programs.get(c.config.get("Image", ""), Program())

    def _run_program(self, c: Container) -> None:
        """Run "the process" when nobody is attached (detached containers)."""
        p = self._program(c)
        if p.block or (p.echo_stdin and c.config.get("OpenStdin")):
            return  # waits for an attach that feeds stdin, or a kill
        time.sleep(p.delay)
        if not c.attached.is_set():
            self._exit(c, p.exit_code)

    # -- default routes ------------------------------------------------------------------
    def _install_defaults(self) -> None:
        r = self.route

        @r("HEAD", "/_ping")
        def _ping_head(req: Request, conn: Conn) -> Reply:
            return Reply(200, b"", {"Content-Type": "text/plain; charset=utf-8",
                                    "Docker-Experimental": "false", "Builder-Version": "1"})

        @r("GET", "/_ping")
        def _ping_get(req: Request, conn: Conn) -> Reply:
            return Reply(200, b"OK", {"Content-Type": "text/plain; charset=utf-8"})

        @r("GET", "/version")
        def _version(req: Request, conn: Conn) -> Reply:
            return jreply({
                "Platform": {"Name": ""},
                "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {
                    "ApiVersion": API_VERSION, "Arch": "amd64",
                    "BuildTime": "2026-05-07T21:09:36.000000000+00:00", "Experimental": "false",
                    "GitCommit": "abc1234", "GoVersion": "python3.11", "KernelVersion": "6.1",
                    "MinAPIVersion": "1.24", "Os": "linux"}}],
                "Version": "0.1.0", "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                "GitCommit": "abc1234", "GoVersion": "python3.11", "Os": "linux",
                "Arch": "amd64", "KernelVersion": "6.1",
                "BuildTime": "2026-05-07T21:09:36.000000000+00:00"})

        @r("GET", "/info")
        def _info(req: Request, conn: Conn) -> Reply:
            running = sum(1 for c in self.containers.values() if c.state == "running")
            return jreply({
                "ID": "FAKE", "Containers": len(self.containers), "ContainersRunning": running,
                "ContainersPaused": 0, "ContainersStopped": len(self.containers) - running,
                "Images": len(self.images), "Driver": "overlay2",
                "DriverStatus": [["Backing Filesystem", "extfs"]],
                "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                            "Log": ["json-file"]},
                "Swarm": {"LocalNodeState": "inactive"}, "Runtimes": {"dockyard": {}},
                "DefaultRuntime": "dockyard", "OSType": "linux", "KernelVersion": "6.1",
                "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "Architecture": "x86_64",
                "NCPU": 2, "MemTotal": 8203476992, "Name": "host", "ServerVersion": "0.1.0",
                "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "LoggingDriver": "json-file",
                "DockerRootDir": "/var/lib/dockyard", "Warnings": []})

        @r("GET", "/containers/json")
        def _list(req: Request, conn: Conn) -> Reply:
            out = []
            for c in sorted(self.containers.values(), key=lambda c: -c.created):
                if req.q("all") != "1" and c.state != "running":
                    continue
                cmd = (c.config.get("Entrypoint") or []) + (c.config.get("Cmd") or [])
                status = {"created": "Created", "running": "Up 2 minutes"}.get(
                    c.state, f"Exited ({c.exit_code}) 3 seconds ago")
                out.append({
                    "Id": c.id, "Names": ["/" + c.name], "Image": c.config.get("Image", ""),
                    "ImageID": "sha256:" + "b4" * 32, "Command": " ".join(cmd),
                    "Created": c.created, "Ports": [], "Labels": c.config.get("Labels") or {},
                    "State": c.state, "Status": status,
                    "HostConfig": {"NetworkMode": "default"},
                    "NetworkSettings": {"Networks": {"bridge": {}}}, "Mounts": [],
                })
            return jreply(out)

        @r("POST", "/containers/create")
        def _create(req: Request, conn: Conn) -> Reply:
            body = req.json()
            image = body.get("Image", "")
            if self.find_image(image) is None:
                return jerror(404, f"No such image: {image}")
            name = req.q("name") or f"fake_{len(self.containers)}"
            if any(c.name == name for c in self.containers.values()):
                return jerror(409, f'Conflict. The container name "/{name}" is already in use')
            cid = self.new_id()
            self.containers[cid] = Container(cid, name, body)
            self._all.append(self.containers[cid])
            return jreply({"Id": cid, "Warnings": []}, 201)

        @r("GET", r"/containers/[^/]+/json")
        def _inspect(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            cfg = {k: v for k, v in c.config.items() if k not in ("HostConfig", "NetworkingConfig")}
            return jreply({
                "Id": c.id, "Created": "2026-11-28T04:23:35.518313249Z", "Path": "sh",
                "Args": [], "State": {"Status": c.state, "Running": c.state == "running",
                                      "Paused": False, "Restarting": False,
                                      "ExitCode": c.exit_code, "Pid": 42},
                "Image": "sha256:" + "b4" * 32, "Name": "/" + c.name, "Config": cfg,
                "HostConfig": c.config.get("HostConfig", {}),
                "NetworkSettings": {"IPAddress": "10.88.0.2", "Networks": {
                    "bridge": {"IPAddress": "10.88.0.2"}}},
            })

        @r("POST", r"/containers/[^/]+/attach")
        def _attach(req: Request, conn: Conn) -> None:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            conn.taken = True
            if c is None:
                body = json.dumps({"message": f"No such container: {ref}"}).encode()
                conn.head(404, {"Content-Type": "application/json",
                                "Content-Length": str(len(body))})
                conn.send(body)
                return None
            tty = bool(c.config.get("Tty"))
            ctype = "application/vnd.docker.raw-stream" if tty else \
                "application/vnd.docker.multiplexed-stream"
            conn.head(101, {"Content-Type": ctype, "Connection": "Upgrade", "Upgrade": "tcp"},
                      "UPGRADED")
            c.attached.set()
            want_stdin = req.q("stdin") == "1"
            p = self._program(c)

            def reader() -> None:
                while True:
                    data = conn.read_some()
                    if not data:
                        break
                    c.stdin += data
                    if p.echo_stdin:
                        conn.send(data if tty else frame(1, data))
                c.stdin_closed.set()

            rt = None
            if want_stdin:
                rt = threading.Thread(target=reader, daemon=True)
                rt.start()
            if not c.started.wait(10):
                return None
            if self._stop.is_set():
                return None
            if p.stdout:
                conn.send(p.stdout if tty else frame(1, p.stdout))
            if p.stderr:
                conn.send(p.stderr if tty else frame(2, p.stderr))
            if p.block:
                c.exited.wait(30)
            elif p.echo_stdin and want_stdin:
                c.stdin_closed.wait(10)
            elif p.echo_stdin and c.config.get("OpenStdin"):
                c.exited.wait(10)
            time.sleep(p.delay)
            if not c.exited.is_set():
                self._exit(c, p.exit_code)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None

        @r("POST", r"/containers/[^/]+/wait")
        def _wait(req: Request, conn: Conn) -> Reply | None:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            conn.taken = True
            conn.head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            cond = req.q("condition", "not-running")
            if cond == "removed":
                c.removed.wait(30)
            else:
                c.exited.wait(30)
            body = (json.dumps({"Error": None, "StatusCode": c.exit_code}) + "\n").encode()
            conn.send(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            return None

        @r("POST", r"/containers/[^/]+/start")
        def _start(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            p = self._program(c)
            if p.start_error:
                if c.config.get("HostConfig", {}).get("AutoRemove"):
                    self._exit(c, 127)
                return jerror(p.start_status, p.start_error)
            if c.state == "running":
                return Reply(304)
            c.state = "running"
            c.started.set()
            if not c.attached.is_set():
                threading.Thread(target=self._run_program, args=(c,), daemon=True).start()
            return Reply(204)

        @r("POST", r"/containers/[^/]+/(kill|stop|restart)")
        def _kill(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            verb = req.path.rsplit("/", 1)[1]
            if verb == "kill" and c.state != "running":
                return jerror(409, f"Container {c.id} is not running")
            if verb == "stop" and c.state != "running":
                return Reply(304)
            sig = req.q("signal", "KILL" if verb == "kill" else "TERM")
            if verb == "kill" and sig in ("WINCH", "CONT", "USR1"):
                return Reply(204)
            self._exit(c, 137 if sig in ("KILL", "9") else 143)
            if verb == "restart":
                c.state = "running"
                c.exited = threading.Event()
            return Reply(204)

        @r("DELETE", r"/containers/[^/]+")
        def _rm(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            if c.state == "running" and req.q("force") != "1":
                return jerror(409, f"cannot remove container \"/{c.name}\": container is running: "
                              "stop the container before removing or force remove")
            self.containers.pop(c.id, None)
            c.removed.set()
            c.exited.set()
            return Reply(204)

        @r("GET", r"/containers/[^/]+/logs")
        def _logs(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            p = self._program(c)
            if c.config.get("Tty"):
                return Reply(200, b"", {}, chunks=[p.stdout + p.stderr])
            chunks = []
            if p.stdout:
                chunks.append(frame(1, p.stdout))
            if p.stderr:
                chunks.append(frame(2, p.stderr))
            return Reply(200, b"", {}, chunks=chunks)

        @r("POST", r"/containers/[^/]+/rename")
        def _rename(req: Request, conn: Conn) -> Reply:
            c = self.find(req.path.split("/")[2])
            if c is None:
                return jerror(404, f"No such container: {req.path.split('/')[2]}")
            c.name = req.q("name")
            return Reply(204)

        @r("GET", r"/containers/[^/]+/top")
        def _top(req: Request, conn: Conn) -> Reply:
            return jreply({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
                           "Processes": [["root", "4242", "4200", "0", "04:23", "?",
                                          "00:00:00", "sleep 300"]]})

        @r("POST", r"/containers/[^/]+/resize")
        def _resize(req: Request, conn: Conn) -> Reply:
            return Reply(200, b"", {"Content-Length": "0"})

        @r("POST", "/containers/prune")
        def _cprune(req: Request, conn: Conn) -> Reply:
            gone = [c.id for c in self.containers.values() if c.state != "running"]
            for i in gone:
                self.containers.pop(i)
            return jreply({"ContainersDeleted": gone or None,
                           "SpaceReclaimed": 1234 if gone else 0})

        @r("POST", r"/containers/[^/]+/exec")
        def _exec_create(req: Request, conn: Conn) -> Reply:
            ref = req.path.split("/")[2]
            c = self.find(ref)
            if c is None:
                return jerror(404, f"No such container: {ref}")
            eid = "e" + self.new_id()[1:]
            self.execs[eid] = {"config": req.json(), "container": c.id}
            return jreply({"Id": eid}, 201)

        @r("POST", r"/exec/[^/]+/start")
        def _exec_start(req: Request, conn: Conn) -> Reply | None:
            eid = req.path.split("/")[2]
            ex = self.execs.get(eid)
            if ex is None:
                return jerror(404, f"No such exec instance: {eid}")
            body = req.json() or {}
            if body.get("Detach"):
                ex["exit"] = 0
                return jreply({})
            conn.taken = True
            tty = bool(body.get("Tty"))
            conn.head(101, {"Content-Type": "application/vnd.docker.raw-stream" if tty else
                            "application/vnd.docker.multiplexed-stream",
                            "Connection": "Upgrade", "Upgrade": "tcp"}, "UPGRADED")
            cmd = ex["config"].get("Cmd") or []
            if cmd[:1] == ["cat"]:
                data = bytearray()
                while True:
                    d = conn.read_some()
                    if not d:
                        break
                    data += d
                conn.send(bytes(data) if tty else frame(1, bytes(data)))
            else:
                out = (" ".join(cmd[1:]) + "\n").encode() if cmd[:1] == ["echo"] else b""
                if out:
                    conn.send(out if tty else frame(1, out))
            ex["exit"] = self.exec_codes.get(" ".join(cmd), 0)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None

        @r("GET", r"/exec/[^/]+/json")
        def _exec_inspect(req: Request, conn: Conn) -> Reply:
            eid = req.path.split("/")[2]
            ex = self.execs.get(eid)
            if ex is None:
                return jerror(404, f"No such exec instance: {eid}")
            return jreply({"ID": eid, "Running": False, "ExitCode": ex.get("exit", 0),
                           "ContainerID": ex["container"]})

        @r("POST", r"/exec/[^/]+/resize")
        def _exec_resize(req: Request, conn: Conn) -> Reply:
            return Reply(200, b"", {"Content-Length": "0"})

        # -- images --
        @r("GET", "/images/json")
        def _images(req: Request, conn: Conn) -> Reply:
            return jreply(sorted(self.images.values(), key=lambda i: -i["Created"]))

        @r("GET", r"/images/.+/json")
        def _image_inspect(req: Request, conn: Conn) -> Reply:
            name = req.path[len("/images/"):-len("/json")]
            img = self.find_image(name)
            if img is None:
                return jerror(404, f"No such image: {name}")
            return jreply({"Id": img["Id"], "RepoTags": img["RepoTags"], "Size": img["Size"],
                           "Config": {"Labels": img.get("Labels") or None}})

        @r("GET", r"/images/.+/history")
        def _history(req: Request, conn: Conn) -> Reply:
            name = req.path[len("/images/"):-len("/history")]
            img = self.find_image(name)
            if img is None:
                return jerror(404, f"No such image: {name}")
            now = int(time.time())
            return jreply([
                {"Id": img["Id"], "Created": now - 120, "CreatedBy":
                 '/bin/sh -c #(nop)  CMD ["sh"]', "Tags": img["RepoTags"], "Size": 0,
                 "Comment": ""},
                {"Id": "<missing>", "Created": now - 7200, "CreatedBy":
                 "/bin/sh -c #(nop) ADD file:8f2e1c02b8ab7b0d5f0ca2c6a1e5e1ab in / ",
                 "Tags": None, "Size": 4326768, "Comment": "imported"},
            ])

        @r("POST", r"/images/.+/tag")
        def _tag(req: Request, conn: Conn) -> Reply:
            name = req.path[len("/images/"):-len("/tag")]
            img = self.find_image(name)
            if img is None:
                return jerror(404, f"No such image: {name}")
            img["RepoTags"].append(f"{req.q('repo')}:{req.q('tag') or 'latest'}")
            return Reply(201, b"")

        @r("DELETE", r"/images/.+")
        def _rmi(req: Request, conn: Conn) -> Reply:
            name = req.path[len("/images/"):]
            img = self.find_image(name)
            if img is None:
                return jerror(404, f"No such image: {name}")
            self.images.pop(img["Id"])
            return jreply([{"Untagged": t} for t in img["RepoTags"]] + [{"Deleted": img["Id"]}])

        @r("POST", "/images/create")
        def _pull(req: Request, conn: Conn) -> Reply:
            if req.q("fromSrc"):
                self.imported.append(req.body)
                iid = self.add_image(req.q("repo") or "imported")
                return jstream([{"status": iid}])
            ref = f"{req.q('fromImage')}:{req.q('tag') or 'latest'}"
            if ref not in self.pullable:
                return jerror(404, f"pull access denied for {req.q('fromImage')}, repository does "
                              "not exist or may require 'docker login'")
            self.add_image(ref, self.pullable[ref])
            tag = req.q("tag") or "latest"
            short = ref.rsplit("/", 1)[-1]
            return jstream([
                {"status": f"Pulling from {req.q('fromImage').split('/', 1)[-1]}", "id": tag},
                {"status": "Pulling fs layer", "progressDetail": {}, "id": "ec562eabd705"},
                {"status": "Downloading", "progressDetail": {"current": 1000, "total": 4000},
                 "progress": "[====>    ]", "id": "ec562eabd705"},
                {"status": "Download complete", "progressDetail": {}, "id": "ec562eabd705"},
                {"status": "Pull complete", "progressDetail": {}, "id": "ec562eabd705"},
                {"status": "Digest: sha256:" + "d1" * 32},
                {"status": f"Status: Downloaded newer image for {short}"},
            ])

        @r("POST", r"/images/.+/push")
        def _push(req: Request, conn: Conn) -> Reply:
            name = req.path[len("/images/"):-len("/push")]
            return jstream([
                {"status": f"The push refers to repository [{name}]"},
                {"status": "Preparing", "progressDetail": {}, "id": "829ae087f05f"},
                {"status": "Pushing", "progressDetail": {"current": 68608, "total": 4326768},
                 "progress": "[>    ]  68.61kB/4.327MB", "id": "829ae087f05f"},
                {"status": "Pushed", "progressDetail": {}, "id": "829ae087f05f"},
                {"status": f"{req.q('tag')}: digest: sha256:{'2f' * 32} size: 528"},
                {"progressDetail": {}, "aux": {"Tag": req.q("tag"), "Digest": "sha256:" + "2f" * 32,
                                               "Size": 528}},
            ])

        @r("GET", "/images/get")
        def _save(req: Request, conn: Conn) -> Reply:
            return Reply(200, b"", {"Content-Type": "application/x-tar"},
                         chunks=[b"TARDATA:" + ",".join(req.query.get("names", [])).encode()])

        @r("POST", "/images/load")
        def _load(req: Request, conn: Conn) -> Reply:
            self.loaded.append(req.body)
            return jstream([{"stream": "Loaded image: loaded:latest\n"}])

        @r("POST", "/images/prune")
        def _iprune(req: Request, conn: Conn) -> Reply:
            return jreply({"ImagesDeleted": [{"Untagged": "x:1"},
                                             {"Deleted": "sha256:" + "9" * 64}],
                           "SpaceReclaimed": 4326768})

        @r("POST", "/commit")
        def _commit(req: Request, conn: Conn) -> Reply:
            iid = self.add_image(f"{req.q('repo')}:{req.q('tag')}" if req.q("repo") else "<none>")
            return jreply({"Id": iid}, 201)

        @r("POST", "/auth")
        def _auth(req: Request, conn: Conn) -> Reply:
            body = req.json()
            if self.auth_ok.get(body.get("username", "")) == body.get("password"):
                return jreply({"IdentityToken": "", "Status": "Login Succeeded"})
            return jerror(401, "login attempt to http://" + body.get("serveraddress", "")
                          + "/v2/ failed with status: 401 Unauthorized")

        @r("GET", r"/networks/.+")
        def _net(req: Request, conn: Conn) -> Reply:
            return jerror(404, f"network {req.path.split('/')[2]} not found")

        @r("GET", r"/volumes/.+")
        def _vol(req: Request, conn: Conn) -> Reply:
            return jerror(404, f"get {req.path.split('/')[2]}: no such volume")
