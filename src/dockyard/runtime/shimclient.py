"""asyncio clients for the launcher and for shims (the daemon's side of launcher.py/shim.py).

``Launcher`` starts ``python -m dockyard.runtime.launcher`` once and multiplexes spawn
requests over one socketpair. ``ShimClient`` speaks the JSON-line protocol of
docs/architecture.md §3 to one shim's socket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.util.unixsock import connect_unix

__all__ = ["Launcher", "ShimClient", "ShimGone", "ShimStream", "raise_for"]


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


class ShimStream:
    """A stream to a shim: the container's (or an exec's) output in, stdin out.
    ``detach()`` makes the coming hang-up a detach (stdin stays open, the process runs on)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: int,
                 shim: "ShimClient", pid: int = 0) -> None:
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


class Launcher:
    """The daemon's handle on its launcher process."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._read_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs.set_inheritable(True)
        env = dict(os.environ)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dockyard.runtime.launcher", str(theirs.fileno()),
            pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL, env=env,
        )
        theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._read_task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                fut = self._waiting.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(errors.Unavailable("the launcher exited"))
            self._waiting.clear()

    async def spawn(self, config: dict[str, Any]) -> dict[str, Any]:
        """Spawn a shim; return its result (``pid``, ``shim_pid``) or raise its error."""
        if self._writer is None or self._read_task is None or self._read_task.done():
            raise errors.Unavailable("the launcher is not running")
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._writer.write(json.dumps({"id": rid, "op": "spawn", "config": config}).encode() + b"\n")
        await self._writer.drain()
        return raise_for(await fut)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except asyncio.TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._read_task is not None:
            self._read_task.cancel()


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

    async def _open(self, req: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
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

    async def exec(self, exec_id: str, process: dict[str, Any], *, user: str | None, tty: bool,
                   stdin: bool, stdout: bool, stderr: bool, detach: bool) -> "ShimStream | None":
        """Start an exec session; its stream (None when detached). Raises the shim's error
        (``OCIRuntimeError`` when the process could not be started)."""
        reader, writer, reply = await self._open({
            "op": "exec", "id": exec_id, "process": process, "user": user, "tty": tty,
            "stdin": stdin, "stdout": stdout, "stderr": stderr, "detach": detach})
        try:
            raise_for(reply)
        except errors.DockyardError:
            writer.close()
            raise
        if detach:
            writer.close()
            return None
        return ShimStream(reader, writer, int(reply.get("token", 0)), self, pid=int(reply["pid"]))

    async def open_exec_wait(self, exec_id: str) -> "asyncio.Task[dict[str, Any]]":
        """Register for an exec's exit now; the task ends with ``{"exit_code": N}``."""
        reader, writer = await self._connect()
        writer.write(json.dumps({"op": "exec_wait", "id": exec_id}).encode() + b"\n")
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

    def status_file(self) -> dict[str, Any] | None:
        """The last status the shim recorded, or None if it never wrote one."""
        try:
            return dict(json.loads((self.state_dir / "status.json").read_text()))
        except (OSError, ValueError):
            return None
