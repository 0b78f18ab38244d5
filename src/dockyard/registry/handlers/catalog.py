"""``GET /v2/_catalog[?n=&last=]``: every repository, paginated with ``Link`` (docker's API)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .base import Ctx, paginate


async def get(ctx: Ctx) -> web.Response:
    repos = await asyncio.to_thread(ctx.registry.catalog)
    return paginate(ctx.request, repos, "/v2/_catalog", "repositories", {})
