"""asyncio clients for the launcher, for shims and for exec shims (the daemon's side of
launcher.py, shim.py / native/shim.c, execshim.py).

``Launcher`` starts ``python -m dockyard.runtime.launcher`` once and multiplexes requests
over one socketpair. ``ShimClient`` speaks the JSON-line protocol of docs/architecture.md
§3 to one container shim's socket. ``ExecSession`` is one exec shim's control channel
and stream.
"""

from __future__ import annotations

import array
import asyncio
import collections
import itertools
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Protocol

from dockyard import errors
from dockyard.runtime.shim import recv_fds
from dockyard.util.unixsock import connect_unix

__all__ = ["ExecSession", "Launcher", "ShimClient", "ShimGone", "ShimStream", "raise_for",
           "shim_binary"]


class ShimGone(errors.Unavailable):
    """The shim's socket is gone: the shim has exited (or never started)."""


_KINDS: dict[str, type[errors.DockyardError]] = {
    "NotFound": errors.NotFound,
    "InvalidArgument": errors.InvalidArgument,
    "Conflict": errors.Conflict,
    "OCIRuntimeError": errors.OCIRuntimeError,
    "Unavailable": errors.Unavailable,
}


def raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    """Return a successful reply; raise the error class a failed one names."""
    if reply.get("ok"):
        return reply
    cls = _KINDS.get(str(reply.get("kind")), errors.Internal)
    raise cls(str(reply.get("error", "shim error")))


class _Caller(Protocol):
    async def call(self, op: str, **args: Any) -> dict[str, Any]: ...


class ShimStream:
    """A stream to a shim: the container's (or an exec's) output in, stdin out.
    ``detach()`` makes the coming hang-up a detach (stdin stays open, the process runs on)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: int,
                 shim: _Caller, pid: int = 0) -> None:
        self.reader = reader
        self.writer = writer
        self.token = token
        self.shim = shim
        self.pid = pid

    async def detach(self) -> None:
        try:
            await self.shim.call("detach", token=self.token)
        except errors.DockyardError:
            pass


def shim_binary(choice: str | None = None) -> str | None:
    """The native shim to use, or None for the Python one. ``choice`` ("native" |
    "python"; default ``$DOCKYARD_SHIM``, else native when built): native needs
    ``dockyard-shim`` beside the interpreter (``make`` builds it)."""
    choice = choice or os.environ.get("DOCKYARD_SHIM") or ""
    path = os.path.join(os.path.dirname(sys.executable), "dockyard-shim")
    built = os.access(path, os.X_OK)
    if choice == "python":
        return None
    if choice == "native" and not built:
        raise errors.FailedPrecondition(f"the native shim is not built: {path} (make venv)")
    if choice not in ("", "native"):
        raise errors.InvalidArgument(f"unknown shim {choice!r}: native or python")
    return path if built else None


class Launcher:
    """The daemon's handle on its launcher process (runtime/launcher.py).

    It keeps one spare of each kind (a forked shim, a forked exec shim, waiting for a job)
    and hands a start or an exec to it directly once the spare said it is ready (spares
    prepare at the lowest priority), then asks the launcher for the next one; with no
    spare ready it asks the launcher to fork for the request. Requests are JSON
    lines, and fds travel both ways (SCM_RIGHTS), so the socket is driven by hand
    (``sendmsg``/``recvmsg``) rather than through an asyncio transport."""

    KINDS = ("spawn", "exec")

    def __init__(self, shim: str | None = None, cgroup_parent: str | None = None,
                 staging: str | None = None) -> None:
        self.shim_binary = shim_binary(shim)      # None: shims in Python
        self.cgroup_parent = cgroup_parent        # where spare inits wait (see launcher)
        self.staging = staging                    # where they stage /proc, /dev, /sys
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._inbuf = bytearray()
        self._fdq: collections.deque[int] = collections.deque()  # fds received, not yet taken
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._send_lock = asyncio.Lock()
        self._spares: dict[str, socket.socket | None] = dict.fromkeys(self.KINDS)
        self._ready: set[str] = set()             # kinds whose spare said "ready"
        self._asked: set[str] = set()             # spares asked for, not yet received
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.set_inheritable(True)
        extra = ["--shim", self.shim_binary] if self.shim_binary else []
        if self.cgroup_parent:
            extra += ["--cgroup-parent", self.cgroup_parent]
        if self.staging:
            extra += ["--staging", self.staging]
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dockyard.runtime.launcher", str(theirs.fileno()), *extra,
            pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
        )
        theirs.close()
        ours.setblocking(False)
        self._sock = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable)
        for kind in self.KINDS:
            self._want_spare(kind)

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data, fds = recv_fds(self._sock, 65536, 8)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        self._fdq.extend(fds)
        if not data:
            self._gone()
            return
        self._inbuf += data
        while (nl := self._inbuf.find(b"\n")) >= 0:
            msg = json.loads(bytes(self._inbuf[:nl]))
            del self._inbuf[:nl + 1]
            kind = msg.get("spare")
            if kind in self.KINDS and self._fdq:
                self._asked.discard(kind)
                self._drop_spare(kind)
                spare = self._spares[kind] = socket.socket(fileno=self._fdq.popleft())
                spare.setblocking(False)
                asyncio.get_running_loop().add_reader(spare.fileno(), self._on_spare, kind)
                continue
            fut = self._waiting.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def _on_spare(self, kind: str) -> None:
        """The spare of ``kind`` said ``ready`` (or died preparing: it is dropped, and the
        next request of its kind asks for another)."""
        spare = self._spares[kind]
        if spare is None:
            return
        try:
            data = spare.recv(16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data == b"ready":
            asyncio.get_running_loop().remove_reader(spare.fileno())
            self._ready.add(kind)
        else:
            self._drop_spare(kind)

    def _drop_spare(self, kind: str) -> None:
        spare, self._spares[kind] = self._spares[kind], None
        self._ready.discard(kind)
        if spare is not None:
            asyncio.get_running_loop().remove_reader(spare.fileno())  # (False: not there)
            spare.close()  # it reads EOF and exits

    def _gone(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(errors.Unavailable("the launcher exited"))
        self._waiting.clear()
        for kind in self.KINDS:
            self._drop_spare(kind)
        self._asked.clear()
        while self._fdq:
            os.close(self._fdq.popleft())

    async def _send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        if self._sock is None:
            raise errors.Unavailable("the launcher is not running")
        data = json.dumps(msg).encode() + b"\n"
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        loop = asyncio.get_running_loop()
        async with self._send_lock:  # one request's bytes never interleave with another's
            while data:
                sock = self._sock
                if sock is None:
                    raise errors.Unavailable("the launcher exited")
                try:
                    n = sock.sendmsg([data], anc)
                except BlockingIOError:
                    await _writable(loop, sock)
                    continue
                except OSError as exc:
                    raise errors.Unavailable(f"the launcher exited: {exc}") from exc
                data, anc = data[n:], []

    def _want_spare(self, kind: str) -> None:
        """Ask the launcher for a spare of ``kind`` unless one is there or on its way."""
        if self._spares[kind] is not None or kind in self._asked or self._sock is None:
            return
        self._asked.add(kind)
        task = asyncio.get_running_loop().create_task(self._send({"op": "spare", "kind": kind}))
        self._tasks.add(task)
        task.add_done_callback(self._spare_asked)

    def _spare_asked(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._asked.clear()  # the launcher is gone; nothing will come

    def _give(self, kind: str, job: dict[str, Any], fds: list[int]) -> bool:
        """Hand ``job`` to the spare of ``kind`` if it is ready (False: the caller asks the
        launcher to fork for it); then ask for the next spare."""
        if kind not in self._ready:
            self._want_spare(kind)
            return False
        spare, self._spares[kind] = self._spares[kind], None
        self._ready.discard(kind)
        if spare is None:
            self._want_spare(kind)
            return False
        try:
            socket.send_fds(spare, [json.dumps(job).encode()], fds)
            return True
        except OSError:  # it died: the launcher forks for this request instead
            return False
        finally:
            spare.close()
            self._want_spare(kind)

    async def spawn(self, config: dict[str, Any]) -> dict[str, Any]:
        """Spawn a shim (``config``: a ``shim.ShimConfig`` as a dict); return its result
        (``pid``, ``shim_pid``) or raise its error. A ``fresh`` config never goes to a
        spare."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            given = not config.get("fresh") and self._give("spawn", config, [theirs.fileno()])
        finally:
            theirs.close()
        if not given:
            ours.close()
            return await self._request({"op": "spawn", "config": config})
        line = b""
        try:  # one line, then the shim closes its end: no stream machinery needed
            ours.setblocking(False)
            loop = asyncio.get_running_loop()
            while not line.endswith(b"\n"):
                chunk = await loop.sock_recv(ours, 65536)
                if not chunk:
                    break
                line += chunk
        finally:
            ours.close()
        if not line.strip():
            raise errors.Internal("shim exited before reporting")
        return raise_for(json.loads(line.split(b"\n", 1)[0]))

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await self._send({"id": rid, **msg})
        except BaseException:
            self._waiting.pop(rid, None)
            raise
        return raise_for(await fut)

    async def exec(self, config: dict[str, Any], *, stream: bool) -> "ExecSession":
        """Start an exec shim (``execshim.ExecConfig`` as ``config``); return its session
        once the process runs, or raise its error (``OCIRuntimeError`` when the process
        could not be started). ``stream``: give it a stream (not for a detached exec)."""
        ctl, ctl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        mine = [ctl]
        theirs = [ctl_theirs]
        if stream:
            st, st_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            mine.append(st)
            theirs.append(st_theirs)
        try:
            if not self._give("exec", {"config": config}, [s.fileno() for s in theirs]):
                await self._send({"op": "exec", "config": config, "nfds": len(theirs)},
                                 [s.fileno() for s in theirs])
        except BaseException:
            for s in mine:
                s.close()
            raise
        finally:
            for s in theirs:
                s.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ctl)
        except BaseException:
            for s in mine:
                s.close()
            raise
        session = ExecSession(reader, writer, str(config.get("id", "")))
        try:
            await session._started()
            if stream:
                r, w = await asyncio.open_unix_connection(sock=mine[1], limit=1 << 20)
                session.stream = ShimStream(r, w, 0, session, pid=session.pid)
        except BaseException:
            session.close()
            if stream and session.stream is None:
                mine[1].close()
            raise
        return session

    async def close(self) -> None:
        if self._sock is not None:
            self._gone()
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except asyncio.TimeoutError:
                self._proc.kill()
                await self._proc.wait()


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_writer(sock.fileno())


class ExecSession:
    """The daemon's side of one exec shim (runtime/execshim.py): its control lines, and
    the session's ``stream`` (None for a detached exec).

    ``call`` sends a request and awaits its answer (they come in order); ``wait`` awaits
    the exit code, reported once the process exited and its output was drained."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 exec_id: str) -> None:
        self._reader = reader
        self._writer = writer
        self.exec_id = exec_id
        self.pid = 0
        self.stream: ShimStream | None = None
        self._replies: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    async def _started(self) -> None:
        """The shim's first line: the process runs (``pid``), or the error it raised."""
        try:
            line = await self._reader.readline()
        except ConnectionError:
            line = b""
        if not line:
            raise ShimGone(f"the exec shim of {self.exec_id[:12]} exited before reporting")
        self.pid = int(raise_for(json.loads(line)).get("pid") or 0)
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                if msg.get("event") == "exit":
                    if not self._exit.done():
                        self._exit.set_result(int(msg.get("exit_code", 137)))
                elif self._replies:
                    fut = self._replies.popleft()
                    if not fut.done():
                        fut.set_result(msg)
        except (ConnectionError, ValueError):
            pass
        finally:
            gone = ShimGone(f"the exec shim of {self.exec_id[:12]} is gone")
            if not self._exit.done():
                self._exit.set_exception(gone)
                self._exit.exception()  # retrieved: nobody may be waiting
            while self._replies:
                fut = self._replies.popleft()
                if not fut.done():
                    fut.set_exception(gone)
            self._writer.close()

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """A request (``resize``, ``detach``); raises the shim's error class or ShimGone."""
        if self._task is None or self._task.done():
            raise ShimGone(f"the exec shim of {self.exec_id[:12]} is gone")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies.append(fut)
        self._writer.write(json.dumps({"op": op, **args}).encode() + b"\n")
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise ShimGone(f"the exec shim of {self.exec_id[:12]} is gone") from exc
        return raise_for(await fut)

    async def wait(self) -> int:
        """The exit code (ShimGone if the exec shim went away without one)."""
        return await asyncio.shield(self._exit)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._writer.close()


class ShimClient:
    """Talks to the shim whose state dir is ``state_dir``."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.sock_path = str(self.state_dir / "shim.sock")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            sock = connect_unix(self.sock_path, blocking=False)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ShimGone(f"shim of {self.state_dir.name} is gone") from exc
        return await asyncio.open_unix_connection(sock=sock, limit=1 << 20)

    async def _open(self, req: dict[str, Any]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
        reader, writer = await self._connect()
        writer.write(json.dumps(req).encode() + b"\n")
        try:
            await writer.drain()
            line = await reader.readline()
        except ConnectionError as exc:
            writer.close()
            raise ShimGone(f"shim of {self.state_dir.name} hung up") from exc
        if not line:
            writer.close()
            raise ShimGone(f"shim of {self.state_dir.name} hung up")
        return reader, writer, json.loads(line)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """A one-shot request; raises the shim's error class or ShimGone."""
        _, writer, reply = await self._open({"op": op, **args})
        writer.close()
        return raise_for(reply)

    async def open_wait(self) -> "asyncio.Task[dict[str, Any]]":
        """Register a wait with the shim now; the task ends with the exit state.

        Registering before ``start`` guarantees the exit cannot be missed: the shim does not
        wind down while a waiter is connected."""
        reader, writer = await self._connect()
        writer.write(b'{"op":"wait"}\n')
        await writer.drain()

        async def reply() -> dict[str, Any]:
            try:
                line = await reader.readline()
            finally:
                writer.close()
            if not line:
                raise ShimGone(f"shim of {self.state_dir.name} hung up")
            return raise_for(json.loads(line))

        return asyncio.create_task(reply())

    async def attach(self, stdin: bool, stdout: bool, stderr: bool) -> "ShimStream":
        """An attach stream: read output frames (or raw tty bytes), write stdin bytes."""
        reader, writer, reply = await self._open(
            {"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})
        try:
            raise_for(reply)
        except errors.DockyardError:
            writer.close()
            raise
        return ShimStream(reader, writer, int(reply.get("token", 0)), self)

    def status_file(self) -> dict[str, Any] | None:
        """The last status the shim recorded, or None if it never wrote one."""
        try:
            return dict(json.loads((self.state_dir / "status.json").read_text()))
        except (OSError, ValueError):
            return None
