"""The API root, routing, name validation and the error table."""

from __future__ import annotations

import json

import pytest

from dockyard.registry import errcodes, names
from dockyard.registry.errcodes import RegistryError, error_body
from dockyard.registry.storage.inmemory import InMemoryDriver

from .util import Harness, assert_error, push_image, raw_request


async def test_v2_root(reg: Harness) -> None:
    async with reg.client() as c:
        r = await c.get("/v2/")
        assert r.status == 200
        assert await r.json() == {}
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        r = await c.head("/v2/")
        assert r.status == 200
        r = await c.get("/v2")
        assert r.status == 200


async def test_unknown_route_and_method(reg: Harness) -> None:
    async with reg.client() as c:
        await assert_error(await c.get("/v2/foo/nothing/here"), 404, "NOT_FOUND")
        r = await c.post("/v2/foo/manifests/latest")
        await assert_error(r, 405, "UNSUPPORTED")
        assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
        await assert_error(await c.patch("/v2/foo/blobs/uploads/"), 405, "UNSUPPORTED")


@pytest.mark.parametrize("name", ["Upper/case", "foo/Bar", "a/../b", "..", "a//b", "-a", "a-",
                                  "_a", "a" * 256, "a/_manifests"])
async def test_invalid_names_refused(reg: Harness, name: str) -> None:
    async with reg.client() as c:
        for path in (f"/v2/{name}/tags/list", f"/v2/{name}/manifests/latest",
                     f"/v2/{name}/blobs/uploads/"):
            method = "POST" if path.endswith("uploads/") else "GET"
            # byte for byte: an HTTP client would resolve the ".." itself
            status, reply = await raw_request(c, f"{method} {path} HTTP/1.1\nHost: x\n"
                                                  "Content-Length: 0")
            assert status == 400, reply
            assert b'"NAME_INVALID"' in reply and b"registry/2.0" in reply


def test_name_rules() -> None:
    good = ["a", "library/busybox", "a.b/c_d/e__f/g-h/i--j", "0", "a" * 255]
    bad = ["", "A", "a/", "/a", "a..b", "a._b", "a___b", "a/.b", "a b", "é", "a:b"]
    assert all(names.is_name(n) for n in good)
    assert not any(names.is_name(n) for n in bad)
    assert names.check_tag("v1.0_rc-1") == "v1.0_rc-1"
    for tag in [".x", "-x", "a" * 129, "é", "a/b", ""]:
        with pytest.raises(RegistryError) as ei:
            names.check_tag(tag)
        assert ei.value.code is errcodes.TAG_INVALID
    for d in ["sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "a" * 32,
              "sha256:" + "a" * 64 + "\n", "sha512:" + "a" * 64]:
        with pytest.raises(RegistryError) as ei:
            names.check_digest(d)
        assert ei.value.code is errcodes.DIGEST_INVALID
    assert names.check_digest("sha512:" + "b" * 128)


def test_error_table() -> None:
    table = errcodes.BY_NAME
    spec = {"BLOB_UNKNOWN": 404, "BLOB_UPLOAD_INVALID": 400, "BLOB_UPLOAD_UNKNOWN": 404,
            "DIGEST_INVALID": 400, "MANIFEST_BLOB_UNKNOWN": 400, "MANIFEST_INVALID": 400,
            "MANIFEST_UNKNOWN": 404, "NAME_INVALID": 400, "NAME_UNKNOWN": 404,
            "SIZE_INVALID": 400, "UNAUTHORIZED": 401, "DENIED": 403, "UNSUPPORTED": 405,
            "TOOMANYREQUESTS": 429}
    for code, status in spec.items():
        assert table[code].code == code and table[code].status == status
    assert table["MANIFEST_TOO_LARGE"].status == 413
    assert table["MANIFEST_TOO_LARGE"].code == "MANIFEST_INVALID"
    body = json.loads(error_body(RegistryError(errcodes.BLOB_UNKNOWN, {"digest": "x"})))
    assert body == {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                                "detail": {"digest": "x"}}]}
    body = json.loads(error_body(RegistryError(errcodes.DENIED, message="no")))
    assert body == {"errors": [{"code": "DENIED", "message": "no"}]}


class _BrokenDriver(InMemoryDriver):
    """Storage that fails like a dying disk."""

    def get_content(self, path: str) -> bytes:
        raise OSError(5, "Input/output error")


async def test_internal_error_is_spec_shaped(caplog: pytest.LogCaptureFixture) -> None:
    reg = Harness(_BrokenDriver())
    async with reg.client() as c:
        await push_image(c, "x", "1")
        r = await c.get("/v2/x/manifests/1")
        body = await assert_error(r, 500, "UNKNOWN")
        assert "Input/output error" in body["errors"][0]["message"]
    assert any("unexpected OSError" in m for m in caplog.messages)
