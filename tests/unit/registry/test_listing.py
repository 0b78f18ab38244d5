"""tags/list, _catalog (pagination with Link) and the referrers API."""

from __future__ import annotations

import json

from dockyard.oci import mediatypes as mt

from .util import Harness, assert_error, descriptor, push_blob, push_image, sha


async def test_tags_list_and_pagination(reg: Harness) -> None:
    async with reg.client() as c:
        d, man = await push_image(c, "t/r", "b", [b"1"])
        for tag in ["a", "c", "d", "e"]:
            r = await c.put(f"/v2/t/r/manifests/{tag}", data=man,
                            headers={"Content-Type": mt.OCI_MANIFEST})
            assert r.status == 201
        r = await c.get("/v2/t/r/tags/list")
        assert await r.json() == {"name": "t/r", "tags": ["a", "b", "c", "d", "e"]}
        assert "Link" not in r.headers
        r = await c.get("/v2/t/r/tags/list", params={"n": "2"})
        assert (await r.json())["tags"] == ["a", "b"]
        assert r.headers["Link"] == '</v2/t/r/tags/list?last=b&n=2>; rel="next"'
        r = await c.get("/v2/t/r/tags/list", params={"n": "2", "last": "b"})
        assert (await r.json())["tags"] == ["c", "d"]
        r = await c.get("/v2/t/r/tags/list", params={"n": "2", "last": "d"})
        assert (await r.json())["tags"] == ["e"] and "Link" not in r.headers
        r = await c.get("/v2/t/r/tags/list", params={"last": "c"})
        assert (await r.json())["tags"] == ["d", "e"]
        r = await c.get("/v2/t/r/tags/list", params={"n": "0"})
        assert (await r.json())["tags"] == []
        for n in ("-1", "x"):
            r = await c.get("/v2/t/r/tags/list", params={"n": n})
            await assert_error(r, 400, "PAGINATION_NUMBER_INVALID")
        await assert_error(await c.get("/v2/t/nope/tags/list"), 404, "NAME_UNKNOWN")
        await assert_error(await c.get("/v2/t/tags/list"), 404, "NAME_UNKNOWN")  # a prefix only


async def test_repo_with_blobs_but_no_tags(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "only/blobs", b"x")
        r = await c.get("/v2/only/blobs/tags/list")
        assert r.status == 200 and await r.json() == {"name": "only/blobs", "tags": []}


async def test_catalog(reg: Harness) -> None:
    async with reg.client() as c:
        r = await c.get("/v2/_catalog")
        assert await r.json() == {"repositories": []}
        for name in ["b", "a/x", "a", "c/d/e", "a-b"]:
            await push_image(c, name, "1")
        await c.post("/v2/uploads/only/blobs/uploads/")  # a session alone is no repository
        r = await c.get("/v2/_catalog")
        assert (await r.json())["repositories"] == ["a", "a-b", "a/x", "b", "c/d/e"]
        r = await c.get("/v2/_catalog", params={"n": "2"})
        assert (await r.json())["repositories"] == ["a", "a-b"]
        assert r.headers["Link"] == '</v2/_catalog?last=a-b&n=2>; rel="next"'
        r = await c.get("/v2/_catalog", params={"n": "2", "last": "a-b"})
        assert (await r.json())["repositories"] == ["a/x", "b"]
        r = await c.get("/v2/_catalog", params={"n": "5", "last": "b"})
        assert (await r.json())["repositories"] == ["c/d/e"] and "Link" not in r.headers


async def test_referrers(reg: Harness) -> None:
    async with reg.client() as c:
        subject_digest, subject = await push_image(c, "ref", "v1", [b"img"])
        await push_blob(c, "ref", b"{}")
        sig_layer = b"signature"
        await push_blob(c, "ref", sig_layer)
        subj = descriptor(subject, mt.OCI_MANIFEST)

        def artifact(kind: str, note: str) -> bytes:
            return json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": kind,
                "config": {"mediaType": mt.OCI_EMPTY, "digest": sha(b"{}"), "size": 2},
                "layers": [descriptor(sig_layer, "application/octet-stream")],
                "subject": subj, "annotations": {"note": note}}).encode()

        sig, sbom = artifact("application/vnd.example.sig", "s"), artifact("text/spdx", "b")
        for a in (sig, sbom):
            r = await c.put(f"/v2/ref/manifests/{sha(a)}", data=a,
                            headers={"Content-Type": mt.OCI_MANIFEST})
            assert r.status == 201, await r.text()
            assert r.headers["OCI-Subject"] == subject_digest
        r = await c.get(f"/v2/ref/referrers/{subject_digest}")
        assert r.status == 200 and r.headers["Content-Type"] == mt.OCI_INDEX
        index = await r.json()
        assert index["schemaVersion"] == 2 and index["mediaType"] == mt.OCI_INDEX
        got = {m["digest"]: m for m in index["manifests"]}
        assert got[sha(sig)] == {"mediaType": mt.OCI_MANIFEST, "digest": sha(sig),
                                 "size": len(sig), "artifactType": "application/vnd.example.sig",
                                 "annotations": {"note": "s"}}
        assert set(got) == {sha(sig), sha(sbom)}
        r = await c.get(f"/v2/ref/referrers/{subject_digest}",
                        params={"artifactType": "text/spdx"})
        assert r.headers["OCI-Filters-Applied"] == "artifactType"
        assert [m["digest"] for m in (await r.json())["manifests"]] == [sha(sbom)]
        # deleting a referrer removes it from the list
        assert (await c.delete(f"/v2/ref/manifests/{sha(sig)}")).status == 202
        r = await c.get(f"/v2/ref/referrers/{subject_digest}")
        assert [m["digest"] for m in (await r.json())["manifests"]] == [sha(sbom)]
        # unknown subject: an empty index, still 200
        r = await c.get(f"/v2/ref/referrers/{sha(b'nothing')}")
        assert r.status == 200 and (await r.json())["manifests"] == []
        await assert_error(await c.get("/v2/ref/referrers/sha256:zz"), 400, "DIGEST_INVALID")


async def test_referrer_pushed_before_its_subject(reg: Harness) -> None:
    async with reg.client() as c:
        await push_blob(c, "early", b"{}")
        subject = {"mediaType": mt.OCI_MANIFEST, "digest": sha(b"later"), "size": 5}
        art = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                          "config": {"mediaType": mt.OCI_EMPTY, "digest": sha(b"{}"), "size": 2},
                          "layers": [], "subject": subject}).encode()
        r = await c.put("/v2/early/manifests/x", data=art,
                        headers={"Content-Type": mt.OCI_MANIFEST})
        assert r.status == 201 and r.headers["OCI-Subject"] == sha(b"later")
        r = await c.get(f"/v2/early/referrers/{sha(b'later')}")
        [m] = (await r.json())["manifests"]
        assert m["artifactType"] == mt.OCI_EMPTY  # config.mediaType when no artifactType
