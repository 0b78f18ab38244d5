"""Manifests: the four kinds, exact bytes, references checked, size limit, tags, deletes."""

from __future__ import annotations

import io
import json

import pytest

from dockyard.oci import mediatypes as mt

from .util import (
    Harness,
    assert_error,
    descriptor,
    image_manifest,
    push_blob,
    push_image,
    sha,
)


@pytest.mark.parametrize("docker", [False, True])
async def test_put_get_head_by_tag_and_digest(reg: Harness, docker: bool) -> None:
    media = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    async with reg.client() as c:
        d, man = await push_image(c, "lib/img", "v1", [b"l1", b"l2"], docker=docker)
        for ref in ("v1", d):
            r = await c.get(f"/v2/lib/img/manifests/{ref}", headers={"Accept": media})
            assert r.status == 200
            assert await r.read() == man  # byte for byte, whitespace and all
            assert r.headers["Content-Type"] == media
            assert r.headers["Docker-Content-Digest"] == d
            r = await c.head(f"/v2/lib/img/manifests/{ref}")
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(man))
            assert r.headers["Docker-Content-Digest"] == d
            assert r.headers["Content-Type"] == media


async def test_put_response(reg: Harness) -> None:
    async with reg.client() as c:
        config, layer = b"{}", b"layer"
        await push_blob(c, "p", config)
        await push_blob(c, "p", layer)
        man = image_manifest(config, [layer])
        r = await c.put("/v2/p/manifests/t", data=man,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        assert r.status == 201
        assert r.headers["Location"] == f"/v2/p/manifests/{sha(man)}"
        assert r.headers["Docker-Content-Digest"] == sha(man)
        assert "OCI-Subject" not in r.headers


@pytest.mark.parametrize("media", [mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST])
async def test_index(reg: Harness, media: str) -> None:
    async with reg.client() as c:
        child_media = mt.DOCKER_MANIFEST if media == mt.DOCKER_MANIFEST_LIST else mt.OCI_MANIFEST
        docker = media == mt.DOCKER_MANIFEST_LIST
        d1, m1 = await push_image(c, "multi", "amd64", [b"a"], docker=docker)
        d2, m2 = await push_image(c, "multi", "arm64", [b"b"], docker=docker)
        index = json.dumps({"schemaVersion": 2, "mediaType": media, "manifests": [
            {**descriptor(m1, child_media), "platform": {"architecture": "amd64", "os": "linux"}},
            {**descriptor(m2, child_media), "platform": {"architecture": "arm64", "os": "linux"}},
        ]}).encode()
        r = await c.put("/v2/multi/manifests/latest", data=index, headers={"Content-Type": media})
        assert r.status == 201, await r.text()
        r = await c.get("/v2/multi/manifests/latest")
        assert r.headers["Content-Type"] == media and await r.read() == index
        # an index naming a manifest this repository does not have
        r = await c.put("/v2/other/manifests/latest", data=index, headers={"Content-Type": media})
        body = await assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
        assert body["errors"][0]["detail"]["digest"] == d1


async def test_oci_manifest_without_media_type_field(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "n", b"{}")
        await push_blob(c, "n", b"L")
        doc = json.loads(image_manifest(b"{}", [b"L"]))
        del doc["mediaType"]
        man = json.dumps(doc).encode()
        r = await c.put("/v2/n/manifests/x", data=man, headers={"Content-Type": mt.OCI_MANIFEST})
        assert r.status == 201
        r = await c.get("/v2/n/manifests/x")
        assert r.headers["Content-Type"] == mt.OCI_MANIFEST


async def test_missing_blobs_refused(reg: Harness) -> None:
    async with reg.client() as c:
        config, layer = b'{"c":1}', b"missing layer"
        await push_blob(c, "m", config)
        man = image_manifest(config, [layer])
        r = await c.put("/v2/m/manifests/t", data=man, headers={"Content-Type": mt.OCI_MANIFEST})
        body = await assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
        assert body["errors"][0]["detail"] == {"digest": sha(layer)}
        # a blob of another repository does not count
        await push_blob(c, "elsewhere", layer)
        r = await c.put("/v2/m/manifests/t", data=man, headers={"Content-Type": mt.OCI_MANIFEST})
        await assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
        # missing config
        man = image_manifest(b"no config", [])
        r = await c.put("/v2/m/manifests/t", data=man, headers={"Content-Type": mt.OCI_MANIFEST})
        await assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
        await assert_error(await c.get("/v2/m/manifests/t"), 404, "MANIFEST_UNKNOWN")


async def test_foreign_layer_need_not_be_pushed(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "f", b"{}")
        doc = json.loads(image_manifest(b"{}", [], docker=True))
        doc["layers"] = [{"mediaType": mt.DOCKER_LAYER_FOREIGN_GZIP, "size": 5,
                          "digest": sha(b"windows"), "urls": ["https://example.invalid/x"]}]
        r = await c.put("/v2/f/manifests/t", data=json.dumps(doc).encode(),
                        headers={"Content-Type": mt.DOCKER_MANIFEST})
        assert r.status == 201, await r.text()


@pytest.mark.parametrize("body,ctype", [
    (b"not json", mt.OCI_MANIFEST),
    (b"[]", mt.OCI_MANIFEST),
    (b'{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}',
     mt.DOCKER_MANIFEST_V1_SIGNED),
    (b'{"schemaVersion": 3}', mt.OCI_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}).encode(), mt.DOCKER_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": "application/x-foo"}).encode(),
     "application/x-foo"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "x"},
                 "layers": []}).encode(), mt.OCI_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"digest": sha(b""), "size": -1, "mediaType": mt.OCI_CONFIG},
                 "layers": []}).encode(), mt.OCI_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": {}}).encode(),
     mt.OCI_INDEX),
    (json.dumps({"schemaVersion": 2, "config": {}}).encode(), mt.DOCKER_MANIFEST),
])
async def test_invalid_manifests(reg: Harness, body: bytes, ctype: str) -> None:
    async with reg.client() as c:
        r = await c.put("/v2/bad/manifests/t", data=body, headers={"Content-Type": ctype})
        await assert_error(r, 400, "MANIFEST_INVALID")


async def test_too_large(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "big", b"{}")
        doc = json.loads(image_manifest(b"{}", []))
        doc["annotations"] = {"pad": ""}
        pad = 4 * 1024 * 1024 - len(json.dumps(doc))
        doc["annotations"] = {"pad": "x" * pad}
        at_limit = json.dumps(doc).encode()
        assert len(at_limit) == 4 * 1024 * 1024
        doc["annotations"] = {"pad": "x" * (pad + 1)}
        over = json.dumps(doc).encode()
        headers = {"Content-Type": mt.OCI_MANIFEST}
        # refused from Content-Length, and while reading a chunked body
        r = await c.put("/v2/big/manifests/t", data=io.BytesIO(over), headers=headers)
        await assert_error(r, 413, "MANIFEST_INVALID")
        r = await c.put("/v2/big/manifests/t", data=_chunks(over), headers=headers)
        await assert_error(r, 413, "MANIFEST_INVALID")
        r = await c.put("/v2/big/manifests/t", data=_chunks(at_limit), headers=headers)
        assert r.status == 201, await r.text()


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), 1 << 20):
        yield data[i:i + (1 << 20)]


async def test_put_by_digest_and_tag_params(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "d", b"{}")
        man = image_manifest(b"{}", [])
        r = await c.put(f"/v2/d/manifests/{sha(b'other')}", data=man,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        await assert_error(r, 400, "DIGEST_INVALID")
        r = await c.put(f"/v2/d/manifests/{sha(man)}?tag=a&tag=b&tag=a", data=man,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        assert r.status == 201
        assert r.headers.getall("OCI-Tag") == ["a", "b"]
        for ref in ("a", "b", sha(man)):
            assert await (await c.get(f"/v2/d/manifests/{ref}")).read() == man
        r = await c.put(f"/v2/d/manifests/{sha(man)}?tag=bad!", data=man,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        await assert_error(r, 400, "TAG_INVALID")


async def test_bad_references(reg: Harness) -> None:
    async with reg.client() as c:
        await assert_error(await c.get("/v2/x/manifests/sha256:abc"), 400, "DIGEST_INVALID")
        await assert_error(await c.get("/v2/x/manifests/-tag"), 400, "TAG_INVALID")
        await assert_error(await c.get("/v2/x/manifests/nope"), 404, "MANIFEST_UNKNOWN")
        await assert_error(await c.get(f"/v2/x/manifests/{sha(b'x')}"), 404, "MANIFEST_UNKNOWN")
        r = await c.put("/v2/x/manifests/-tag", data=b"{}")
        await assert_error(r, 400, "TAG_INVALID")


async def test_delete(reg: Harness) -> None:
    async with reg.client() as c:
        d, man = await push_image(c, "del", "one", [b"x"])
        r = await c.put(f"/v2/del/manifests/{d}?tag=two", data=man,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        assert r.status == 201
        d2, _ = await push_image(c, "del", "three", [b"y"])
        # by tag: only the tag goes
        assert (await c.delete("/v2/del/manifests/one")).status == 202
        await assert_error(await c.get("/v2/del/manifests/one"), 404, "MANIFEST_UNKNOWN")
        assert (await c.get(f"/v2/del/manifests/{d}")).status == 200
        await assert_error(await c.delete("/v2/del/manifests/one"), 404, "MANIFEST_UNKNOWN")
        # by digest: the manifest and every tag on it
        assert (await c.delete(f"/v2/del/manifests/{d}")).status == 202
        await assert_error(await c.get(f"/v2/del/manifests/{d}"), 404, "MANIFEST_UNKNOWN")
        await assert_error(await c.get("/v2/del/manifests/two"), 404, "MANIFEST_UNKNOWN")
        await assert_error(await c.delete(f"/v2/del/manifests/{d}"), 404, "MANIFEST_UNKNOWN")
        r = await c.get("/v2/del/tags/list")
        assert (await r.json())["tags"] == ["three"]
        assert (await c.get(f"/v2/del/manifests/{d2}")).status == 200


async def test_retag_moves_tag(reg: Harness) -> None:
    async with reg.client() as c:
        d1, _ = await push_image(c, "rt", "latest", [b"1"])
        d2, _ = await push_image(c, "rt", "latest", [b"2"])
        r = await c.get("/v2/rt/manifests/latest")
        assert r.headers["Docker-Content-Digest"] == d2
        assert (await c.get(f"/v2/rt/manifests/{d1}")).status == 200
