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
    "DEFAULT_DETACH_KEYS",
    "MULTIPLEXED",
    "RAW",
    "Hijacked",
    "frame",
    "hijack",
    "parse_detach_keys",
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

    def __init__(
        self,
        reader: asyncio.StreamReader | None,
        writer: asyncio.StreamWriter | None,
        response: web.StreamResponse,
    ) -> None:
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
    resp = web.StreamResponse(
        status=101,
        reason="UPGRADED",
        headers={"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"},
    )
    resp.force_close()
    await resp.prepare(request)
    writer = asyncio.StreamWriter(transport, proto, reader, loop)
    return Hijacked(reader, writer, resp)


DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


def parse_detach_keys(spec: str) -> bytes:
    """Docker's detach-key syntax: comma-separated ``ctrl-<a-z@[\\]^_>`` or single chars."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
        elif (
            k.lower().startswith("ctrl-")
            and len(k) == 6
            and (k[5].lower().isalpha() or k[5] in "@[\\]^_")
        ):
            out.append(ord(k[5].upper()) & 0x1F)
        else:
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class _Escape:
    """Finds the detach sequence in a byte stream that may split it across reads; bytes
    of a partial match are held back, and given back if the match breaks (moby's
    escapeProxy semantics)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pos = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, whether the full sequence was seen)."""
        keys = self.keys
        if not self.pos and keys[0] not in data:
            return data, False
        out = bytearray()
        for b in data:
            if b == keys[self.pos]:
                self.pos += 1
                if self.pos == len(keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            if self.pos:
                out += keys[: self.pos]
                self.pos = 0
                if b == keys[0]:
                    self.pos = 1
                    continue
            out.append(b)
        return bytes(out), False


async def relay(
    client: Hijacked, stream: Any, forward_stdin: bool, detach_keys: bytes | None = None
) -> bool:
    """Copy a process's output (``stream.reader``) to the client, and the client's bytes to
    its stdin (``stream.writer``) when ``forward_stdin``. The client's half-close is passed
    on as a half-close. With ``detach_keys`` (TTY sessions), the sequence from the client
    detaches: the session ends, the process runs on. Returns True on a detach; otherwise
    the session ends when the output ends or the client hangs up."""
    dst: asyncio.StreamWriter = stream.writer
    detached = asyncio.Event()

    async def upstream() -> None:
        if client.reader is None:
            return
        esc = _Escape(detach_keys) if detach_keys else None
        while True:
            data = await client.reader.read(65536)
            if not data:
                break
            if esc is not None:
                data, hit = esc.feed(data)
                if hit:
                    if forward_stdin and data:
                        dst.write(data)
                        await dst.drain()
                    await stream.detach()
                    detached.set()
                    return
            if forward_stdin and data:
                dst.write(data)
                await dst.drain()
        if forward_stdin and dst.can_write_eof():
            dst.write_eof()
        # keep waiting: the client may still be there to read the output

    async def downstream() -> None:
        while True:
            data = await stream.reader.read(65536)
            if not data:
                return
            await client.write(data)

    up = asyncio.create_task(upstream())
    down = asyncio.create_task(downstream())
    stop = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait([down, stop], return_when=asyncio.FIRST_COMPLETED)
        if down.done() and not down.cancelled():
            down.exception()  # a broken client connection just ends the session
    finally:
        for t in (up, down, stop):
            t.cancel()
        dst.close()
        await asyncio.gather(up, down, stop, return_exceptions=True)
    return detached.is_set()
