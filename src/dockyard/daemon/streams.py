"""Streams on the wire: the attach/exec connection hijack, docker's stdout/stderr
multiplexing, and the relay between a hijacked client and a container's shim.

The hijack follows docs/hijack-aiohttp.md (../shared/docs): aiohttp's request handler
closes the transport when the client half-closes (the docker CLI shuts down its write side
right after the 101 when there is no stdin), so the transport's protocol is swapped for a
``StreamReaderProtocol`` *before* the 101 goes out. Its ``eof_received`` keeps the socket
open for writing, and its ``connection_lost`` is passed on to aiohttp so its bookkeeping
ends too.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import web

__all__ = [
    "MULTIPLEXED",
    "RAW",
    "Hijacked",
    "frame",
    "hijack",
    "relay",
    "stream_content_type",
]

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}


def frame(stream: int, data: bytes) -> bytes:
    """One frame of docker's multiplexed stream: [stream, 0, 0, 0, size (big-endian u32)]."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def stream_content_type(tty: bool, api_version: str) -> str:
    try:
        major, minor = (int(x) for x in api_version.split(".")[:2])
    except ValueError:
        major, minor = 1, 47
    return RAW if tty or (major, minor) < (1, 42) else MULTIPLEXED


class _HijackProtocol(asyncio.StreamReaderProtocol):
    def __init__(self, reader: asyncio.StreamReader, orig: Any) -> None:
        super().__init__(reader)
        self._orig = orig

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        try:
            self._orig.connection_lost(exc)
        except Exception:  # aiohttp's own cleanup; nothing for us to do about it
            pass


class Hijacked:
    """A hijacked connection: ``reader`` (client → daemon bytes), ``write``/``close``."""

    def __init__(self, reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None,
                 response: web.StreamResponse) -> None:
        self.reader = reader
        self._writer = writer
        self.response = response

    @property
    def upgraded(self) -> bool:
        return self._writer is not None

    async def write(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(data)
            await self._writer.drain()
        else:
            await self.response.write(data)

    def closing(self) -> bool:
        if self._writer is not None:
            return self._writer.is_closing()
        return False

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        else:
            try:
                await self.response.write_eof()
            except (ConnectionError, RuntimeError):
                pass


async def hijack(request: web.Request, content_type: str) -> Hijacked:
    """Take over the connection: 101 UPGRADED when the client asked for an upgrade, else a
    plain 200 streaming response (old clients), as moby does."""
    upgrade = "upgrade" in request.headers.get("Connection", "").lower()
    if not upgrade:
        resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        await resp.prepare(request)
        return Hijacked(None, None, resp)
    transport = request.transport
    assert transport is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    proto = _HijackProtocol(reader, request.protocol)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    tail = getattr(request.protocol, "_message_tail", b"")
    if tail:
        reader.feed_data(tail)
    if not transport.is_reading():
        transport.resume_reading()
    resp = web.StreamResponse(status=101, reason="UPGRADED", headers={
        "Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    resp.force_close()
    await resp.prepare(request)
    writer = asyncio.StreamWriter(transport, proto, reader, loop)
    return Hijacked(reader, writer, resp)


async def relay(client: Hijacked, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                forward_stdin: bool) -> None:
    """Copy the container's output (``src``) to the client, and the client's bytes to the
    container's stdin (``dst``) when ``forward_stdin``. The client's half-close is passed on
    as a half-close; the session ends when the output ends or the client hangs up."""

    async def upstream() -> None:
        if client.reader is None:
            return
        while True:
            data = await client.reader.read(65536)
            if not data:
                break
            if forward_stdin:
                dst.write(data)
                await dst.drain()
        if forward_stdin and dst.can_write_eof():
            dst.write_eof()
        # keep waiting: the client may still be there to read the output

    async def downstream() -> None:
        while True:
            data = await src.read(65536)
            if not data:
                return
            await client.write(data)

    up = asyncio.create_task(upstream())
    down = asyncio.create_task(downstream())
    try:
        await down
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        up.cancel()
        dst.close()
        await asyncio.gather(up, return_exceptions=True)
