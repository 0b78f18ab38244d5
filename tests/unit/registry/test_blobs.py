"""GET/HEAD/DELETE of blobs, ranges, and what a repository may see."""

from __future__ import annotations

import os

from .util import Harness, assert_error, push_blob, sha


async def test_get_head_delete(reg: Harness) -> None:
    data = os.urandom(3000)
    async with reg.client() as c:
        d = await push_blob(c, "lib/x", data)
        r = await c.head(f"/v2/lib/x/blobs/{d}")
        assert r.status == 200
        assert r.headers["Content-Length"] == "3000"
        assert r.headers["Docker-Content-Digest"] == d
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert await r.read() == b""
        r = await c.get(f"/v2/lib/x/blobs/{d}")
        assert r.status == 200 and await r.read() == data
        assert r.headers["Docker-Content-Digest"] == d
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        r = await c.delete(f"/v2/lib/x/blobs/{d}")
        assert r.status == 202
        await assert_error(await c.get(f"/v2/lib/x/blobs/{d}"), 404, "BLOB_UNKNOWN")
        r = await c.head(f"/v2/lib/x/blobs/{d}")
        assert r.status == 404
        await assert_error(await c.delete(f"/v2/lib/x/blobs/{d}"), 404, "BLOB_UNKNOWN")


async def test_ranges(reg: Harness) -> None:
    data = bytes(range(256)) * 40
    async with reg.client() as c:
        d = await push_blob(c, "r", data)
        r = await c.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=10-19"})
        assert r.status == 206
        assert await r.read() == data[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        r = await c.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=10000-"})
        assert r.status == 206 and await r.read() == data[10000:]
        r = await c.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=-5"})
        assert r.status == 206 and await r.read() == data[-5:]
        r = await c.get(f"/v2/r/blobs/{d}", headers={"Range": "bytes=20000-"})
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"


async def test_blob_visible_only_where_linked(reg: Harness) -> None:
    async with reg.client() as c:
        d = await push_blob(c, "a", b"shared")
        await assert_error(await c.get(f"/v2/b/blobs/{d}"), 404, "BLOB_UNKNOWN")
        d2 = await push_blob(c, "b", b"shared")
        assert d2 == d
        assert reg.driver.list(f"/blobs/sha256/{d[7:9]}") == [f"/blobs/sha256/{d[7:9]}/{d[7:]}"]
        # deleting from one repository leaves the other's
        assert (await c.delete(f"/v2/a/blobs/{d}")).status == 202
        assert (await c.get(f"/v2/b/blobs/{d}")).status == 200


async def test_bad_and_unknown_digests(reg: Harness) -> None:
    async with reg.client() as c:
        await assert_error(await c.get("/v2/a/blobs/sha256:1234"), 400, "DIGEST_INVALID")
        await assert_error(await c.get("/v2/a/blobs/nodigest"), 400, "DIGEST_INVALID")
        await assert_error(await c.delete("/v2/a/blobs/md5:00"), 400, "DIGEST_INVALID")
        await assert_error(await c.get(f"/v2/a/blobs/{sha(b'nothing')}"), 404, "BLOB_UNKNOWN")


async def test_empty_blob(reg: Harness) -> None:
    async with reg.client() as c:
        d = await push_blob(c, "e", b"")
        r = await c.get(f"/v2/e/blobs/{d}")
        assert r.status == 200 and await r.read() == b""
        r = await c.head(f"/v2/e/blobs/{d}")
        assert r.headers["Content-Length"] == "0"
