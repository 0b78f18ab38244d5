"""Blob uploads: ``POST /v2/<name>/blobs/uploads/`` and ``GET``/``PATCH``/``PUT``/``DELETE``
on the session's ``Location``.

* ``POST ?digest=D`` with the blob as body: monolithic, 201.
* ``POST ?mount=D&from=R``: 201 if ``R`` may be read and holds ``D``, else a new session (202).
* ``POST``: a new session (202). Then ``PATCH`` chunks: with ``Content-Range: <start>-<end>``
  the start must be the current size (else 416); without it (docker's single streamed PATCH)
  the body is appended. ``PUT ?digest=D`` with an optional last chunk verifies and commits.

A body cut short (the client hung up, or sent fewer bytes than its ``Content-Range``) keeps
what arrived: ``GET`` on the session tells how much, and the client may go on from there.
A digest that does not match cancels the session.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from .. import errcodes
from ..auth import Access
from ..errcodes import RegistryError
from ..names import check_digest, is_name
from .base import Ctx, receive, upload_headers

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


def _blob_created(ctx: Ctx, digest: str) -> web.Response:
    return web.Response(status=201, headers={
        "Location": f"/v2/{ctx.name}/blobs/{digest}",
        "Docker-Content-Digest": digest,
    })


async def start(ctx: Ctx) -> web.Response:
    q = ctx.request.query
    repo = ctx.repo
    if "mount" in q:
        digest = check_digest(q["mount"])
        src = q.get("from", "")
        if is_name(src) and ctx.permits(Access("repository", src, frozenset({"pull"}))):
            size = await asyncio.to_thread(repo.mount_blob, digest, ctx.registry.repository(src))
            if size is not None:
                return _blob_created(ctx, digest)
    elif "digest" in q:
        digest = check_digest(q["digest"])
        uuid = await asyncio.to_thread(repo.start_upload)
        try:
            await _append(ctx, uuid)
            await asyncio.to_thread(repo.commit_upload, uuid, digest)
        except BaseException:
            await asyncio.to_thread(_cancel_quietly, ctx, uuid)
            raise
        return _blob_created(ctx, digest)
    algorithm = q.get("digest-algorithm", "sha256")
    if algorithm not in ("sha256", "sha512"):
        raise RegistryError(errcodes.DIGEST_INVALID, {"digest-algorithm": algorithm},
                            message="unsupported digest algorithm")
    uuid = await asyncio.to_thread(repo.start_upload)
    return web.Response(status=202, headers=upload_headers(ctx, uuid, 0))


def _cancel_quietly(ctx: Ctx, uuid: str) -> None:
    try:
        ctx.repo.cancel_upload(uuid)
    except RegistryError:
        pass


def _content_range(ctx: Ctx) -> tuple[int, int] | None:
    cr = ctx.request.headers.get("Content-Range")
    if cr is None:
        return None
    m = _CONTENT_RANGE.fullmatch(cr.strip())
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise RegistryError(errcodes.RANGE_INVALID, {"Content-Range": cr})
    start, end = int(m.group(1)), int(m.group(2))
    length = ctx.request.content_length
    if length is not None and length != end - start + 1:
        raise RegistryError(errcodes.SIZE_INVALID, {"Content-Range": cr, "Content-Length": length})
    return start, end


async def _append(ctx: Ctx, uuid: str) -> int:
    """Append the request body to upload ``uuid`` (checking ``Content-Range``); the new size."""
    rng = _content_range(ctx)
    w = await asyncio.to_thread(ctx.repo.open_upload, uuid)
    try:
        if rng is not None and rng[0] != w.size:
            raise RegistryError(errcodes.RANGE_INVALID,
                                {"Content-Range": ctx.request.headers["Content-Range"],
                                 "size": w.size},
                                headers=upload_headers(ctx, uuid, w.size))
        got = await receive(ctx.request.content, w)
        if rng is not None and got != rng[1] - rng[0] + 1:
            raise RegistryError(errcodes.SIZE_INVALID, {"expected": rng[1] - rng[0] + 1,
                                                        "received": got},
                                headers=upload_headers(ctx, uuid, w.size))
        return w.size
    finally:
        w.close()  # inline: cheap, and must happen even if the handler is being cancelled


async def status(ctx: Ctx) -> web.Response:
    uuid = ctx.params["uuid"]
    size = ctx.repo.upload_size(uuid)
    return web.Response(status=204, headers=upload_headers(ctx, uuid, size))


async def patch(ctx: Ctx) -> web.Response:
    uuid = ctx.params["uuid"]
    size = await _append(ctx, uuid)
    return web.Response(status=202, headers=upload_headers(ctx, uuid, size))


async def put(ctx: Ctx) -> web.Response:
    uuid = ctx.params["uuid"]
    digest = ctx.request.query.get("digest")
    if digest is None:
        raise RegistryError(errcodes.DIGEST_INVALID, message="digest parameter missing")
    check_digest(digest)
    if ctx.request.can_read_body:
        await _append(ctx, uuid)
    else:
        ctx.repo.upload_size(uuid)
    await asyncio.to_thread(ctx.repo.commit_upload, uuid, digest)
    return _blob_created(ctx, digest)


async def cancel(ctx: Ctx) -> web.Response:
    uuid = ctx.params["uuid"]
    await asyncio.to_thread(ctx.repo.cancel_upload, uuid)
    return web.Response(status=204)
