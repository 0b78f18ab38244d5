"""Upload sessions: POST, PATCH (with and without Content-Range), PUT, status, cancel, mount."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os

import pytest

from dockyard.registry import errcodes
from dockyard.registry.errcodes import RegistryError
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import PathNotFound

from .util import Harness, assert_error, push_blob, sha


def _blobs(reg: Harness) -> list[str]:
    return [i.path for i in reg.driver.walk("/") if i.path.endswith("/data")
            and i.path.startswith("/blobs/")]


async def _start(c, name: str = "up") -> str:  # type: ignore[no-untyped-def]
    r = await c.post(f"/v2/{name}/blobs/uploads/")
    assert r.status == 202
    loc = r.headers["Location"]
    uuid = r.headers["Docker-Upload-UUID"]
    assert loc == f"/v2/{name}/blobs/uploads/{uuid}"
    assert r.headers["Range"] == "0-0"
    return loc


async def test_docker_style_single_patch(reg: Harness) -> None:
    """POST, one PATCH with the whole blob and no Content-Range (chunked), PUT ?digest=."""
    data = os.urandom(9 * 1024 * 1024 + 7)  # more than one write batch

    async def body():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 100_000):
            yield data[i:i + 100_000]

    async with reg.client() as c:
        loc = await _start(c)
        r = await c.patch(loc, data=body())
        assert r.status == 202, await r.text()
        assert r.headers["Range"] == f"0-{len(data) - 1}"
        assert r.headers["Location"] == loc
        r = await c.get(loc)
        assert r.status == 204 and r.headers["Range"] == f"0-{len(data) - 1}"
        r = await c.put(loc, params={"digest": sha(data)})
        assert r.status == 201, await r.text()
        assert r.headers["Location"] == f"/v2/up/blobs/{sha(data)}"
        assert r.headers["Docker-Content-Digest"] == sha(data)
        r = await c.get(r.headers["Location"])
        assert await r.read() == data
        await assert_error(await c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_chunks_with_content_range(reg: Harness) -> None:
    data = b"0123456789abcdef"
    async with reg.client() as c:
        loc = await _start(c)
        r = await c.patch(loc, data=data[:5], headers={"Content-Range": "0-4"})
        assert r.status == 202 and r.headers["Range"] == "0-4"
        r = await c.patch(loc, data=data[5:10], headers={"Content-Range": "5-9"})
        assert r.status == 202 and r.headers["Range"] == "0-9"
        # out of order: 416 and the current range
        r = await c.patch(loc, data=data[12:], headers={"Content-Range": "12-15"})
        await assert_error(r, 416, "RANGE_INVALID")
        assert r.headers["Range"] == "0-9"
        r = await c.patch(loc, data=data[2:6], headers={"Content-Range": "2-5"})
        assert r.status == 416
        # announced length and Content-Range disagree
        r = await c.patch(loc, data=b"xy", headers={"Content-Range": "10-12"})
        await assert_error(r, 400, "SIZE_INVALID")
        r = await c.patch(loc, data=b"xy", headers={"Content-Range": "garbage"})
        await assert_error(r, 416, "RANGE_INVALID")
        # the last chunk comes with the PUT
        r = await c.put(loc, params={"digest": sha(data)}, data=data[10:],
                        headers={"Content-Range": "10-15"})
        assert r.status == 201, await r.text()
        assert await (await c.get(f"/v2/up/blobs/{sha(data)}")).read() == data


async def test_put_digest_errors(reg: Harness) -> None:
    async with reg.client() as c:
        loc = await _start(c)
        await c.patch(loc, data=b"hello")
        await assert_error(await c.put(loc), 400, "DIGEST_INVALID")
        await assert_error(await c.put(loc, params={"digest": "sha256:zz"}), 400, "DIGEST_INVALID")
        # still there after those
        assert (await c.get(loc)).status == 204
        r = await c.put(loc, params={"digest": sha(b"other")})
        body = await assert_error(r, 400, "DIGEST_INVALID")
        assert body["errors"][0]["detail"]["digest"] == sha(b"other")
        # a mismatch cancels the upload; nothing reached the blob store
        await assert_error(await c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
        assert _blobs(reg) == []


async def test_truncated_upload(reg: Harness) -> None:
    """Half a blob, then a PUT for the whole: DIGEST_INVALID, nothing stored."""
    data = os.urandom(100_000)
    async with reg.client() as c:
        loc = await _start(c)
        await c.patch(loc, data=data[:50_000])
        r = await c.put(loc, params={"digest": sha(data)})
        await assert_error(r, 400, "DIGEST_INVALID")
        await assert_error(await c.get(f"/v2/up/blobs/{sha(data)}"), 404, "BLOB_UNKNOWN")
        assert _blobs(reg) == []


async def test_client_hangs_up_mid_patch(reg: Harness) -> None:
    """A PATCH announcing more than it sends: what arrived is kept, the status says how much,
    and the upload can be completed from there."""
    data = os.urandom(8 << 20)
    sent = 5 << 20  # more than one write batch, so the server is seen writing before we go

    async def upload_size(c, loc: str) -> int:  # type: ignore[no-untyped-def]
        r = await c.get(loc)
        return int(r.headers["Range"].split("-")[1]) + 1 if r.headers["Range"] != "0-0" else 0

    async with reg.client() as c:
        loc = await _start(c)
        reader, writer = await asyncio.open_connection(c.server.host, c.server.port)
        writer.write(f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
                     .encode() + data[:sent])
        await writer.drain()
        for _ in range(500):
            if await upload_size(c, loc) > 0:
                break
            await asyncio.sleep(0.02)
        writer.close()  # hang up mid-body
        await writer.wait_closed()
        for _ in range(500):  # the server notices asynchronously
            if await upload_size(c, loc) == sent:
                break
            await asyncio.sleep(0.02)
        assert await upload_size(c, loc) == sent
        await assert_error(await c.get(f"/v2/up/blobs/{sha(data)}"), 404, "BLOB_UNKNOWN")
        r = await c.patch(loc, data=io.BytesIO(data[sent:]),
                          headers={"Content-Range": f"{sent}-{len(data) - 1}"})
        assert r.status == 202, await r.text()
        assert (await c.put(loc, params={"digest": sha(data)})).status == 201


async def test_monolithic(reg: Harness) -> None:
    async with reg.client() as c:
        d = await push_blob(c, "m", b"whole")
        assert (await c.get(f"/v2/m/blobs/{d}")).status == 200
        r = await c.post("/v2/m/blobs/uploads/", params={"digest": sha(b"other")}, data=b"whole")
        await assert_error(r, 400, "DIGEST_INVALID")
        r = await c.post("/v2/m/blobs/uploads/", params={"digest": "sha256:bad"}, data=b"x")
        await assert_error(r, 400, "DIGEST_INVALID")
        # the failed sessions are gone
        try:
            left = reg.driver.list(paths.uploads_dir("m"))
        except PathNotFound:
            left = []
        assert left == []


async def test_status_cancel_unknown(reg: Harness) -> None:
    async with reg.client() as c:
        loc = await _start(c)
        assert (await c.delete(loc)).status == 204
        await assert_error(await c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
        await assert_error(await c.patch(loc, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        await assert_error(await c.put(loc, params={"digest": sha(b"")}), 404,
                           "BLOB_UPLOAD_UNKNOWN")
        await assert_error(await c.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN")
        await assert_error(await c.get("/v2/up/blobs/uploads/not-a-uuid"), 404,
                           "BLOB_UPLOAD_UNKNOWN")
        # a session belongs to its repository
        loc = await _start(c, "one")
        await assert_error(await c.get(loc.replace("/one/", "/two/")), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_mount(reg: Harness) -> None:
    async with reg.client() as c:
        d = await push_blob(c, "src/repo", b"mount me")
        r = await c.post("/v2/dst/blobs/uploads/", params={"mount": d, "from": "src/repo"})
        assert r.status == 201
        assert r.headers["Location"] == f"/v2/dst/blobs/{d}"
        assert r.headers["Docker-Content-Digest"] == d
        assert await (await c.get(f"/v2/dst/blobs/{d}")).read() == b"mount me"
        # not in the source: an upload session instead
        r = await c.post("/v2/dst/blobs/uploads/", params={"mount": sha(b"no"), "from": "src/repo"})
        assert r.status == 202 and "Docker-Upload-UUID" in r.headers
        r = await c.post("/v2/dst/blobs/uploads/", params={"mount": d, "from": "Bad/Name"})
        assert r.status == 202
        r = await c.post("/v2/dst/blobs/uploads/", params={"mount": d})
        assert r.status == 202
        r = await c.post("/v2/dst/blobs/uploads/", params={"mount": "sha256:x", "from": "src/repo"})
        await assert_error(r, 400, "DIGEST_INVALID")


async def test_sha512_upload(reg: Harness) -> None:
    data = b"sha512 content"
    d = "sha512:" + hashlib.sha512(data).hexdigest()
    async with reg.client() as c:
        r = await c.post("/v2/s/blobs/uploads/", params={"digest-algorithm": "sha512"})
        assert r.status == 202
        loc = r.headers["Location"]
        await c.patch(loc, data=data)
        r = await c.put(loc, params={"digest": d})
        assert r.status == 201, await r.text()
        assert await (await c.get(f"/v2/s/blobs/{d}")).read() == data
        r = await c.post("/v2/s/blobs/uploads/", params={"digest-algorithm": "md5"})
        await assert_error(r, 400, "DIGEST_INVALID")


async def test_concurrent_uploads_of_one_blob(reg: Harness) -> None:
    data = os.urandom(2_000_000)
    async with reg.client() as c:
        async def one(name: str) -> int:
            loc = await _start(c, name)
            await c.patch(loc, data=io.BytesIO(data))
            return (await c.put(loc, params={"digest": sha(data)})).status

        statuses = await asyncio.gather(*(one(n) for n in ["c1", "c2", "c1", "c3"] * 3))
        assert statuses == [201] * 12
        for n in ["c1", "c2", "c3"]:
            assert await (await c.get(f"/v2/{n}/blobs/{sha(data)}")).read() == data
        assert len(_blobs(reg)) == 1


def test_one_writer_per_upload(reg: Harness) -> None:
    repo = reg.registry.repository("busy")
    uuid = repo.start_upload()
    w = repo.open_upload(uuid)
    with pytest.raises(RegistryError) as ei:
        repo.open_upload(uuid)
    assert ei.value.code is errcodes.BLOB_UPLOAD_INVALID
    w.write(b"abc")
    w.close()
    w = repo.open_upload(uuid)
    assert w.size == 3
    w.close()
    assert repo.commit_upload(uuid, sha(b"abc")) == 3
