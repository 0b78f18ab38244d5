"""``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>``.

A blob on local disk is sent with ``FileResponse`` (``sendfile(2)``, ``Range`` → 206); other
drivers stream ``reader(offset)``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import errcodes
from ..errcodes import RegistryError
from ..names import check_digest
from .base import Ctx

STREAM_CHUNK = 1024 * 1024


def _headers(digest: str) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Cache-Control": "max-age=31536000",
    }


async def get(ctx: Ctx) -> web.StreamResponse:
    digest = check_digest(ctx.params["digest"])
    repo = ctx.repo
    size = repo.blob_size(digest)
    headers = _headers(digest)
    local = repo.blob_local_path(digest)
    if local is not None:
        return web.FileResponse(local, chunk_size=STREAM_CHUNK, headers=headers)
    return await _stream(ctx, digest, size, headers)


async def _stream(ctx: Ctx, digest: str, size: int, headers: dict[str, str]) -> web.StreamResponse:
    request = ctx.request
    status, start, end = 200, 0, size
    if "Range" in request.headers:
        try:
            rng = request.http_range
        except ValueError:
            rng = None
        if rng is None or (rng.start is not None and rng.start >= size) or (
                rng.start is None and rng.stop is None):
            raise RegistryError(errcodes.RANGE_INVALID, {"range": request.headers["Range"]},
                                headers={"Content-Range": f"bytes */{size}"})
        if rng.start is not None and rng.start < 0:  # suffix: bytes=-N
            start, end = max(size + rng.start, 0), size
        else:
            start = rng.start or 0
            end = min(rng.stop if rng.stop is not None else size, size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Accept-Ranges"] = "bytes"
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start
    await resp.prepare(request)
    if request.method == "HEAD" or end == start:
        await resp.write_eof()
        return resp
    reader = await asyncio.to_thread(ctx.repo.open_blob, digest, start)
    try:
        left = end - start
        while left:
            chunk = await asyncio.to_thread(reader.read, min(STREAM_CHUNK, left))
            if not chunk:
                break
            await resp.write(chunk)
            left -= len(chunk)
    finally:
        reader.close()
    await resp.write_eof()
    return resp


async def delete(ctx: Ctx) -> web.Response:
    digest = check_digest(ctx.params["digest"])
    ctx.repo.delete_blob(digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
