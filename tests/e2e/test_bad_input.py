"""Bad input gets docker's status and a clear message, leaves nothing half-created behind,
and the daemon keeps serving."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon


def _status(d: Daemon, method: str, path: str, body: object = None) -> tuple[int, str]:
    status, data = d.request(method, "/v1.47" + path, body)
    message = (
        json.loads(data).get("message", "") if data.strip().startswith(b"{") else data.decode()
    )
    return status, message


@pytest.mark.parametrize(
    "body,needle",
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "must be an object"),
        ({"Image": "busybox", "Cmd": 5}, "cannot unmarshal"),
        ({"Image": "busybox", "Cmd": ["sh", 1]}, "cannot unmarshal"),
        ({"Image": "busybox", "Env": "A=1"}, "cannot unmarshal"),
        ({"Image": "busybox", "Labels": {"a": 1}}, "cannot unmarshal"),
        ({"Image": "busybox", "Tty": "yes"}, "cannot unmarshal"),
        ({"Image": "busybox", "HostConfig": []}, "HostConfig"),
        ({"Cmd": ["true"]}, "Config cannot be empty"),
        (
            {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "syslog"}}},
            "logging driver",
        ),
    ],
)
def test_create_rejects_malformed_bodies(daemon: Daemon, body: object, needle: str) -> None:
    before = daemon.json("GET", "/containers/json?all=1")
    status, message = _status(daemon, "POST", "/containers/create", body)
    assert status == 400 and needle in message
    assert daemon.json("GET", "/containers/json?all=1") == before


def test_create_errors(daemon: Daemon) -> None:
    d = daemon
    assert (
        _status(
            d, "POST", "/containers/create?name=bad%2Fname", {"Image": "busybox", "Cmd": ["true"]}
        )[0]
        == 400
    )
    status, msg = _status(d, "POST", "/containers/create", {"Image": "127.0.0.1:1/nosuch:1"})
    assert status == 404 and msg == "No such image: 127.0.0.1:1/nosuch:1"
    status, msg = _status(
        d, "POST", "/containers/create", {"Image": "busybox", "Entrypoint": [""], "Cmd": []}
    )
    assert status == 400 and msg == "no command specified"


def test_verbs_on_wrong_states_and_unknown_ids(daemon: Daemon) -> None:
    d = daemon
    for method, path in [
        ("GET", "/containers/nope/json"),
        ("POST", "/containers/nope/start"),
        ("POST", "/containers/nope/stop"),
        ("DELETE", "/containers/nope"),
        ("GET", "/containers/nope/logs?stdout=1"),
        ("POST", "/containers/nope/wait"),
    ]:
        status, msg = _status(d, method, path)
        assert (status, msg) == (404, "No such container: nope"), (method, path)
    cid = d.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "100"]})["Id"]
    try:
        assert _status(d, "POST", f"/containers/{cid}/kill")[0] == 409  # not running
        assert d.request("POST", f"/v1.47/containers/{cid}/stop")[0] == 304  # already stopped
        assert d.request("POST", f"/v1.47/containers/{cid}/start")[0] == 204
        assert d.request("POST", f"/v1.47/containers/{cid}/start")[0] == 304  # already started
        status, msg = _status(d, "DELETE", f"/containers/{cid}")
        assert status == 409 and "container is running" in msg
        assert _status(d, "POST", f"/containers/{cid}/kill?signal=NOPE") == (
            400,
            "Invalid signal: NOPE",
        )
        assert _status(d, "POST", f"/containers/{cid}/wait?condition=bogus")[0] == 400
        assert (
            _status(d, "GET", "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")[0]
            == 400
        )
        assert _status(d, "GET", "/containers/json?filters=notjson")[0] == 400
        assert _status(d, "GET", f"/containers/{cid}/logs")[0] == 400  # no stream chosen
        assert _status(d, "POST", f"/containers/{cid}/rename?name=")[0] == 400
    finally:
        assert d.request("DELETE", f"/v1.47/containers/{cid}?force=1")[0] == 204
    assert d.request("GET", "/_ping")[0] == 200


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for ti in entries:
            payload = (data or {}).get(ti.name)
            if payload is not None:
                ti.size = len(payload)
            tar.addfile(ti, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = linkname
    ti.mode = 0o644
    return ti


@pytest.mark.parametrize(
    "tar_bytes",
    [
        b"this is not a tar archive at all" * 100,
        _tar(
            [_entry("ok"), _entry("../../escape-dotdot")], {"ok": b"x", "../../escape-dotdot": b"x"}
        ),
        _tar(
            [_entry("link", tarfile.SYMTYPE, "/tmp"), _entry("link/escape-symlink")],
            {"link/escape-symlink": b"x"},
        ),
        _tar([_entry("hard", tarfile.LNKTYPE, "../../../etc/passwd")]),
    ],
    ids=["garbage", "dotdot", "symlink", "hardlink"],
)
def test_hostile_or_corrupt_import(daemon: Daemon, tar_bytes: bytes) -> None:
    d = daemon
    images_before = d.json("GET", "/images/json?all=1")
    status, body = d.request(
        "POST",
        "/v1.47/images/create?fromSrc=-&repo=hostile&tag=x",
        tar_bytes,
        headers={"Content-Type": "application/x-tar"},
    )
    failed = status >= 400 or b"error" in body
    if not failed:  # neutralised rather than refused: then nothing may have escaped
        d.request("DELETE", "/v1.47/images/hostile:x?force=1")
    assert not Path("/tmp/escape-symlink").exists()
    assert not any(Path(p).name.startswith("escape") for p in Path("/").iterdir())
    assert failed or status == 200
    after = d.json("GET", "/images/json?all=1")
    assert {i["Id"] for i in after} == {i["Id"] for i in images_before}
    assert d.request("GET", "/_ping")[0] == 200


def test_api_versions(daemon: Daemon) -> None:
    assert _status(daemon, "GET", "/version")[0] == 200
    status, data = daemon.request("GET", "/v1.99/version")
    assert status == 400 and b"too new" in data
    status, data = daemon.request("GET", "/v1.10/version")
    assert status == 400 and b"too old" in data
    status, data = daemon.request("GET", "/version")
    assert status == 200 and json.loads(data)["ApiVersion"]
