"""Images travel: pull, push, login, commit, tag, rmi, save/load through dockyardd, driven
by our ``dockyard`` CLI and the docker CLI 28, against ``dockyard-registry`` and Debian's
``docker-registry``. Every image name that could reach a registry is ``127.0.0.1:PORT/...``;
each test removes the images and containers it made."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.content.local import LocalContentStore
from dockyard.image.verify import verify_content

from .conftest import BUSYBOX_TAR, Daemon, has_docker_cli
from .registries import (
    PASSWORD,
    USER,
    Registry,
    debian_registry,
    dockyard_registry,
    have_debian_registry,
)

needs_docker = pytest.mark.skipif(not has_docker_cli(), reason="the docker CLI is not installed")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reg() -> Iterator[Registry]:
    with dockyard_registry() as r:
        yield r


@pytest.fixture(scope="module", params=["dockyard-registry", "docker-registry"])
def any_reg(request: pytest.FixtureRequest) -> Iterator[Registry]:
    if request.param == "docker-registry":
        if not have_debian_registry():
            pytest.skip("Debian's docker-registry is not installed")
        with debian_registry() as r:
            yield r
    else:
        with dockyard_registry() as r:
            yield r


@pytest.fixture(scope="module", params=["dockyard-registry", "dockyard-registry-token",
                                        "docker-registry"])
def auth_reg(request: pytest.FixtureRequest) -> Iterator[Registry]:
    if request.param == "docker-registry":
        if not have_debian_registry():
            pytest.skip("Debian's docker-registry is not installed")
        with debian_registry(auth=True) as r:
            yield r
    else:
        with dockyard_registry(auth=True, token=request.param.endswith("token")) as r:
            yield r


class Tracker:
    """Removes, at the end of a test, every container it made and every image that was not
    there when it began."""

    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.before = {i["Id"] for i in d.json("GET", "/images/json?all=1")}
        self.containers: list[str] = []

    def container(self, name: str) -> str:
        self.containers.append(name)
        return name

    def cleanup(self) -> None:
        for c in self.containers:
            self.d.request("DELETE", f"/containers/{c}?force=1")
        for _ in range(3):
            new = [i for i in self.d.json("GET", "/images/json?all=1")
                   if i["Id"] not in self.before]
            if not new:
                break
            for i in new:
                for t in i.get("RepoTags") or []:
                    self.d.request("DELETE", f"/images/{t}")
                self.d.request("DELETE", f"/images/{i['Id']}?force=1")
        for i in self.d.json("GET", "/images/json?all=1"):   # names a test added to busybox
            if i["Id"] in self.before:
                for t in i.get("RepoTags") or []:
                    if t.startswith("127.0.0.1:"):
                        self.d.request("DELETE", f"/images/{t}")


@pytest.fixture
def track(daemon: Daemon) -> Iterator[Tracker]:
    t = Tracker(daemon)
    try:
        yield t
    finally:
        t.cleanup()


def uniq(prefix: str = "img") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_rootfs(marker: str) -> bytes:
    """The busybox rootfs plus ``/unique`` holding ``marker``: a layer no other image has."""
    out = io.BytesIO()
    with tarfile.open(BUSYBOX_TAR) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        data = marker.encode() + b"\n"
        ti = tarfile.TarInfo("unique")
        ti.size, ti.mode = len(data), 0o644
        dst.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def import_unique(d: Daemon, ref: str, marker: str) -> str:
    status, body = d.request("POST", f"/images/create?fromSrc=-&repo={ref}",
                             unique_rootfs(marker), headers={"Content-Type": "application/x-tar"},
                             timeout=120)
    assert status == 200 and b"error" not in body, body
    return json.loads(body)["status"]


def seed(d: Daemon, registry: Registry, repo: str, tag: str = "latest") -> tuple[str, str]:
    """Push a unique image as ``registry/repo:tag`` and remove it locally; returns
    (full reference, marker)."""
    marker = uniq("marker")
    ref = f"{registry.host}/{repo}:{tag}"
    import_unique(d, ref, marker)
    d.dockyard("push", ref, check=True, timeout=120)
    d.dockyard("rmi", ref, check=True)
    return ref, marker


def digest_of(push_output: str, tag: str) -> str:
    m = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: \d+$",
                  push_output, re.M)
    assert m, push_output
    return m.group(1)


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    return d.json("GET", f"/images/{name}/json")


# -- pull and push ----------------------------------------------------------------------------

def test_push_and_pull_with_our_cli(daemon: Daemon, any_reg: Registry, track: Tracker) -> None:
    d = daemon
    repo = f"{any_reg.host}/e2e/{uniq('pp')}"
    marker = uniq("m")
    import_unique(d, f"{repo}:1", marker)

    p1 = d.dockyard("push", f"{repo}:1", check=True, timeout=120)
    assert f"The push refers to repository [{repo}]" in p1.stdout
    assert "Pushed" in p1.stdout
    digest = digest_of(p1.stdout, "1")
    p2 = d.dockyard("push", f"{repo}:1", check=True)
    assert "Layer already exists" in p2.stdout
    assert digest_of(p2.stdout, "1") == digest          # a second push sends the same bytes
    assert f"{repo}@{digest}" in inspect(d, f"{repo}:1")["RepoDigests"]
    listing = d.dockyard("images", "--digests", repo, check=True).stdout
    assert digest in listing

    d.dockyard("rmi", f"{repo}:1", check=True)
    pulled = d.dockyard("pull", f"{repo}:1", check=True, timeout=120)
    lines = pulled.stdout.splitlines()
    assert lines[0] == f"1: Pulling from {repo.split('/', 1)[1]}"
    assert any(x.endswith(": Pull complete") for x in lines), pulled.stdout
    assert f"Digest: {digest}" in lines
    assert f"Status: Downloaded newer image for {repo}:1" in lines
    assert lines[-1] == f"{repo}:1"
    again = d.dockyard("pull", f"{repo}:1", check=True)
    assert f"Status: Image is up to date for {repo}:1" in again.stdout
    assert "Already exists" in again.stdout

    info = inspect(d, f"{repo}:1")
    assert info["RepoTags"] == [f"{repo}:1"]
    assert info["RepoDigests"] == [f"{repo}@{digest}"]
    out = d.dockyard("run", "--rm", f"{repo}:1", "cat", "/unique", check=True)
    assert out.stdout.strip() == marker
    # pushing the pulled image to another repository sends the same manifest
    other = f"{any_reg.host}/e2e/{uniq('copy')}:x"
    d.dockyard("tag", f"{repo}:1", other, check=True)
    p3 = d.dockyard("push", other, check=True)
    assert digest_of(p3.stdout, "x") == digest
    assert f"Mounted from {repo.split('/', 1)[1]}" in p3.stdout     # cross-repository mount


@needs_docker
def test_docker_cli_tag_push_rmi_pull(daemon: Daemon, any_reg: Registry, track: Tracker) -> None:
    d = daemon
    src = f"{any_reg.host}/e2e/{uniq('src')}:1"
    marker = uniq("m")
    iid = import_unique(d, src, marker)
    dst = f"{any_reg.host}/e2e/{uniq('dk')}:v2"
    d.docker("tag", src, dst, check=True)
    assert dst in inspect(d, iid)["RepoTags"]
    pushed = d.docker("push", dst, check=True, timeout=120)
    assert f"The push refers to repository [{dst.rsplit(':', 1)[0]}]" in pushed.stdout
    digest = digest_of(pushed.stdout, "v2")

    out = d.docker("rmi", dst, src, check=True).stdout
    assert f"Untagged: {dst}" in out and f"Untagged: {src}" in out
    assert f"Deleted: {iid}" in out
    assert d.request("GET", f"/images/{iid}/json")[0] == 404

    pulled = d.docker("pull", dst, check=True, timeout=120)
    assert f"Digest: {digest}" in pulled.stdout
    assert f"Status: Downloaded newer image for {dst}" in pulled.stdout
    assert pulled.stdout.strip().splitlines()[-1] == dst
    assert inspect(d, dst)["Id"] == iid              # the image id survives the round trip
    listing = d.docker("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}",
                       check=True).stdout
    assert f"{dst} {digest}" in listing
    again = d.docker("pull", dst, check=True)
    assert f"Image is up to date for {dst}" in again.stdout
    run = d.docker("run", "--rm", dst, "cat", "/unique", check=True)
    assert run.stdout.strip() == marker


@pytest.mark.parametrize("cli", ["dockyard", pytest.param("docker", marks=needs_docker)])
def test_run_pulls_a_missing_image(daemon: Daemon, reg: Registry, track: Tracker,
                                   cli: str) -> None:
    d = daemon
    ref, marker = seed(d, reg, f"e2e/{uniq('run')}")
    name = ref.rsplit(":", 1)[0]
    status, body = d.request("POST", "/containers/create", {"Image": name, "Cmd": ["true"]})
    assert status == 404
    assert json.loads(body)["message"] == f"No such image: {name}:latest"
    run = getattr(d, cli)("run", "--rm", name, "cat", "/unique", timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"Unable to find image '{name}:latest' locally" in run.stderr
    assert f"Status: Downloaded newer image for {name}:latest" in run.stderr
    assert run.stdout.strip() == marker


def test_pull_by_digest_all_tags_and_index(daemon: Daemon, reg: Registry,
                                           track: Tracker) -> None:
    d = daemon
    repo = f"{reg.host}/e2e/{uniq('dg')}"
    import_unique(d, f"{repo}:a", uniq("m"))
    d.dockyard("tag", f"{repo}:a", f"{repo}:b", check=True)
    digest = digest_of(d.dockyard("push", f"{repo}:a", check=True).stdout, "a")
    d.dockyard("push", f"{repo}:b", check=True)
    d.dockyard("rmi", f"{repo}:a", f"{repo}:b", check=True)

    by_digest = d.dockyard("pull", f"{repo}@{digest}", check=True)
    assert f"Status: Downloaded newer image for {repo}@{digest}" in by_digest.stdout
    info = inspect(d, f"{repo}@{digest}")
    assert info["RepoTags"] == [] and info["RepoDigests"] == [f"{repo}@{digest}"]
    d.dockyard("rmi", f"{repo}@{digest}", check=True)

    every = d.dockyard("pull", "--all-tags", repo, check=True)
    assert f"Status: Downloaded newer image for {repo}" in every.stdout
    assert sorted(inspect(d, f"{repo}:a")["RepoTags"]) == [f"{repo}:a", f"{repo}:b"]

    # a multi-platform index over the same manifest: the platform entry is picked
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{reg.host}/v2/{repo.split('/', 1)[1]}/manifests/{digest}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})) as r:
        manifest = r.read()
        mtype = r.headers["Content-Type"]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": mtype, "digest": digest, "size": len(manifest),
         "platform": {"os": "linux", "architecture": arch}} for arch in ("arm64", "amd64")]}
    ).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{reg.host}/v2/{repo.split('/', 1)[1]}/manifests/multi", data=index,
        method="PUT", headers={"Content-Type": OCI_INDEX})).close()
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()
    multi = d.dockyard("pull", "--platform", "linux/amd64", f"{repo}:multi", check=True)
    assert f"Digest: {index_digest}" in multi.stdout
    assert f"{repo}@{index_digest}" in inspect(d, f"{repo}:multi")["RepoDigests"]
    wrong = d.dockyard("pull", "--platform", "linux/arm64", f"{repo}:a")
    assert wrong.returncode != 0
    assert "does not match the specified platform" in wrong.stderr + wrong.stdout


# -- login ------------------------------------------------------------------------------------

def test_login_with_both_clients(daemon: Daemon, auth_reg: Registry, track: Tracker) -> None:
    d = daemon
    host = auth_reg.host
    ref = f"{host}/e2e/{uniq('auth')}:1"
    marker = uniq("m")
    import_unique(d, ref, marker)
    try:
        bad = d.dockyard("login", "-u", USER, "--password-stdin", host, input=b"wrong\n")
        assert bad.returncode == 1
        assert "unauthorized" in bad.stderr.lower()      # Basic: "... 401 Unauthorized"
        if has_docker_cli():
            bad = d.docker("login", "-u", USER, "--password-stdin", host, input=b"wrong\n")
            assert bad.returncode == 1 and "unauthorized" in bad.stderr.lower()

        denied = d.dockyard("push", ref)
        assert denied.returncode == 1
        assert "unauthorized" in (denied.stderr + denied.stdout).lower()

        if has_docker_cli():
            ok = d.docker("login", "-u", USER, "--password-stdin", host,
                          input=PASSWORD.encode() + b"\n", check=True)
        else:
            ok = d.dockyard("login", "-u", USER, "--password-stdin", host,
                            input=PASSWORD.encode() + b"\n", check=True)
        assert "Login Succeeded" in ok.stdout
        cfg = json.loads((d.docker_config / "config.json").read_text())
        assert host in cfg["auths"]
        d.dockyard("push", ref, check=True)      # credentials stored by the other client
        d.dockyard("rmi", ref, check=True)
        d.dockyard("pull", ref, check=True)
        d.dockyard("logout", host, check=True)
        d.dockyard("rmi", ref, check=True)
        anon = d.dockyard("pull", ref)
        assert anon.returncode == 1
        assert "unauthorized" in anon.stderr.lower() or "denied" in anon.stderr.lower()
        d.dockyard("login", "-u", USER, "--password-stdin", host,
                   input=PASSWORD.encode() + b"\n", check=True)
        pull = (d.docker if has_docker_cli() else d.dockyard)("pull", ref, check=True)
        assert f"Status: Downloaded newer image for {ref}" in pull.stdout
    finally:
        d.dockyard("logout", host)


# -- commit -----------------------------------------------------------------------------------

def _wait_exited(d: Daemon, name: str) -> None:
    status, body = d.request("POST", f"/containers/{name}/wait", timeout=60)
    assert status == 200, body


def test_commit_with_our_cli(daemon: Daemon, reg: Registry, track: Tracker) -> None:
    d = daemon
    c = track.container(uniq("commit"))
    script = ("echo hi > /newfile && rm /bin/vi && mkdir -p /data && echo x > /data/f && "
              "rm -rf /usr && mkdir -p /usr && echo only > /usr/only")
    d.dockyard("run", "--name", c, "busybox", "sh", "-c", script, check=True)
    ref = f"{reg.host}/e2e/{uniq('committed')}:v1"
    out = d.dockyard("commit", "-m", "my message", "-a", "Jane <jane@example.com>",
                     "-c", "ENV FOO=bar", "-c", 'CMD ["cat", "/newfile"]', c, ref, check=True)
    iid = out.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid)
    info = inspect(d, ref)
    parent = inspect(d, "busybox")
    assert info["Id"] == iid
    assert info["Parent"] == parent["Id"]
    assert info["Comment"] == "my message"
    assert info["Author"] == "Jane <jane@example.com>"
    assert "FOO=bar" in info["Config"]["Env"]
    assert info["Config"]["Cmd"] == ["cat", "/newfile"]
    assert info["RootFS"]["Layers"][:-1] == parent["RootFS"]["Layers"]
    assert len(info["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
    hist = d.json("GET", f"/images/{ref}/history")
    assert hist[0]["Comment"] == "my message" and hist[0]["Id"] == iid
    assert hist[0]["CreatedBy"].startswith("sh -c echo hi")

    assert d.dockyard("run", "--rm", ref, check=True).stdout == "hi\n"
    check = ("test ! -e /bin/vi && test -x /bin/sh && cat /data/f && ls /usr && "
             "echo $FOO")
    got = d.dockyard("run", "--rm", ref, "sh", "-c", check, check=True).stdout.split()
    assert got == ["x", "only", "bar"]

    pushed = d.dockyard("push", ref, check=True, timeout=120)
    digest = digest_of(pushed.stdout, "v1")
    d.dockyard("rmi", ref, check=True)
    d.dockyard("pull", ref, check=True)
    assert inspect(d, ref)["Id"] == iid
    assert d.dockyard("run", "--rm", ref, "cat", "/data/f", check=True).stdout == "x\n"
    assert f"{ref.rsplit(':', 1)[0]}@{digest}" in inspect(d, ref)["RepoDigests"]


@needs_docker
def test_commit_with_docker_cli_running_and_unchanged(daemon: Daemon, track: Tracker) -> None:
    d = daemon
    c = track.container(uniq("running"))
    d.docker("run", "-d", "--name", c, "busybox", "sh", "-c",
             "echo live > /live; touch /ready; sleep 300", check=True)
    upper = Path(d.json("GET", f"/containers/{c}/json")["GraphDriver"]["Data"]["UpperDir"])
    for _ in range(200):
        if (upper / "ready").exists():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the container never got ready")
    repo = f"127.0.0.1:1/e2e/{uniq('dcommit')}"      # a name only: nothing is pulled
    iid = d.docker("commit", "-m", "while running", c, f"{repo}:1", check=True).stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid)
    assert inspect(d, f"{repo}:1")["Comment"] == "while running"
    out = d.docker("run", "--rm", f"{repo}:1", "cat", "/live", check=True)
    assert out.stdout == "live\n"

    fresh = track.container(uniq("unchanged"))
    d.docker("create", "--name", fresh, "busybox", "true", check=True)
    iid2 = d.docker("commit", fresh, f"{repo}:empty", check=True).stdout.strip()
    info = inspect(d, iid2)
    assert info["RootFS"]["Layers"] == inspect(d, "busybox")["RootFS"]["Layers"]
    cfg_hist = d.json("GET", f"/images/{iid2}/history")
    assert cfg_hist[0]["Size"] == 0
    d.docker("rm", "-f", c, fresh, check=True)
    d.docker("rmi", f"{repo}:1", f"{repo}:empty", check=True)


def test_commit_errors(daemon: Daemon, track: Tracker) -> None:
    d = daemon
    status, body = d.request("POST", "/commit?container=nosuch-container")
    assert status == 404 and b"No such container: nosuch-container" in body
    c = track.container(uniq("cerr"))
    d.dockyard("create", "--name", c, "busybox", "true", check=True)
    bad = d.dockyard("commit", "-c", "FROM busybox", c, "127.0.0.1:1/e2e/x:1")
    assert bad.returncode == 1 and "FROM is not a valid change command" in bad.stderr
    bad = d.dockyard("commit", c, "127.0.0.1:1/e2e/UPPER:1")
    assert bad.returncode != 0 and "invalid reference format" in bad.stderr


# -- rmi, prune, images --digests -------------------------------------------------------------

def test_rmi_no_prune_and_image_prune(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    base = "127.0.0.1:1/e2e/base:1"
    import_unique(d, base, "base")
    c = uniq("child")
    d.dockyard("run", "--name", c, base, "touch", "/child", check=True)
    d.dockyard("commit", c, "127.0.0.1:1/e2e/child:1", check=True)
    d.dockyard("rm", c, check=True)
    base_id = inspect(d, base)["Id"]
    out = d.dockyard("rmi", base, check=True).stdout
    assert out.strip() == f"Untagged: {base}"          # it has a child: only untagged
    out = d.dockyard("rmi", "--no-prune", "127.0.0.1:1/e2e/child:1", check=True).stdout
    assert base_id not in out
    assert d.request("GET", f"/images/{base_id}/json")[0] == 200   # kept, now dangling
    listed = d.dockyard("images", "-q", "--filter", "dangling=true", "--no-trunc",
                        check=True).stdout.split()
    assert base_id in listed
    pruned = d.dockyard("image", "prune", "-f", check=True).stdout
    assert f"deleted: {base_id}" in pruned
    assert d.request("GET", f"/images/{base_id}/json")[0] == 404
    pruned = d.dockyard("image", "prune", "-a", "-f", check=True).stdout
    assert "busybox:latest" in pruned
    assert d.json("GET", "/images/json?all=1") == []


# -- save and load ----------------------------------------------------------------------------

def test_save_and_load_with_our_cli(daemon: Daemon, track: Tracker, tmp_path: Path) -> None:
    d = daemon
    ref = f"127.0.0.1:1/e2e/{uniq('saved')}:1"
    marker = uniq("m")
    iid = import_unique(d, ref, marker)
    archive = tmp_path / "images.tar"
    d.dockyard("save", "-o", str(archive), ref, "busybox", check=True)
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        index = json.load(tf.extractfile("index.json"))           # type: ignore[arg-type]
        manifest = json.load(tf.extractfile("manifest.json"))     # type: ignore[arg-type]
    assert "oci-layout" in names and f"blobs/sha256/{iid[7:]}" in names
    assert [m["RepoTags"] for m in manifest] == [[ref], ["busybox:latest"]]
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == \
        {ref, "docker.io/library/busybox:latest"}
    if shutil.which("skopeo"):
        import subprocess

        out = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}:{ref}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Layers"] == inspect(d, ref)["RootFS"]["Layers"]

    d.dockyard("rmi", ref, check=True)
    loaded = d.dockyard("load", "-i", str(archive), check=True).stdout
    assert f"Loaded image: {ref}" in loaded and "Loaded image: busybox:latest" in loaded
    assert inspect(d, ref)["Id"] == iid
    assert d.dockyard("run", "--rm", ref, "cat", "/unique", check=True).stdout.strip() == marker

    # a gzip-compressed archive, from stdin
    d.dockyard("rmi", ref, check=True)
    gz = gzip.compress(archive.read_bytes(), compresslevel=1)
    d.dockyard("load", input=gz, check=True)
    assert inspect(d, ref)["Id"] == iid


@needs_docker
def test_save_and_load_with_docker_cli(daemon: Daemon, track: Tracker, tmp_path: Path) -> None:
    d = daemon
    ref = f"127.0.0.1:1/e2e/{uniq('dsave')}:1"
    iid = import_unique(d, ref, uniq("m"))
    archive = tmp_path / "d.tar"
    d.docker("save", "-o", str(archive), ref, check=True)
    d.docker("rmi", ref, check=True)
    out = d.docker("load", "-i", str(archive), check=True).stdout
    assert f"Loaded image: {ref}" in out
    assert inspect(d, ref)["Id"] == iid
    # loading again over an existing name
    out = d.docker("load", "-i", str(archive), check=True).stdout
    assert f"Loaded image: {ref}" in out


def _legacy_archive(path: Path, tag: str, marker: str) -> str:
    """docker ≤ 24's layout: <id>.json, <layer id>/layer.tar (+ a symlinked duplicate),
    manifest.json, repositories. Returns the image id."""
    layer = unique_rootfs(marker)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]},
                         "history": [{"created_by": "a"}, {"created_by": "b"}]}).encode()
    cfg_hex = hashlib.sha256(config).hexdigest()
    l1, l2 = "a" * 64, "b" * 64
    with tarfile.open(path, "w") as tf:
        def put(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))

        put(f"{l1}/VERSION", b"1.0")
        put(f"{l1}/json", b"{}")
        put(f"{l1}/layer.tar", layer)
        link = tarfile.TarInfo(f"{l2}/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, f"../{l1}/layer.tar"
        tf.addfile(link)
        put(f"{cfg_hex}.json", config)
        put("manifest.json", json.dumps([{"Config": f"{cfg_hex}.json", "RepoTags": [tag],
                                          "Layers": [f"{l1}/layer.tar",
                                                     f"{l2}/layer.tar"]}]).encode())
        put("repositories", json.dumps({tag.rsplit(":", 1)[0]: {"1": l2}}).encode())
    return "sha256:" + cfg_hex


def test_load_legacy_layout(daemon: Daemon, track: Tracker, tmp_path: Path) -> None:
    d = daemon
    ref = f"127.0.0.1:1/e2e/{uniq('legacy')}:1"
    marker = uniq("m")
    iid = _legacy_archive(tmp_path / "legacy.tar", ref, marker)
    out = d.dockyard("load", "-i", str(tmp_path / "legacy.tar"), check=True).stdout
    assert f"Loaded image: {ref}" in out
    assert inspect(d, ref)["Id"] == iid
    assert d.dockyard("run", "--rm", ref, "cat", "/unique", check=True).stdout.strip() == marker


def test_bad_loads_leave_nothing(daemon: Daemon, track: Tracker, tmp_path: Path) -> None:
    d = daemon
    before = d.json("GET", "/images/json?all=1")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(5000))
    bad = d.dockyard("load", "-i", str(junk))
    assert bad.returncode == 1 and "invalid tar archive" in bad.stderr

    ref = f"127.0.0.1:1/e2e/{uniq('trunc')}:1"
    _legacy_archive(tmp_path / "ok.tar", ref, "x")
    data = (tmp_path / "ok.tar").read_bytes()
    (tmp_path / "trunc.tar").write_bytes(data[: len(data) // 2])
    bad = d.dockyard("load", "-i", str(tmp_path / "trunc.tar"))
    assert bad.returncode == 1

    # a manifest naming a layer that is not in the archive
    with tarfile.open(tmp_path / "missing.tar", "w") as tf:
        body = json.dumps([{"Config": "c.json", "RepoTags": [ref], "Layers": ["nope.tar"]}])
        for name, payload in (("manifest.json", body.encode()), ("c.json", json.dumps(
                {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(payload)
            tf.addfile(ti, io.BytesIO(payload))
    bad = d.dockyard("load", "-i", str(tmp_path / "missing.tar"))
    assert bad.returncode == 1 and "nope.tar" in bad.stderr
    if has_docker_cli():
        bad = d.docker("load", "-i", str(junk))
        assert bad.returncode == 1 and "invalid tar archive" in bad.stderr
    assert d.json("GET", "/images/json?all=1") == before
    assert verify_content(LocalContentStore(d.data_root / "content", clean_ingest=False)) == []


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", ["dockyard", pytest.param("docker", marks=needs_docker)])
def test_bad_references_and_missing_things(daemon: Daemon, reg: Registry, track: Tracker,
                                           cli: str) -> None:
    d = daemon
    run = getattr(d, cli)
    missing = run("pull", f"{reg.host}/e2e/{uniq('nosuch')}:1")
    assert missing.returncode == 1
    assert "manifest unknown" in missing.stderr or "not found" in missing.stderr
    invalid = run("pull", f"{reg.host}/e2e/UPPER:1")
    assert invalid.returncode != 0 and "invalid reference format" in invalid.stderr
    local = run("push", f"{reg.host}/e2e/{uniq('notlocal')}:1")
    assert local.returncode == 1
    assert "An image does not exist locally with the tag" in local.stderr
    status, body = d.request("POST", f"/images/create?fromImage={reg.host}/e2e/x&tag=b@d")
    assert status == 400
    status, body = d.request("POST", f"/images/create?fromImage={reg.host}/e2e/x&tag=1",
                             headers={"X-Registry-Auth": "%%%not-base64"})
    assert status == 400 and b"X-Registry-Auth" in body
    unreachable = run("pull", "127.0.0.1:1/e2e/x:1")
    assert unreachable.returncode == 1 and "connection refused" in unreachable.stderr


# -- docker-py ----------------------------------------------------------------------------------

def test_docker_py_pull_push_commit_save_load(daemon: Daemon, auth_reg: Registry,
                                              track: Tracker) -> None:
    import docker

    d = daemon
    client = d.docker_py()
    try:
        repo = f"{auth_reg.host}/e2e/{uniq('py')}"
        import_unique(d, f"{repo}:1", uniq("m"))
        with pytest.raises(docker.errors.APIError) as bad:
            client.login(USER, "wrong", registry=auth_reg.host, reauth=True)
        assert bad.value.status_code == 401
        creds = {"username": USER, "password": PASSWORD}
        assert client.login(USER, PASSWORD, registry=auth_reg.host,
                            reauth=True)["Status"] == "Login Succeeded"
        out = list(client.images.push(repo, tag="1", auth_config=creds, stream=True,
                                      decode=True))
        aux = [m["aux"] for m in out if "aux" in m]
        assert aux and aux[0]["Tag"] == "1", out
        client.images.remove(f"{repo}:1")
        img = client.images.pull(repo, tag="1", auth_config=creds)
        assert f"{repo}:1" in img.tags
        assert f"{repo}@{aux[0]['Digest']}" in img.attrs["RepoDigests"]

        c = client.containers.create(img.id, ["sh", "-c", "echo py > /py"])
        track.container(c.id)
        c.start()
        c.wait()
        committed = c.commit(repository=f"{repo}-c", tag="2", message="from docker-py",
                             changes=["ENV PY=1"])
        assert committed.attrs["Comment"] == "from docker-py"
        assert "PY=1" in committed.attrs["Config"]["Env"]
        data = b"".join(committed.save(named=True))
        client.images.remove(f"{repo}-c:2")
        (loaded,) = client.images.load(data)
        assert loaded.id == committed.id and f"{repo}-c:2" in loaded.tags
    finally:
        client.close()
