"""What every handler gets (``Ctx``) and the helpers they share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import StreamReader, web

from .. import errcodes
from ..auth import Access, Identity
from ..errcodes import RegistryError
from ..storage.repo import Registry, Repository, UploadWriter

__all__ = ["Ctx", "Handler", "paginate", "receive", "upload_headers"]

#: bytes gathered from the socket before one write (+ hash) in a worker thread
WRITE_BATCH = 4 * 1024 * 1024


@dataclass
class Ctx:
    request: web.Request
    registry: Registry
    identity: Identity
    name: str  # the repository; "" for _catalog
    params: dict[str, str]

    @property
    def repo(self) -> Repository:
        return self.registry.repository(self.name)

    def permits(self, access: Access) -> bool:
        return self.identity.permits(access)


Handler = Callable[[Ctx], Any]


def upload_headers(ctx: Ctx, uuid: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{ctx.name}/blobs/uploads/{uuid}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": uuid,
    }


async def receive(content: StreamReader, w: UploadWriter) -> int:
    """Append the request body to the upload; the number of bytes received.

    Bytes are gathered into ``WRITE_BATCH`` buffers and written (and hashed) in a worker
    thread while the next buffer fills. If the client goes away, what arrived is kept (the
    upload's ``Range`` says how much) and the error propagates.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[int] | None = None
    buf = bytearray()
    total = 0
    try:
        async for chunk in content.iter_any():
            buf += chunk
            total += len(chunk)
            if len(buf) >= WRITE_BATCH:
                if pending is not None:
                    await pending
                data, buf = buf, bytearray()
                pending = loop.run_in_executor(None, w.write, data)
    finally:
        if pending is not None:
            await pending
        if buf:
            await loop.run_in_executor(None, w.write, buf)
    return total


def paginate(request: web.Request, items: list[str], path: str, key: str,
             extra: dict[str, Any]) -> web.Response:
    """``n``/``last`` pagination with a ``Link: <...>; rel="next"`` header when more remain."""
    q = request.query
    last = q.get("last")
    if last is not None:
        items = [i for i in items if i > last]
    headers: dict[str, str] = {}
    if "n" in q:
        try:
            n = int(q["n"])
        except ValueError:
            n = -1
        if n < 0:
            raise RegistryError(errcodes.PAGINATION_NUMBER_INVALID, {"n": q["n"]})
        if len(items) > n:
            items = items[:n]
            if items:
                query = urlencode({"last": items[-1], "n": n})
                headers["Link"] = f'<{path}?{query}>; rel="next"'
    return web.json_response({**extra, key: items}, headers=headers)
