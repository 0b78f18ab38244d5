"""The pure parts of the registry client: hosts and schemes, challenges, credentials, token
cache, progress strings, descriptors, manifests and platform selection."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard import errors
from dockyard.distribution import (
    Credentials,
    Descriptor,
    Platform,
    RegistryHosts,
    TokenCache,
    build_manifest,
    build_schema2_manifest,
    decode_registry_auth,
    normalize_registry,
    parse_www_authenticate,
    select_platform,
)
from dockyard.distribution.manifest import detect_media_type, parse_manifest
from dockyard.distribution.progress import human_size, layer_progress, progress_bar, short_id
from dockyard.distribution.transport import error_from_response
from dockyard.oci import mediatypes as mt

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
D3 = "sha256:" + "c" * 64


# -- hosts --------------------------------------------------------------------------------

def test_loopback_and_listed_registries_are_insecure() -> None:
    h = RegistryHosts(insecure=["myreg.local:5000", "10.1.0.0/16", "http://other:8080/"])
    for host in ("127.0.0.1:5000", "127.5.6.7", "localhost:5000", "[::1]:5000",
                 "myreg.local:5000", "10.1.2.3:443", "other:8080"):
        assert h.is_insecure(host), host
    for host in ("registry.example.com", "myreg.local:5001", "10.2.0.1", "8.8.8.8:5000"):
        assert not h.is_insecure(host), host


def test_endpoints_follow_dockers_scheme_rule() -> None:
    h = RegistryHosts()
    eps = h.endpoints("127.0.0.1:5000")
    assert [str(e) for e in eps] == ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    assert not eps[0].tls_verify and eps[1].host == "127.0.0.1:5000"
    eps = h.endpoints("registry.example.com")
    assert [str(e) for e in eps] == ["https://registry.example.com"] and eps[0].tls_verify


def test_docker_hub_mirrors_come_first_for_pulls_only() -> None:
    h = RegistryHosts(mirrors=["http://127.0.0.1:9/", "https://mirror.example"])
    pull = h.endpoints("docker.io")
    assert [str(e) for e in pull] == ["http://127.0.0.1:9", "https://mirror.example",
                                      "https://registry-1.docker.io"]
    assert pull[0].mirror and pull[1].mirror and not pull[2].mirror
    assert [str(e) for e in h.endpoints("docker.io", push=True)] == [
        "https://registry-1.docker.io"]
    # mirrors are for docker.io only
    assert [str(e) for e in h.endpoints("127.0.0.1:5000")][0] == "https://127.0.0.1:5000"
    with pytest.raises(errors.InvalidArgument):
        RegistryHosts(mirrors=["ftp://x"])
    with pytest.raises(errors.InvalidArgument):
        RegistryHosts(mirrors=["https://x/some/path"])


def test_normalize_registry() -> None:
    assert normalize_registry("https://index.docker.io/v1/") == "docker.io"
    assert normalize_registry("") == "docker.io"
    assert normalize_registry("index.docker.io") == "docker.io"
    assert normalize_registry("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert normalize_registry("127.0.0.1:5000") == "127.0.0.1:5000"


# -- challenges and credentials -----------------------------------------------------------

def test_parse_bearer_challenge() -> None:
    [c] = parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"')
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.service == "registry.docker.io"
    assert c.scopes == ("repository:library/busybox:pull",)


def test_parse_several_challenges_quotes_and_escapes() -> None:
    cs = parse_www_authenticate([
        'Bearer realm="http://h/token", service="svc", scope="repository:a:pull '
        'repository:b:pull,push", error="insufficient_scope", Basic realm="x \\"y\\", z"',
        "Basic realm=plain",
    ])
    assert [c.scheme for c in cs] == ["bearer", "basic", "basic"]
    assert cs[0].scopes == ("repository:a:pull", "repository:b:pull,push")
    assert cs[0].params["error"] == "insufficient_scope"
    assert cs[1].realm == 'x "y", z'
    assert cs[2].realm == "plain"
    assert parse_www_authenticate("Basic")[0].params == {}
    assert parse_www_authenticate("") == []


def test_decode_registry_auth_base64url_without_padding() -> None:
    doc = {"username": "tracer", "password": "tracerpass", "serveraddress": "127.0.0.1:5000"}
    raw = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    assert decode_registry_auth(raw) == doc
    # the header recorded in traces/push.txt
    assert decode_registry_auth(
        "eyJ1c2VybmFtZSI6InRyYWNlciIsInBhc3N3b3JkIjoidHJhY2VycGFzcyIsInNlcnZlcmFkZHJlc3MiOiIx"
        "MjcuMC4wLjE6NTAwMCJ9") == doc
    assert decode_registry_auth("") == {}
    with pytest.raises(errors.InvalidArgument):
        decode_registry_auth("!!!not-base64")


def test_credentials_from_auth_config() -> None:
    c = Credentials.from_auth_config({"username": "u", "password": "p", "serveraddress": "h"})
    assert c is not None and (c.username, c.password, c.server_address) == ("u", "p", "h")
    c = Credentials.from_auth_config({"auth": base64.b64encode(b"u2:p:w").decode()})
    assert c is not None and (c.username, c.password) == ("u2", "p:w")
    c = Credentials.from_auth_config({"IdentityToken": "tok"})
    assert c is not None and c.identity_token == "tok"
    assert Credentials.from_auth_config({}) is None
    assert Credentials.from_auth_config(None) is None
    assert "p" not in repr(Credentials("u", "secretpw"))


def test_token_cache_expiry_with_a_floor_of_sixty_seconds() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put(("k",), "t1", 300)
    cache.put(("short",), "t2", 5)              # too short: dockerd uses at least 60 s
    now[0] += 50
    assert cache.get(("k",)) == "t1" and cache.get(("short",)) == "t2"
    now[0] += 10
    assert cache.get(("short",)) is None
    now[0] += 240
    assert cache.get(("k",)) is None           # refreshed a little before it runs out
    cache.put(("k",), "t3", 300)
    cache.drop("t3")
    assert cache.get(("k",)) is None and len(cache) == 0
    for i in range(300):                      # expired entries are pruned as it grows
        cache.put((str(i),), "t", 60)
    now[0] += 100
    cache.put(("new",), "t", 60)
    assert len(cache) <= 300 - 256 + 1


# -- errors -------------------------------------------------------------------------------

def test_registry_error_bodies_map_to_dockyard_errors() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                   "detail": {"Tag": "x"}}]}).encode()
    e = error_from_response(404, body)
    assert isinstance(e, errors.NotFound) and e.message == "manifest unknown: manifest unknown"
    assert e.codes[0].code == "MANIFEST_UNKNOWN" and e.status == 404  # type: ignore[attr-defined]
    e = error_from_response(401, b"")
    assert isinstance(e, errors.Unauthorized)
    assert e.message == "unauthorized: authentication required"
    e = error_from_response(403, b'{"errors":[{"code":"DENIED","message":"requested access '
                                 b'to the resource is denied"}]}')
    assert isinstance(e, errors.PermissionDenied)
    assert e.message == "denied: requested access to the resource is denied"
    e = error_from_response(500, b"oops")
    assert isinstance(e, errors.Internal)
    assert e.message == "received unexpected HTTP status: 500 Internal Server Error"
    assert isinstance(error_from_response(503, b""), errors.Unavailable)
    two = json.dumps({"errors": [{"code": "BLOB_UNKNOWN", "message": "a"},
                                 {"code": "DIGEST_INVALID", "message": "b"}]}).encode()
    assert error_from_response(400, two).message == "errors:\nblob unknown: a\ndigest invalid: b\n"


# -- progress -----------------------------------------------------------------------------

def test_progress_strings_match_dockerd() -> None:
    # the exact strings of traces/push.txt
    assert progress_bar(68608, 4326768) == \
        "[>" + " " * 50 + "]  68.61kB/4.327MB"
    assert progress_bar(986112, 4326768) == \
        "[" + "=" * 11 + ">" + " " * 39 + "]  986.1kB/4.327MB"
    assert progress_bar(2296832, 4326768) == \
        "[" + "=" * 26 + ">" + " " * 24 + "]  2.297MB/4.327MB"
    assert progress_bar(4474880, 4326768) == "[" + "=" * 50 + ">]  4.475MB"
    assert human_size(0) == "0B" and human_size(999) == "999B" and human_size(1000) == "1kB"
    assert human_size(1_234_567_890) == "1.235GB"
    assert short_id(D1) == "a" * 12
    ev = layer_progress("Downloading", "abc", 1, 2)
    assert list(ev) == ["status", "progressDetail", "progress", "id"]
    assert ev["progressDetail"] == {"current": 1, "total": 2}


# -- descriptors and manifests ------------------------------------------------------------

def test_schema2_manifest_is_formatted_like_dockers() -> None:
    cfg = Descriptor(mt.DOCKER_CONFIG, D1, 1457)
    layer = Descriptor(mt.OCI_LAYER_GZIP, D2, 2591575)
    body = build_schema2_manifest(cfg, [layer])
    doc = json.loads(body)
    assert doc["mediaType"] == mt.DOCKER_MANIFEST
    assert doc["layers"][0]["mediaType"] == mt.DOCKER_LAYER_GZIP
    assert body.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": ')
    assert list(doc["config"]) == ["mediaType", "size", "digest"]
    # a one-layer busybox manifest pushed by docker is 528 bytes (traces/push.txt)
    assert len(body) == 528
    assert not body.endswith(b"\n")


def test_build_manifest_falls_back_to_oci_for_uncompressed_layers() -> None:
    cfg = Descriptor(mt.DOCKER_CONFIG, D1, 10)
    data, media = build_manifest(cfg, [Descriptor(mt.DOCKER_LAYER_GZIP, D2, 5)])
    assert media == mt.DOCKER_MANIFEST
    data, media = build_manifest(cfg, [Descriptor(mt.OCI_LAYER, D2, 5)])
    assert media == mt.OCI_MANIFEST
    doc = json.loads(data)
    assert doc["config"]["mediaType"] == mt.OCI_CONFIG
    assert doc["layers"][0]["mediaType"] == mt.OCI_LAYER
    data, media = build_manifest(cfg, [Descriptor(mt.DOCKER_LAYER_GZIP, D2, 5)],
                                 media_type=mt.OCI_MANIFEST)
    assert json.loads(data)["layers"][0]["mediaType"] == mt.OCI_LAYER_GZIP
    with pytest.raises(errors.InvalidArgument):
        build_schema2_manifest(cfg, [Descriptor(mt.OCI_LAYER_ZSTD, D2, 5)])


def test_descriptor_validation() -> None:
    d = Descriptor.from_dict({"mediaType": "x", "size": 3, "digest": D1, "urls": ["u"]})
    assert d.to_dict() == {"mediaType": "x", "size": 3, "digest": D1, "urls": ["u"]}
    for bad in ({"size": 3}, {"digest": "sha256:xyz", "size": 1},
                {"digest": D1, "size": -1}, {"digest": D1, "size": "3"}):
        with pytest.raises(errors.InvalidArgument):
            Descriptor.from_dict(bad)


def test_detect_media_type() -> None:
    assert detect_media_type(mt.OCI_INDEX + "; charset=utf-8", b"{}") == mt.OCI_INDEX
    assert detect_media_type("application/json", b'{"schemaVersion":2,"manifests":[]}') == \
        mt.OCI_INDEX
    assert detect_media_type("text/plain", b'{"schemaVersion":2,"config":{},"layers":[]}') == \
        mt.OCI_MANIFEST
    assert detect_media_type("application/json",
                             b'{"schemaVersion":1,"signatures":[]}') == mt.DOCKER_MANIFEST_V1_SIGNED
    with pytest.raises(errors.Unsupported):
        parse_manifest(b'{"schemaVersion":1}', mt.DOCKER_MANIFEST_V1_SIGNED)
    with pytest.raises(errors.InvalidArgument):
        parse_manifest(b"[]", mt.OCI_MANIFEST)


def _entry(digest: str, arch: str, variant: str = "", os: str = "linux",
           **ann: str) -> dict[str, object]:
    p = {"architecture": arch, "os": os}
    if variant:
        p["variant"] = variant
    e: dict[str, object] = {"mediaType": mt.OCI_MANIFEST, "size": 10, "digest": digest,
                            "platform": p}
    if ann:
        e["annotations"] = ann
    return e


def test_select_platform_skips_attestations_and_honours_variants() -> None:
    index = {"manifests": [
        _entry(D3, "unknown", os="unknown",
               **{"vnd.docker.reference.type": "attestation-manifest"}),
        _entry(D1, "arm64", "v8"),
        _entry(D2, "amd64"),
        _entry(D3, "arm", "v6"),
        _entry("sha256:" + "d" * 64, "arm", "v7"),
    ]}
    assert select_platform(index, "linux/amd64").digest == D2
    assert select_platform(index, "linux/arm64").digest == D1
    assert select_platform(index, "linux/aarch64").digest == D1
    assert select_platform(index, "linux/arm/v7").digest == "sha256:" + "d" * 64
    assert select_platform(index, "linux/arm/v6").digest == D3
    # only v6 and v5 on offer: an arm/v7 host takes the newest it can run
    older = {"manifests": [_entry(D1, "arm", "v5"), _entry(D2, "arm", "v6")]}
    assert select_platform(older, "linux/arm/v7").digest == D2
    assert select_platform(older, "linux/arm/v5").digest == D1
    with pytest.raises(errors.NotFound):
        select_platform(older, "linux/amd64")
    with pytest.raises(errors.NotFound) as ei:
        select_platform(index, "linux/s390x")
    assert ei.value.message == "no matching manifest for linux/s390x in the manifest list entries"
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64"
    assert str(Platform.parse("linux/armhf")) == "linux/arm"


def test_exported_names() -> None:
    import dockyard.distribution as dist

    assert sorted(dist.__all__) == sorted([
        "Credentials", "Descriptor", "DigestMismatch", "Distribution", "Platform",
        "PullResult", "PulledLayer", "PushResult", "RegistryClient", "RegistryHosts",
        "TokenCache", "Transport", "build_manifest", "build_schema2_manifest",
        "decode_registry_auth", "login", "normalize_registry", "parse_www_authenticate",
        "pull", "pull_all_tags", "push", "select_platform", "short_id",
    ])
    assert all(hasattr(dist, name) for name in dist.__all__)
