"""garbage-collect and verify over the storage layout (both drivers)."""

from __future__ import annotations

import time

from dockyard.registry.storage import paths
from dockyard.registry.storage.gc import collect, verify

from .util import Harness, push_blob, push_image, sha


def _blob_digests(reg: Harness) -> set[str]:
    out = set()
    for info in reg.driver.walk("/blobs"):
        if info.path.endswith("/data"):
            alg, hex_ = info.path.split("/")[2], info.path.split("/")[4]
            out.add(f"{alg}:{hex_}")
    return out


async def test_collect_keeps_referenced_removes_the_rest(reg: Harness) -> None:
    async with reg.client() as c:
        d_keep, _ = await push_image(c, "a", "keep", [b"shared", b"only-keep"])
        d_gone, _ = await push_image(c, "b", "gone", [b"shared", b"only-gone"])
        stray = await push_blob(c, "a", b"never in a manifest")
        assert (await c.delete(f"/v2/b/manifests/{d_gone}")).status == 202
    before = _blob_digests(reg)
    res = collect(reg.driver, dry_run=True)
    gone_config = b'{"architecture": "amd64", "os": "linux", "tag": "gone"}'
    assert set(res.deleted_blobs) == {d_gone, sha(b"only-gone"), stray, sha(gone_config)}
    assert _blob_digests(reg) == before  # dry run
    res = collect(reg.driver)
    assert _blob_digests(reg) == before - set(res.deleted_blobs)
    assert sha(b"shared") in _blob_digests(reg) and d_keep in _blob_digests(reg)
    assert f"b@{sha(b'only-gone')}" in res.deleted_links and f"a@{stray}" in res.deleted_links
    assert res.freed_bytes > 0
    assert verify(reg.driver) == []
    async with reg.client() as c:
        r = await c.get("/v2/a/manifests/keep")
        assert r.status == 200
        for layer in (b"shared", b"only-keep"):
            assert (await c.get(f"/v2/a/blobs/{sha(layer)}")).status == 200
        assert (await c.get(f"/v2/b/blobs/{sha(b'only-gone')}")).status == 404
        assert (await c.get(f"/v2/a/blobs/{stray}")).status == 404
    # idempotent
    assert collect(reg.driver).deleted_blobs == []


async def test_collect_keeps_index_children_and_untagged(reg: Harness) -> None:
    import json

    from dockyard.oci import mediatypes as mt

    from .util import descriptor
    async with reg.client() as c:
        d1, m1 = await push_image(c, "idx", "child", [b"c1"])
        assert (await c.delete("/v2/idx/manifests/child")).status == 202  # untag only
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                            "manifests": [descriptor(m1, mt.OCI_MANIFEST)]}).encode()
        r = await c.put("/v2/idx/manifests/list", data=index,
                        headers={"Content-Type": mt.OCI_INDEX})
        assert r.status == 201
    res = collect(reg.driver)
    assert res.deleted_blobs == []
    assert {d1, sha(index), sha(b"c1")} <= res.marked


async def test_collect_purges_stale_uploads(reg: Harness) -> None:
    async with reg.client() as c:
        r = await c.post("/v2/u/blobs/uploads/")
        uuid = r.headers["Docker-Upload-UUID"]
        await c.patch(r.headers["Location"], data=b"partial")
    assert collect(reg.driver).deleted_uploads == []  # young
    res = collect(reg.driver, now=time.time() + 2 * 86400)
    assert res.deleted_uploads == [f"u/{uuid}"]
    async with reg.client() as c:
        assert (await c.get(f"/v2/u/blobs/uploads/{uuid}")).status == 404
    # upload_max_age=0 removes every upload
    async with reg.client() as c:
        await c.post("/v2/u/blobs/uploads/")
    assert len(collect(reg.driver, upload_max_age=0).deleted_uploads) == 1


async def test_verify_finds_damage(reg: Harness) -> None:
    async with reg.client() as c:
        d, _ = await push_image(c, "v", "1", [b"layer"])
    assert verify(reg.driver) == []
    reg.driver.put_content(paths.blob_data(sha(b"layer")), b"tampered")
    problems = verify(reg.driver)
    assert any("content hashes to" in p for p in problems)
    assert any(f"blob {sha(b'layer')} missing" in p or "blob missing" in p for p in problems)
    reg.driver.delete(paths.blob_dir(sha(b"layer")))
    reg.driver.put_content(paths.tag_link("v", "dangling"), sha(b"nothing").encode())
    problems = verify(reg.driver)
    assert any("v layer" in p and "blob missing" in p for p in problems)
    assert any("v:dangling" in p for p in problems)
