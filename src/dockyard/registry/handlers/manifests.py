"""``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<tag-or-digest>``.

``GET`` returns the exact bytes pushed, with ``Content-Type`` = the manifest's media type.
``PUT`` takes at most 4 MiB (413 beyond), checks that what the manifest names is in the
repository (``MANIFEST_BLOB_UNKNOWN``), and also tags it with each ``?tag=``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import errcodes
from ..errcodes import RegistryError
from ..storage.repo import MAX_MANIFEST_SIZE
from .base import Ctx


async def get(ctx: Ctx) -> web.Response:
    m = ctx.repo.get_manifest(ctx.params["reference"])
    return web.Response(body=m.data, headers={
        "Content-Type": m.media_type,
        "Docker-Content-Digest": m.digest,
        "ETag": f'"{m.digest}"',
    })


async def _read_limited(ctx: Ctx, limit: int) -> bytes:
    length = ctx.request.content_length
    too_large = RegistryError(errcodes.MANIFEST_TOO_LARGE, {"limit": limit})
    if length is not None and length > limit:
        raise too_large
    buf = bytearray()
    async for chunk in ctx.request.content.iter_any():
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


async def put(ctx: Ctx) -> web.Response:
    reference = ctx.params["reference"]
    data = await _read_limited(ctx, MAX_MANIFEST_SIZE)
    tags = ctx.request.query.getall("tag", [])
    m, info = await asyncio.to_thread(
        ctx.repo.put_manifest, reference, data, ctx.request.headers.get("Content-Type"), tags)
    headers = {
        "Location": f"/v2/{ctx.name}/manifests/{m.digest}",
        "Docker-Content-Digest": m.digest,
    }
    if info.subject is not None:
        headers["OCI-Subject"] = info.subject.digest
    resp = web.Response(status=201, headers=headers)
    for tag in dict.fromkeys(tags):
        resp.headers.add("OCI-Tag", tag)
    return resp


async def delete(ctx: Ctx) -> web.Response:
    await asyncio.to_thread(ctx.repo.delete_manifest, ctx.params["reference"])
    return web.Response(status=202)
