"""The image routes against a fake backend: paths with ``/`` and ``:``, query parsing,
streamed bodies, docker's JSON progress stream, API-version differences, error bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard import errors
from dockyard.daemon.app import api_middleware
from dockyard.daemon.routes import auth as auth_routes
from dockyard.daemon.routes import images as image_routes

IID = "sha256:" + "ab" * 32


class FakeImages:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.body = b""

    async def import_image(self, body: AsyncIterable[bytes], *, src: str = "-", repo: str = "",
                           tag: str = "", message: str = "", changes: Sequence[str] = (),
                           platform: str = "") -> str:
        async for chunk in body:
            self.body += chunk
        self.calls.append(("import", dict(src=src, repo=repo, tag=tag, message=message,
                                          changes=list(changes), platform=platform)))
        if repo == "bad":
            raise errors.InvalidArgument("invalid tar archive: bad header")
        return IID

    async def pull_image(self, image: str, tag: str = "", *, platform: str = "",
                         auth: str = "") -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("pull", (image, tag, auth)))
        if image.endswith("missing"):
            raise errors.NoSuchImage("pull access denied for missing")
        yield {"status": "Pulling from x", "id": tag}
        yield {"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "id": "l1"}
        raise errors.Unavailable("registry went away")

    async def list_images(self, *, all: bool = False,
                          filters: Mapping[str, Sequence[str]] | None = None,
                          digests: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("list", dict(all=all, filters=dict(filters or {}), digests=digests)))
        return [
            {"Id": IID, "RepoTags": ["busybox:latest"], "RepoDigests": [], "Size": 10,
             "Created": 1, "ParentId": "", "SharedSize": -1, "Containers": 0, "Labels": {}},
            {"Id": "sha256:" + "cd" * 32, "RepoTags": [], "RepoDigests": [], "Size": 5,
             "Created": 1, "ParentId": "", "SharedSize": -1, "Containers": 0, "Labels": {}},
        ]

    async def inspect_image(self, name: str) -> dict[str, Any]:
        self.calls.append(("inspect", name))
        if name.startswith("nosuch"):
            raise errors.NoSuchImage(f"No such image: {name}:latest")
        return {"Id": IID, "RepoTags": [name], "Size": 7, "Created": "2024-01-01T00:00:00Z"}

    async def image_history(self, name: str) -> list[dict[str, Any]]:
        self.calls.append(("history", name))
        return [{"Id": IID, "Created": 1, "CreatedBy": "", "Tags": None, "Size": 1,
                 "Comment": "Imported from -"}]

    async def tag_image(self, name: str, repo: str, tag: str = "") -> str:
        self.calls.append(("tag", (name, repo, tag)))
        return f"{repo}:{tag}"

    async def remove_image(self, name: str, *, force: bool = False,
                           prune: bool = True) -> list[dict[str, str]]:
        self.calls.append(("remove", (name, force, prune)))
        if name == "used":
            raise errors.Conflict("conflict: unable to delete 0123456789ab (must be forced) - "
                                  "image is being used by stopped container 0123456789ab")
        return [{"Untagged": name}, {"Deleted": IID}]

    async def prune_images(
            self, filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        self.calls.append(("prune", dict(filters or {})))
        return {"ImagesDeleted": None, "SpaceReclaimed": 0}


    def push_image(self, name: str, tag: str = "", *, auth: str = "",
                   platform: str = "") -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("push", (name, tag, auth)))

        async def gen() -> AsyncIterator[dict[str, Any]]:
            if name.endswith("notlocal"):
                raise errors.NotFound(f"An image does not exist locally with the tag: {name}")
            yield {"status": f"The push refers to repository [{name}]"}
            yield {"progressDetail": {}, "aux": {"Tag": tag, "Digest": IID, "Size": 1}}

        return gen()

    async def commit(self, container: str, *, repo: str = "", tag: str = "",
                     comment: str = "", author: str = "", changes: Sequence[str] = (),
                     pause: bool = True, config: Mapping[str, Any] | None = None) -> str:
        self.calls.append(("commit", dict(container=container, repo=repo, tag=tag,
                                          comment=comment, author=author,
                                          changes=list(changes), pause=pause, config=config)))
        if container == "nosuch":
            raise errors.NotFound("No such container: nosuch")
        return IID

    async def save_images(self, names: Sequence[str],
                          platform: str = "") -> AsyncIterator[bytes]:
        self.calls.append(("save", list(names)))
        if "nosuch" in names:
            raise errors.NoSuchImage("No such image: nosuch:latest")

        async def gen() -> AsyncIterator[bytes]:
            yield b"tar-"
            yield b"bytes"

        return gen()

    def load_images(self, body: AsyncIterable[bytes], *, quiet: bool = False,
                    platform: str = "") -> AsyncIterator[dict[str, Any]]:
        async def gen() -> AsyncIterator[dict[str, Any]]:
            async for chunk in body:
                self.body += chunk
            self.calls.append(("load", quiet))
            if self.body == b"junk":
                raise errors.InvalidArgument("invalid tar archive: bad header")
            yield {"stream": "Loaded image: x:1\n"}

        return gen()

    async def login(self, config: Mapping[str, Any]) -> dict[str, str]:
        self.calls.append(("login", dict(config)))
        if config.get("password") != "right":
            raise errors.Unauthorized("login attempt to http://h/v2/ failed with status: "
                                      "401 Unauthorized")
        return {"Status": "Login Succeeded", "IdentityToken": ""}


def with_client(fn: Callable[[TestClient, FakeImages], Awaitable[None]]) -> None:
    async def main() -> None:
        fake = FakeImages()
        app = web.Application(middlewares=[api_middleware])
        image_routes.setup(app, fake)
        auth_routes.setup(app, fake)
        async with TestClient(TestServer(app)) as client:
            await fn(client, fake)

    asyncio.run(main())


def test_import_streams_the_body_and_answers_with_a_status_line() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        body = b"x" * 300_000

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 70_000):
                yield body[i:i + 70_000]

        r = await c.post("/v1.47/images/create?fromSrc=-&repo=localhost:5000/app&tag=1"
                         "&message=hi&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3Db", data=chunks())
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json"
        assert await r.read() == b'{"status":"' + IID.encode() + b'"}\r\n'
        assert fake.body == body
        assert fake.calls == [("import", dict(src="-", repo="localhost:5000/app", tag="1",
                                              message="hi", changes=['CMD ["sh"]', "ENV A=b"],
                                              platform=""))]

    with_client(t)


def test_import_failure_is_an_http_error() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/images/create?fromSrc=-&repo=bad", data=b"junk")
        assert r.status == 400
        assert r.headers["Content-Type"] == "application/json"
        assert await r.json() == {"message": "invalid tar archive: bad header"}
        r = await c.post("/images/create")
        assert r.status == 400

    with_client(t)


def test_pull_progress_stream_and_errors() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/v1.47/images/create?fromImage=127.0.0.1:5000/x&tag=1",
                         headers={"X-Registry-Auth": "e30="})
        assert r.status == 200
        lines = (await r.read()).split(b"\r\n")
        msgs = [json.loads(x) for x in lines if x]
        assert msgs[0] == {"status": "Pulling from x", "id": "1"}
        assert msgs[-1] == {"errorDetail": {"message": "registry went away"},
                            "error": "registry went away"}
        assert fake.calls[0] == ("pull", ("127.0.0.1:5000/x", "1", "e30="))
        r = await c.post("/v1.47/images/create?fromImage=127.0.0.1:5000/missing")
        assert r.status == 404
        assert (await r.json())["message"] == "pull access denied for missing"

    with_client(t)


def test_list_passes_filters_and_adapts_to_old_api_versions() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        f = json.dumps({"dangling": {"true": True}, "reference": ["busy*"]})
        r = await c.get("/v1.47/images/json", params={"all": "1", "filters": f, "digests": "1"})
        imgs = await r.json()
        assert fake.calls[-1] == ("list", dict(all=True, digests=True, filters={
            "dangling": ["true"], "reference": ["busy*"]}))
        assert imgs[1]["RepoTags"] == [] and "VirtualSize" not in imgs[0]
        r = await c.get("/v1.41/images/json", params={"filter": "busybox"})
        imgs = await r.json()
        assert fake.calls[-1][1]["filters"] == {"reference": ["busybox"]}
        assert imgs[1]["RepoTags"] == ["<none>:<none>"]
        assert imgs[1]["RepoDigests"] == ["<none>@<none>"]
        assert imgs[0]["RepoTags"] == ["busybox:latest"] and imgs[0]["VirtualSize"] == 10
        r = await c.get("/v1.43/images/json")
        imgs = await r.json()
        assert imgs[1]["RepoTags"] == [] and imgs[1]["VirtualSize"] == 5
        r = await c.get("/images/json", params={"filters": "{not json"})
        assert r.status == 400

    with_client(t)


def test_names_with_slashes_and_colons() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.get("/v1.47/images/localhost:5000/ns/app:1/json")
        assert r.status == 200
        assert fake.calls[-1] == ("inspect", "localhost:5000/ns/app:1")
        data = await r.json()
        assert "VirtualSize" not in data and "ContainerConfig" not in data
        r = await c.get(f"/images/{IID}/json")
        assert fake.calls[-1] == ("inspect", IID)
        r = await c.get("/v1.47/images/a/b/c/history")
        assert r.status == 200 and fake.calls[-1] == ("history", "a/b/c")
        assert (await r.json())[0]["Tags"] is None

    with_client(t)


def test_inspect_legacy_fields_and_not_found() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.get("/v1.41/images/busybox/json")
        data = await r.json()
        assert data["VirtualSize"] == 7 and data["Container"] == ""
        assert data["ContainerConfig"]["Cmd"] is None
        r = await c.get("/v1.47/images/nosuch/json")
        assert r.status == 404
        assert r.headers["Content-Type"] == "application/json"
        assert await r.json() == {"message": "No such image: nosuch:latest"}

    with_client(t)


def test_tag_is_201_with_the_query_decoded() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/v1.41/images/busybox-notes:1/tag?repo=127.0.0.1%3A5000%2Fbusybox-notes"
                         "&tag=1")
        assert r.status == 201
        assert await r.read() == b""
        assert fake.calls[-1] == ("tag", ("busybox-notes:1", "127.0.0.1:5000/busybox-notes", "1"))

    with_client(t)


def test_delete_and_prune() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.delete("/v1.41/images/127.0.0.1:5000/busybox-notes:1")
        assert r.status == 200
        assert await r.json() == [{"Untagged": "127.0.0.1:5000/busybox-notes:1"},
                                  {"Deleted": IID}]
        assert fake.calls[-1] == ("remove", ("127.0.0.1:5000/busybox-notes:1", False, True))
        await c.delete("/images/x?force=1&noprune=true")
        assert fake.calls[-1] == ("remove", ("x", True, False))
        r = await c.delete("/images/used")
        assert r.status == 409
        assert (await r.json())["message"].startswith("conflict: unable to delete")
        r = await c.post("/v1.47/images/prune",
                         params={"filters": json.dumps({"dangling": ["false"]})})
        assert await r.json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
        assert fake.calls[-1] == ("prune", {"dangling": ["false"]})

    with_client(t)


def test_push_streams_aux_and_fails_before_streaming() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/v1.47/images/127.0.0.1:5000/x/push?tag=1",
                         headers={"X-Registry-Auth": "e30="})
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        lines = [json.loads(x) for x in (await r.read()).splitlines()]
        assert lines[-1]["aux"]["Digest"] == IID
        assert fake.calls[-1] == ("push", ("127.0.0.1:5000/x", "1", "e30="))
        r = await c.post("/images/127.0.0.1:5000/notlocal/push?tag=1")
        assert r.status == 404
        assert "does not exist locally" in (await r.json())["message"]

    with_client(t)


def test_commit_route() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/v1.47/commit?container=c1&repo=docker.io%2Flibrary%2Fx&tag=1"
                         "&comment=msg&author=me&changes=ENV+A%3D1&changes=CMD+sh&pause=0")
        assert r.status == 201
        assert await r.json() == {"Id": IID}
        assert fake.calls[-1] == ("commit", dict(
            container="c1", repo="docker.io/library/x", tag="1", comment="msg", author="me",
            changes=["ENV A=1", "CMD sh"], pause=False, config=None))
        r = await c.post("/commit?container=c1", json={"Cmd": ["sh"]})
        assert fake.calls[-1][1]["config"] == {"Cmd": ["sh"]}
        r = await c.post("/commit?container=nosuch")
        assert r.status == 404

    with_client(t)


def test_save_and_load_routes() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.get("/v1.47/images/get?names=a%3A1&names=localhost%3A5000%2Fb")
        assert r.status == 200 and r.headers["Content-Type"] == "application/x-tar"
        assert await r.read() == b"tar-bytes"
        assert fake.calls[-1] == ("save", ["a:1", "localhost:5000/b"])
        r = await c.get("/images/localhost:5000/b:1/get")
        assert r.status == 200 and fake.calls[-1] == ("save", ["localhost:5000/b:1"])
        r = await c.get("/images/get?names=nosuch")
        assert r.status == 404
        r = await c.post("/images/load?quiet=1", data=b"a tar")
        assert r.status == 200
        assert await r.read() == b'{"stream":"Loaded image: x:1\\n"}\r\n'
        fake.body = b""
        r = await c.post("/images/load", data=b"junk")
        assert r.status == 200                   # as moby: errors are in the stream
        assert json.loads(await r.read())["errorDetail"]["message"] == \
            "invalid tar archive: bad header"

    with_client(t)


def test_auth_route() -> None:
    async def t(c: TestClient, fake: FakeImages) -> None:
        r = await c.post("/v1.47/auth", json={"username": "u", "password": "right",
                                              "serveraddress": "127.0.0.1:5000"})
        assert r.status == 200
        assert await r.json() == {"Status": "Login Succeeded", "IdentityToken": ""}
        r = await c.post("/auth", json={"username": "u", "password": "wrong"})
        assert r.status == 401
        assert "401 Unauthorized" in (await r.json())["message"]
        r = await c.post("/auth", data=b"[1]")
        assert r.status == 400

    with_client(t)
