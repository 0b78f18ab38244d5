"""Stream formats of the Engine API: the stdout/stderr multiplex and the JSON message stream.

Multiplexed stream (attach, exec start and logs when the container has no TTY): frames of
an 8-byte header ``[stream, 0, 0, 0, size (big-endian u32)]`` and ``size`` bytes of payload.
Stream 0 is stdin, 1 stdout, 2 stderr and 3 "systemerr": the daemon's error text, which
the client turns into an error (``SystemErr``).

JSON message stream (pull, push, import, load, build): JSON objects one after another,
usually separated by ``\\r\\n``; objects may arrive split across reads.
"""

from __future__ import annotations

from dockyard.errors import Internal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

__all__ = [
    "STDERR",
    "STDIN",
    "STDOUT",
    "SYSTEMERR",
    "Demuxer",
    "SystemErr",
    "frame",
    "iter_json_messages",
    "stdcopy",
]

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3


class SystemErr(Internal):
    """The daemon reported an error inside a multiplexed stream (stream 3)."""


def frame(stream: int, payload: bytes) -> bytes:
    """Encode one multiplexed frame (the daemon's side; used by tests and fakes)."""
    n = len(payload)
    return bytes((stream, 0, 0, 0)) + n.to_bytes(4, "big") + payload


class Demuxer:
    """Incremental decoder: ``feed`` bytes as they arrive, get complete ``(stream, payload)``
    pieces back. A frame's payload is handed out as soon as any of it is there, so a large
    frame streams through without being buffered whole."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stream = -1
        self._left = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        buf = self._buf
        while True:
            if self._left == 0:
                if len(buf) < 8:
                    break
                self._stream = buf[0]
                self._left = int.from_bytes(buf[4:8], "big")
                del buf[:8]
                if self._left == 0:
                    continue
            if not buf:
                break
            take = min(self._left, len(buf))
            out.append((self._stream, bytes(buf[:take])))
            del buf[:take]
            self._left -= take
        return out

    @property
    def pending(self) -> bool:
        """True when the stream ended in the middle of a frame."""
        return bool(self._buf) or self._left > 0


def stdcopy(
    read: Callable[[], bytes],
    stdout: Callable[[bytes], object] | None,
    stderr: Callable[[bytes], object] | None,
) -> int:
    """Copy a multiplexed stream to two writers until ``read()`` returns ``b""``.

    Returns the number of payload bytes written; raises ``SystemErr`` for stream 3.
    Payloads for a missing writer are dropped (as the Go client does with a nil writer).
    """
    demux = Demuxer()
    written = 0
    syserr = bytearray()
    while True:
        data = read()
        if not data:
            break
        for stream, payload in demux.feed(data):
            if stream == STDOUT or stream == STDIN:
                if stdout is not None:
                    stdout(payload)
                    written += len(payload)
            elif stream == STDERR:
                if stderr is not None:
                    stderr(payload)
                    written += len(payload)
            elif stream == SYSTEMERR:
                syserr += payload
            else:
                raise Internal(f"unrecognized input header: {stream}")
    if syserr:
        raise SystemErr(f"error from daemon in stream: {syserr.decode('utf-8', 'replace')}")
    return written


def iter_json_messages(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Decode a JSON message stream arriving in arbitrary pieces."""
    import json

    decoder = json.JSONDecoder()
    buf = ""
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        try:
            text = data.decode("utf-8")
            pending = b""
        except UnicodeDecodeError as exc:  # a multi-byte character split across reads
            text = data[: exc.start].decode("utf-8")
            pending = data[exc.start:]
        buf += text
        while True:
            stripped = buf.lstrip()
            if not stripped:
                buf = ""
                break
            try:
                obj, end = decoder.raw_decode(stripped)
            except ValueError:
                buf = stripped
                break  # incomplete: wait for more
            buf = stripped[end:]
            if isinstance(obj, dict):
                yield obj
    rest = buf.strip()
    if rest:
        obj = json.loads(rest)  # raises on a truncated or malformed tail
        if isinstance(obj, dict):
            yield obj
