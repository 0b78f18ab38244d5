"""``GET /v2/<name>/referrers/<digest>[?artifactType=]``: an OCI index of the manifests whose
``subject`` is ``<digest>`` (empty, still 200, when there are none)."""

from __future__ import annotations

from aiohttp import web

from dockyard.oci import mediatypes as mt

from ..names import check_digest
from ..storage.repo import referrers_index
from .base import Ctx


async def get(ctx: Ctx) -> web.Response:
    digest = check_digest(ctx.params["digest"])
    artifact_type = ctx.request.query.get("artifactType")
    descriptors = ctx.repo.referrers(digest, artifact_type)
    headers = {"Content-Type": mt.OCI_INDEX}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    return web.Response(body=referrers_index(descriptors), headers=headers)
