"""Image routes: create (import, pull), push, list, inspect, tag, history, remove, prune,
save (``/images/get``), load, and ``/commit`` (an image from a container).

Image names in paths are not escaped and contain ``/`` and ``:``
(``/images/localhost:5000/busybox:1/json``): they are routed as ``{name:.*}`` followed by
the verb's suffix. The list and create routes are registered first, so ``/images/json``
and ``/images/create`` never reach the ``{name}`` routes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from dockyard.daemon.app import API_VERSION, API_VERSION_KEY, add_route
from dockyard.daemon.http import json_body, json_response, q_bool, q_filters
from dockyard.errors import DockyardError, InvalidArgument

__all__ = ["ImagesBackend", "setup"]

_CHUNK = 1 << 16


class ImagesBackend(Protocol):
    """What the image routes need from the engine (``dockyard.engine.images.ImageBackend``).

    Shapes are docker's API 1.47 JSON; errors are ``dockyard.errors`` classes
    (``NoSuchImage`` → 404, ``InvalidArgument`` → 400, ``Conflict`` → 409, ...).
    """

    async def import_image(
        self,
        body: AsyncIterable[bytes],
        *,
        src: str = "-",
        repo: str = "",
        tag: str = "",
        message: str = "",
        changes: Sequence[str] = (),
        platform: str = "",
    ) -> str:
        """Import the tar streamed in ``body``; returns the image id ``sha256:...``."""

    def pull_image(
        self, image: str, tag: str = "", *, platform: str = "", auth: str = ""
    ) -> AsyncIterator[dict[str, Any]]:
        """Pull, yielding docker progress messages; raising before the first message turns
        into an HTTP error, after it into an ``errorDetail`` message."""

    async def list_images(
        self,
        *,
        all: bool = False,
        filters: Mapping[str, Sequence[str]] | None = None,
        digests: bool = False,
    ) -> list[dict[str, Any]]:
        """``GET /images/json`` summaries (Id, ParentId, RepoTags, RepoDigests, Created,
        Size, SharedSize, Containers, Labels)."""

    async def inspect_image(self, name: str) -> dict[str, Any]:
        """``GET /images/{name}/json``."""

    async def image_history(self, name: str) -> list[dict[str, Any]]:
        """``GET /images/{name}/history``, newest first."""

    async def tag_image(self, name: str, repo: str, tag: str = "") -> str:
        """Add a name; returns it (familiar form)."""

    async def remove_image(
        self, name: str, *, force: bool = False, prune: bool = True
    ) -> list[dict[str, str]]:
        """``[{"Untagged": ...}, {"Deleted": ...}]``."""

    async def prune_images(
        self, filters: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """``{"ImagesDeleted": [...] | null, "SpaceReclaimed": n}``."""

    def push_image(
        self, name: str, tag: str = "", *, auth: str = "", platform: str = ""
    ) -> AsyncIterator[dict[str, Any]]:
        """Push, yielding docker progress messages (errors as for ``pull_image``)."""

    async def commit(
        self,
        container: str,
        *,
        repo: str = "",
        tag: str = "",
        comment: str = "",
        author: str = "",
        changes: Sequence[str] = (),
        pause: bool = True,
        config: Mapping[str, Any] | None = None,
    ) -> str:
        """A new image from the container's changes; returns its id."""

    async def save_images(self, names: Sequence[str], platform: str = "") -> AsyncIterator[bytes]:
        """Resolve ``names`` (raising NoSuchImage), then the archive's bytes."""

    def load_images(
        self, body: AsyncIterable[bytes], *, quiet: bool = False, platform: str = ""
    ) -> AsyncIterator[dict[str, Any]]:
        """Load an archive, yielding ``{"stream": "Loaded image: ..."}`` messages."""


def _vlt(request: web.Request, version: str) -> bool:
    """The request's API version is below ``version``."""

    def t(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            return (0,)

    return t(request.get(API_VERSION_KEY, API_VERSION)) < t(version)


def _line(msg: Mapping[str, Any]) -> bytes:
    return (json.dumps(msg, separators=(",", ":")) + "\r\n").encode()


async def _progress(
    request: web.Request, messages: AsyncIterator[dict[str, Any]]
) -> web.StreamResponse:
    """Docker's JSON progress stream. An error before the first message is a normal HTTP
    error; after it, an ``errorDetail`` message (the status stays 200)."""
    it = messages.__aiter__()
    try:
        first: dict[str, Any] | None = await it.__anext__()
    except StopAsyncIteration:
        first = None
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    if first is not None:
        await resp.write(_line(first))
        try:
            async for msg in it:
                await resp.write(_line(msg))
        except DockyardError as exc:
            await resp.write(_line({"errorDetail": {"message": exc.message}, "error": exc.message}))
        except Exception as exc:  # reported in-band, as dockerd does
            text = f"{type(exc).__name__}: {exc}"
            await resp.write(_line({"errorDetail": {"message": text}, "error": text}))
    await resp.write_eof()
    return resp


async def _stream_always(
    request: web.Request, messages: AsyncIterator[dict[str, Any]]
) -> web.StreamResponse:
    """A JSON message stream whose every error is in-band (``docker load``, as moby)."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        async for msg in messages:
            await resp.write(_line(msg))
    except DockyardError as exc:
        await resp.write(_line({"errorDetail": {"message": exc.message}, "error": exc.message}))
    except Exception as exc:  # reported in-band, as dockerd does
        text = f"{type(exc).__name__}: {exc}"
        await resp.write(_line({"errorDetail": {"message": text}, "error": text}))
    await resp.write_eof()
    return resp


def setup(app: web.Application, backend: ImagesBackend) -> None:
    async def create(request: web.Request) -> web.StreamResponse:
        q = request.query
        platform = q.get("platform", "")
        from_image = q.get("fromImage", "")
        if from_image:
            auth = request.headers.get("X-Registry-Auth", "")
            return await _progress(
                request,
                backend.pull_image(from_image, q.get("tag", ""), platform=platform, auth=auth),
            )
        src = q.get("fromSrc", "")
        if not src:
            raise InvalidArgument("fromImage or fromSrc is required")
        image_id = await backend.import_image(
            request.content.iter_chunked(_CHUNK),
            src=src,
            repo=q.get("repo", ""),
            tag=q.get("tag", ""),
            message=q.get("message", ""),
            changes=q.getall("changes", []),
            platform=platform,
        )
        return web.Response(
            status=200,
            body=_line({"status": image_id}),
            headers={"Content-Type": "application/json"},
        )

    async def list_(request: web.Request) -> web.Response:
        filters = q_filters(request)
        legacy = request.query.get("filter", "")
        if legacy and "reference" not in filters:
            filters["reference"] = [legacy]
        images = await backend.list_images(
            all=q_bool(request, "all"), filters=filters, digests=q_bool(request, "digests")
        )
        none = _vlt(request, "1.43")
        virtual = _vlt(request, "1.44")
        for img in images:
            if none and not img.get("RepoTags") and not img.get("RepoDigests"):
                img["RepoTags"] = ["<none>:<none>"]
                img["RepoDigests"] = ["<none>@<none>"]
            if virtual:
                img["VirtualSize"] = img.get("Size", 0)
        return json_response(images)

    async def inspect(request: web.Request) -> web.Response:
        data = await backend.inspect_image(request.match_info["name"])
        if _vlt(request, "1.44"):
            data["VirtualSize"] = data.get("Size", 0)
            if not data.get("Created"):
                data["Created"] = "0001-01-01T00:00:00Z"
        if _vlt(request, "1.45"):
            data["Container"] = ""
            data["ContainerConfig"] = {
                "Hostname": "",
                "Domainname": "",
                "User": "",
                "AttachStdin": False,
                "AttachStdout": False,
                "AttachStderr": False,
                "Tty": False,
                "OpenStdin": False,
                "StdinOnce": False,
                "Env": None,
                "Cmd": None,
                "Image": "",
                "Volumes": None,
                "WorkingDir": "",
                "Entrypoint": None,
                "OnBuild": None,
                "Labels": None,
            }
        return json_response(data)

    async def history(request: web.Request) -> web.Response:
        return json_response(await backend.image_history(request.match_info["name"]))

    async def tag(request: web.Request) -> web.Response:
        await backend.tag_image(
            request.match_info["name"], request.query.get("repo", ""), request.query.get("tag", "")
        )
        return web.Response(status=201)

    async def remove(request: web.Request) -> web.Response:
        out = await backend.remove_image(
            request.match_info["name"],
            force=q_bool(request, "force"),
            prune=not q_bool(request, "noprune"),
        )
        return json_response(out)

    async def prune(request: web.Request) -> web.Response:
        return json_response(await backend.prune_images(q_filters(request)))

    async def push(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("X-Registry-Auth", "")
        return await _progress(
            request,
            backend.push_image(
                request.match_info["name"],
                request.query.get("tag", ""),
                auth=auth,
                platform=request.query.get("platform", ""),
            ),
        )

    async def commit(request: web.Request) -> web.Response:
        q = request.query
        config = await json_body(request)
        if config is not None and not isinstance(config, dict):
            raise InvalidArgument("invalid commit config: not a JSON object")
        image_id = await backend.commit(
            q.get("container", ""),
            repo=q.get("repo", ""),
            tag=q.get("tag", ""),
            comment=q.get("comment", ""),
            author=q.get("author", ""),
            changes=q.getall("changes", []),
            pause=q_bool(request, "pause", True),
            config=config or None,
        )
        return json_response({"Id": image_id}, status=201)

    async def save(request: web.Request) -> web.StreamResponse:
        names = request.query.getall("names", [])
        if "name" in request.match_info:
            names = [request.match_info["name"]]
        chunks = await backend.save_images(names, request.query.get("platform", ""))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        await resp.prepare(request)
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def load(request: web.Request) -> web.StreamResponse:
        return await _stream_always(
            request,
            backend.load_images(
                request.content.iter_chunked(_CHUNK),
                quiet=q_bool(request, "quiet"),
                platform=request.query.get("platform", ""),
            ),
        )

    add_route(app, "POST", "/images/create", create)
    add_route(app, "POST", "/commit", commit)
    add_route(app, "GET", "/images/get", save)
    add_route(app, "POST", "/images/load", load)
    add_route(app, "GET", "/images/json", list_)
    add_route(app, "POST", "/images/prune", prune)
    add_route(app, "GET", "/images/{name:.*}/json", inspect)
    add_route(app, "GET", "/images/{name:.*}/history", history)
    add_route(app, "POST", "/images/{name:.*}/tag", tag)
    add_route(app, "POST", "/images/{name:.*}/push", push)
    add_route(app, "GET", "/images/{name:.*}/get", save)
    add_route(app, "DELETE", "/images/{name:.*}", remove)
