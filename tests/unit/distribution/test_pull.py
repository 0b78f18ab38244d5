"""Pull against the in-process fake registry: manifests, platforms, verification, resume,
redirects, mirrors, concurrency, progress, and the errors docker users see."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import pytest

from dockyard import errors
from dockyard.content.local import LocalContentStore
from dockyard.content.store import read_blob
from dockyard.distribution import DigestMismatch, Distribution, RegistryHosts, pull
from dockyard.distribution.progress import short_id
from dockyard.oci import mediatypes as mt

from .conftest import blob_bytes, ingest_empty, run
from .fakeregistry import FakeRegistry, sha256


def _layers(n: int = 3, size: int = 300_000) -> list[bytes]:
    return [os.urandom(size + i) for i in range(n)]


def _statuses(events: list[dict[str, Any]], id: str | None = None) -> list[str]:
    return [e["status"] for e in events
            if (id is None or e.get("id") == id) and e.get("status") != "Downloading"]


def test_pull_stores_every_blob_and_reports_like_docker(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            layers = _layers()
            img = reg.add_image("team/app", "1", layers)
            events: list[dict[str, Any]] = []
            res = await pull(f"{reg.host}/team/app:1", store=store, progress=events.append)

            assert res.digest == res.manifest_digest == img["digest"]
            assert res.manifest == img["manifest"] and res.media_type == mt.DOCKER_MANIFEST
            assert res.config == img["config_bytes"] and res.config_digest == img["config"]
            assert [x.descriptor.digest for x in res.layers] == img["layers"]
            assert [x.diff_id for x in res.layers] == [sha256(b"diff" + x) for x in layers]
            assert not any(x.existed for x in res.layers)
            assert res.repo_digest == f"{reg.host}/team/app@{img['digest']}"
            for data, d in zip(layers, img["layers"], strict=True):
                assert blob_bytes(store, d) == data
            assert read_blob(store, img["digest"]) == img["manifest"]   # manifest kept too
            assert ingest_empty(store)

            assert events[0] == {"status": "Pulling from team/app", "id": "1"}
            assert events[-1] == {"status": f"Digest: {img['digest']}"}
            lid = short_id(img["layers"][0])
            assert _statuses(events, lid) == ["Pulling fs layer", "Verifying Checksum",
                                              "Download complete"]
            prog = [e for e in events if e["status"] == "Downloading" and e["id"] == lid]
            assert prog and prog[-1]["progressDetail"] == {"current": len(layers[0]),
                                                           "total": len(layers[0])}
            assert prog[-1]["progress"].startswith("[" + "=" * 50 + ">]")

            # the manifest GET asked for every manifest type
            [get] = [s for s in reg.requests("GET", "/manifests/1")]
            accept = {a.strip() for a in get.headers["Accept"].split(",")}
            assert accept == {mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST,
                              mt.DOCKER_MANIFEST}
            assert get.headers.get("Accept-Encoding") == "identity"
    run(go())


def test_second_pull_skips_blobs_already_in_the_store(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = reg.add_image("app", "1", _layers(2))
            await pull(f"{reg.host}/app:1", store=store)
            n_blob_gets = len(reg.requests("GET", "/blobs/"))
            events: list[dict[str, Any]] = []
            res = await pull(f"{reg.host}/app:1", store=store, progress=events.append)
            assert len(reg.requests("GET", "/blobs/")) == n_blob_gets
            assert all(x.existed for x in res.layers)
            assert {"status": "Already exists", "progressDetail": {},
                    "id": short_id(img["layers"][1])} in events
    run(go())


def test_oci_index_picks_the_platform_and_skips_attestations(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            amd = reg.add_image("multi", "", [b"amd64 layer"], oci=True)
            arm = reg.add_image("multi", "", [b"arm layer"], arch="arm", oci=True)
            att = reg.add_manifest("multi", json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": "x", "size": 2, "digest": sha256(b"{}")},
                "layers": []}).encode(), mt.OCI_MANIFEST)

            def entry(img: dict[str, Any], arch: str, variant: str = "",
                      os_: str = "linux") -> dict[str, Any]:
                p = {"architecture": arch, "os": os_, **({"variant": variant} if variant else {})}
                return {"mediaType": mt.OCI_MANIFEST, "digest": img["digest"],
                        "size": len(img["manifest"]), "platform": p}

            index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
                {"mediaType": mt.OCI_MANIFEST, "digest": att, "size": 10,
                 "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
                entry(arm, "arm", "v7"), entry(amd, "amd64")]}).encode()
            idx = reg.add_manifest("multi", index, mt.OCI_INDEX, "latest")

            res = await pull(f"{reg.host}/multi", store=store)
            assert res.digest == idx and res.index_digest == idx and res.index == index
            assert res.manifest_digest == amd["digest"] and res.platform == "linux/amd64"
            assert res.media_type == mt.OCI_MANIFEST
            assert [x.descriptor.digest for x in res.layers] == amd["layers"]
            assert read_blob(store, idx) == index

            res = await pull(f"{reg.host}/multi:latest", store=store, platform="linux/arm/v7")
            assert res.manifest_digest == arm["digest"] and res.platform == "linux/arm/v7"

            with pytest.raises(errors.NotFound) as ei:
                await pull(f"{reg.host}/multi", store=store, platform="linux/s390x")
            assert ei.value.message == \
                "no matching manifest for linux/s390x in the manifest list entries"
    run(go())


def test_corrupt_blob_is_refused_and_nothing_is_committed(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = reg.add_image("app", "1", _layers(2))
            reg.corrupt.add(img["layers"][1])
            with pytest.raises(DigestMismatch) as ei:
                await pull(f"{reg.host}/app:1", store=store)
            assert ei.value.message == \
                f"filesystem layer verification failed for digest {img['layers'][1]}"
            with pytest.raises(errors.NotFound):
                store.info(img["layers"][1])
            assert ingest_empty(store)
    run(go())


def test_oversized_blob_stops_early(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = reg.add_image("app", "1", [b"x" * 1000])
            reg.blobs[img["layers"][0]] = b"x" * 5000     # the registry sends too much
            with pytest.raises(DigestMismatch):
                await pull(f"{reg.host}/app:1", store=store)
            assert ingest_empty(store)
    run(go())


def test_pull_by_digest_verifies_the_manifest(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = reg.add_image("app", "1", _layers(1))
            res = await pull(f"{reg.host}/app@{img['digest']}", store=store)
            assert res.digest == img["digest"]
            events: list[dict[str, Any]] = []
            await pull(f"{reg.host}/app:1@{img['digest']}", store=store, progress=events.append)
            assert events[0] == {"status": "Pulling from app", "id": img["digest"]}
            reg.tamper_manifest.add(("app", img["digest"]))
            with pytest.raises(DigestMismatch):
                await pull(f"{reg.host}/app@{img['digest']}", store=store)
            # by tag, the Docker-Content-Digest header is checked
            reg.tamper_manifest.add(("app", "1"))
            with pytest.raises(DigestMismatch):
                await pull(f"{reg.host}/app:1", store=store)
    run(go())


def test_dropped_connection_resumes_with_range(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            layers = [os.urandom(3 << 20)]
            img = reg.add_image("app", "1", layers)
            reg.drop_after[img["layers"][0]] = 1 << 20
            await pull(f"{reg.host}/app:1", store=store)
            assert blob_bytes(store, img["layers"][0]) == layers[0]
            ranged = [s for s in reg.requests("GET", img["layers"][0]) if "Range" in s.headers]
            assert ranged and ranged[0].headers["Range"].startswith("bytes=")
            assert int(ranged[0].headers["Range"][6:-1]) > 0
    run(go())


def test_resume_starts_over_when_the_server_ignores_range(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(ignore_range=True) as reg:
            layers = [os.urandom(2 << 20)]
            img = reg.add_image("app", "1", layers)
            reg.drop_after[img["layers"][0]] = 700_000
            await pull(f"{reg.host}/app:1", store=store)
            assert blob_bytes(store, img["layers"][0]) == layers[0]
            assert ingest_empty(store)
    run(go())


def test_redirected_blob_gets_no_authorization(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as storage, FakeRegistry(auth="basic") as reg:
            layers = _layers(2)
            img = reg.add_image("app", "1", layers)
            for d in img["layers"] + [img["config"]]:
                storage.blobs[d] = reg.blobs[d]
            reg.redirect_to = storage.base           # another origin (another port)
            await pull(f"{reg.host}/app:1", store=store,
                       auth={"username": "user", "password": "pass"})
            for data, d in zip(layers, img["layers"], strict=True):
                assert blob_bytes(store, d) == data
            direct = storage.requests("GET", "/direct/")
            assert len(direct) == 3
            assert all("Authorization" not in s.headers for s in direct)
            # while the registry itself always got the credentials
            assert all("Authorization" in s.headers for s in reg.requests("GET", "/blobs/"))
    run(go())


def test_layers_download_concurrently_and_on_layer_runs_in_order(
        store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(blob_delay=0.01) as reg:
            img = reg.add_image("app", "1", _layers(5, 1 << 20))
            seen: list[str] = []

            async def on_layer(layer: Any) -> None:
                seen.append(layer.descriptor.digest)
                store.info(layer.descriptor.digest)        # it is there already

            events: list[dict[str, Any]] = []
            async with Distribution(max_concurrent_downloads=3) as dist:
                await dist.pull(f"{reg.host}/app:1", store=store, on_layer=on_layer,
                                progress=events.append)
            assert seen == img["layers"]
            assert reg.max_active_blob_gets == 3
            assert "Waiting" in _statuses(events)
    run(go())


def test_missing_manifest_and_repository_errors(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            reg.add_image("app", "1", _layers(1))
            with pytest.raises(errors.NotFound) as ei:
                await pull(f"{reg.host}/app:nope", store=store)
            assert ei.value.message == (f"manifest for {reg.host}/app:nope not found: "
                                        "manifest unknown: manifest unknown")
            with pytest.raises(errors.NotFound) as ei:
                await pull(f"{reg.host}/nosuch", store=store)
            assert ei.value.message == (f"repository {reg.host}/nosuch not found: "
                                        "name unknown: repository name not known to registry")
    run(go())


def test_schema1_is_refused(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            reg.add_manifest("old", b'{"schemaVersion":1,"name":"old","tag":"1","fsLayers":[],'
                             b'"signatures":[]}', mt.DOCKER_MANIFEST_V1_SIGNED, "1")
            with pytest.raises(errors.Unsupported) as ei:
                await pull(f"{reg.host}/old:1", store=store)
            assert "schema 1 support is disabled" in ei.value.message
    run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_registry_is_unavailable(store: LocalContentStore) -> None:
    port = _free_port()
    with pytest.raises(errors.Unavailable) as ei:
        run(pull(f"127.0.0.1:{port}/app:1", store=store))
    assert ei.value.message == \
        f'Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: connection refused'


def test_mirror_is_tried_first_and_falls_back(store: LocalContentStore) -> None:
    """Docker Hub names go to the mirrors first. ``hub_url`` points "Docker Hub" at a
    loopback server: nothing here leaves the machine."""
    async def go() -> None:
        async with FakeRegistry() as hub, FakeRegistry() as mirror, FakeRegistry() as empty:
            layers = _layers(1)
            hub.add_image("library/busybox", "latest", layers)
            mirror.add_image("library/busybox", "latest", layers)
            dead = f"http://127.0.0.1:{_free_port()}"

            def dist(*mirrors: str) -> Distribution:
                return Distribution(hosts=RegistryHosts(mirrors, hub_url=hub.base))

            # a working mirror serves the pull; the hub is not asked
            async with dist(mirror.base) as d:
                await d.pull("busybox", store=store)
            assert mirror.requests("GET", "/manifests/latest") and not hub.seen

            # a dead mirror, then a mirror without the image: the hub serves it
            async with dist(dead, empty.base) as d:
                res = await d.pull("busybox:latest", store=LocalContentStore(store.root / "2"))
            assert empty.requests("GET", "/manifests/latest")
            assert hub.requests("GET", "/manifests/latest")
            assert res.reference.name == "docker.io/library/busybox"
    run(go())


def test_concurrent_pulls_of_one_image_share_downloads(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(blob_delay=0.005) as reg:
            img = reg.add_image("app", "1", _layers(2, 1 << 20))
            async with Distribution() as dist:
                a, b = await asyncio.gather(dist.pull(f"{reg.host}/app:1", store=store),
                                            dist.pull(f"{reg.host}/app:1", store=store))
            assert a.digest == b.digest
            for d in img["layers"]:
                assert len(reg.requests("GET", d)) == 1
            assert ingest_empty(store)
    run(go())


def test_pull_all_tags_follows_pagination(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(tag_page=2) as reg:
            for t in ("a", "b", "c"):
                reg.add_image("app", t, [t.encode() * 100])
            async with Distribution() as dist:
                assert await dist.list_tags(f"{reg.host}/app") == ["a", "b", "c"]
                assert len(reg.requests("GET", "/tags/list")) == 2
                res = await dist.pull_all_tags(f"{reg.host}/app", store=store)
            assert [r.reference.tag for r in res] == ["a", "b", "c"]
    run(go())
