"""``GET /v2/<name>/tags/list[?n=&last=]``: tags in lexical order, paginated with ``Link``."""

from __future__ import annotations

from aiohttp import web

from .base import Ctx, paginate


async def list_tags(ctx: Ctx) -> web.Response:
    tags = ctx.repo.tags()
    return paginate(ctx.request, tags, f"/v2/{ctx.name}/tags/list", "tags", {"name": ctx.name})
