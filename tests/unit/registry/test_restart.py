"""What a restarted registry (a fresh ``Registry`` over the same root) still has."""

from __future__ import annotations

import os

from dockyard.registry.storage.gc import verify

from .util import Harness, push_image, sha


async def test_committed_content_survives(fsreg: Harness) -> None:
    async with fsreg.client() as c:
        _, man = await push_image(c, "keep/me", "v1", [b"persist"])
    async with fsreg.client(restart=True) as c:
        r = await c.get("/v2/keep/me/manifests/v1")
        assert r.status == 200 and await r.read() == man
        assert await (await c.get(f"/v2/keep/me/blobs/{sha(b'persist')}")).read() == b"persist"
        assert (await (await c.get("/v2/_catalog")).json())["repositories"] == ["keep/me"]
    assert verify(fsreg.driver) == []


async def test_upload_in_progress_survives(fsreg: Harness) -> None:
    data = os.urandom(300_000)
    async with fsreg.client() as c:
        r = await c.post("/v2/resume/blobs/uploads/")
        loc = r.headers["Location"]
        r = await c.patch(loc, data=data[:100_000], headers={"Content-Range": "0-99999"})
        assert r.status == 202
    async with fsreg.client(restart=True) as c:
        r = await c.get(loc)
        assert r.status == 204 and r.headers["Range"] == "0-99999"
        r = await c.patch(loc, data=data[100_000:], headers={"Content-Range": "100000-299999"})
        assert r.status == 202, await r.text()
        r = await c.put(loc, params={"digest": sha(data)})
        assert r.status == 201, await r.text()
        assert await (await c.get(f"/v2/resume/blobs/{sha(data)}")).read() == data


async def test_commit_after_restart_rehashes(fsreg: Harness) -> None:
    async with fsreg.client() as c:
        r = await c.post("/v2/rh/blobs/uploads/")
        loc = r.headers["Location"]
        await c.patch(loc, data=b"all of it")
    async with fsreg.client(restart=True) as c:
        r = await c.put(loc, params={"digest": sha(b"all of it")})
        assert r.status == 201
        r = await c.post("/v2/rh/blobs/uploads/")
        loc = r.headers["Location"]
        await c.patch(loc, data=b"some")
    async with fsreg.client(restart=True) as c:
        r = await c.put(loc, params={"digest": sha(b"other")})
        assert r.status == 400


async def test_blobs_are_read_only_on_disk(fsreg: Harness) -> None:
    async with fsreg.client() as c:
        r = await c.post("/v2/ro/blobs/uploads/", params={"digest": sha(b"frozen")},
                         data=b"frozen")
        assert r.status == 201
    path = fsreg.driver.local_path(f"/blobs/sha256/{sha(b'frozen')[7:9]}/{sha(b'frozen')[7:]}/data")
    assert path is not None and os.stat(path).st_mode & 0o777 == 0o444
