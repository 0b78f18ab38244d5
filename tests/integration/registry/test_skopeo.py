"""dockyard-registry as a real process, with skopeo (containers/image) as the client."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from dockyard.oci import mediatypes as mt
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.gc import verify

from .conftest import REPO, RegistryProcess, Skopeo
from .images import OCILayout, docker_archive, sha256

INSECURE_DST = "--dest-tls-verify=false"
INSECURE_SRC = "--src-tls-verify=false"
INSECURE = "--tls-verify=false"


def busybox_layout(tmp: Path, busybox_tar: Path, tag: str = "1") -> tuple[OCILayout, object]:
    layout = OCILayout(tmp / "oci-busybox")
    img = layout.add_image([layout.gzip_layer(busybox_tar.read_bytes())], tag)
    return layout, img


def blobs_of(oci_dir: Path) -> set[str]:
    return {"sha256:" + p.name for p in (oci_dir / "blobs" / "sha256").iterdir()}


def gc(root: Path, *args: str) -> str:
    cp = subprocess.run([sys.executable, "-m", "dockyard.registry", "garbage-collect", "--root",
                         str(root), *args], capture_output=True, text=True, cwd=REPO, check=True)
    return cp.stdout


def test_copy_in_out_inspect_list_delete(tmp_path: Path, busybox_tar: Path,
                                         registry_factory, skopeo: Skopeo) -> None:
    reg: RegistryProcess = registry_factory()
    layout, img = busybox_layout(tmp_path, busybox_tar)
    ref = f"docker://{reg.host}/library/busybox"
    skopeo.run("copy", INSECURE_DST, f"oci:{layout.root}:1", f"{ref}:1")
    skopeo.run("copy", INSECURE_DST, f"oci:{layout.root}:1", f"{ref}:latest")
    info = json.loads(skopeo.run("inspect", INSECURE, f"{ref}:1").stdout)
    assert info["Digest"] == img.manifest_digest  # the exact bytes went through
    assert info["Layers"] == img.layer_digests
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    raw = skopeo.run("inspect", "--raw", INSECURE, f"{ref}:1").stdout.encode()
    assert raw == img.manifest
    config = json.loads(skopeo.run("inspect", "--config", "--raw", INSECURE, f"{ref}:1").stdout)
    assert config["rootfs"]["diff_ids"] == [sha256(busybox_tar.read_bytes())]
    tags = json.loads(skopeo.run("list-tags", INSECURE, ref).stdout)
    assert tags["Tags"] == ["1", "latest"]
    # copy out, to an OCI layout and to a dir: the same blobs come back
    out = tmp_path / "out"
    skopeo.run("copy", INSECURE_SRC, f"{ref}:1", f"oci:{out}:copy")
    assert blobs_of(out) == blobs_of(layout.root)
    skopeo.run("copy", INSECURE_SRC, f"{ref}@{img.manifest_digest}", f"dir:{tmp_path / 'dir'}")
    assert (tmp_path / "dir" / "manifest.json").read_bytes() == img.manifest
    # delete by tag (skopeo resolves it and deletes the manifest: every tag on it goes)
    skopeo.run("delete", INSECURE, f"{ref}:1")
    cp = skopeo.run("inspect", INSECURE, f"{ref}:1", ok=False)
    assert cp.returncode != 0 and "manifest unknown" in cp.stderr
    assert json.loads(skopeo.run("list-tags", INSECURE, ref).stdout)["Tags"] == []
    # GC takes the unreferenced blobs away, nothing inconsistent is left
    reg.stop()
    assert "deleted 3 blobs" in gc(reg.root)
    assert verify(FilesystemDriver(reg.root)) == []
    assert list((reg.root / "blobs" / "sha256").rglob("data")) == []


def test_formats_and_multiarch(tmp_path: Path, busybox_tar: Path, registry_factory,
                               skopeo: Skopeo) -> None:
    reg: RegistryProcess = registry_factory()
    layout = OCILayout(tmp_path / "oci")
    raw = busybox_tar.read_bytes()
    amd = layout.add_image([layout.gzip_layer(raw)], "amd64", "amd64")
    arm = layout.add_image([layout.gzip_layer(raw + b"\0" * 1024)], "arm64", "arm64")
    index_digest = layout.add_index([amd, arm], "multi")
    base = f"docker://{reg.host}"
    # docker schema2 (skopeo converts the OCI manifest)
    skopeo.run("copy", INSECURE_DST, "--format", "v2s2", f"oci:{layout.root}:amd64",
               f"{base}/fmt/v2s2:1")
    raw_manifest = json.loads(skopeo.run("inspect", "--raw", INSECURE,
                                         f"{base}/fmt/v2s2:1").stdout)
    assert raw_manifest["mediaType"] == mt.DOCKER_MANIFEST
    # an OCI index with both platforms
    skopeo.run("copy", "--all", INSECURE_DST, f"oci:{layout.root}:multi", f"{base}/fmt/multi:1")
    out = skopeo.run("inspect", "--raw", INSECURE, f"{base}/fmt/multi:1").stdout.encode()
    assert hashlib.sha256(out).hexdigest() == index_digest[7:]
    assert json.loads(out)["mediaType"] == mt.OCI_INDEX
    info = json.loads(skopeo.run("inspect", "--override-arch", "arm64", INSECURE,
                                 f"{base}/fmt/multi:1").stdout)
    assert info["Digest"] == index_digest  # skopeo names the top-level manifest
    assert info["Architecture"] == "arm64" and info["Layers"] == arm.layer_digests
    # and the docker manifest list skopeo makes from it
    skopeo.run("copy", "--all", "--format", "v2s2", INSECURE_DST, f"oci:{layout.root}:multi",
               f"{base}/fmt/list:1")
    lst = json.loads(skopeo.run("inspect", "--raw", INSECURE, f"{base}/fmt/list:1").stdout)
    assert lst["mediaType"] == mt.DOCKER_MANIFEST_LIST and len(lst["manifests"]) == 2
    # docker-archive in (skopeo compresses the layer), and back out
    archive = tmp_path / "img.tar"
    config_digest = docker_archive(archive, raw, "busybox:archive")
    skopeo.run("copy", INSECURE_DST, f"docker-archive:{archive}", f"{base}/fmt/archive:1")
    cfg = skopeo.run("inspect", "--config", "--raw", INSECURE, f"{base}/fmt/archive:1").stdout
    assert sha256(cfg.encode()) == config_digest
    skopeo.run("copy", INSECURE_SRC, f"{base}/fmt/archive:1",
               f"docker-archive:{tmp_path / 'back.tar'}:busybox:back")
    assert (tmp_path / "back.tar").stat().st_size > len(raw)
    assert verify(FilesystemDriver(reg.root)) == []


def _htpasswd(tmp: Path, user: str, password: str) -> Path:
    path = tmp / "htpasswd"
    subprocess.run(["htpasswd", "-B", "-b", "-c", str(path), user, password], check=True,
                   capture_output=True)
    return path


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_auth(mode: str, tmp_path: Path, busybox_tar: Path, registry_factory,
              skopeo: Skopeo) -> None:
    pw = _htpasswd(tmp_path, "alice", "s3cret pass")
    reg: RegistryProcess = registry_factory("--htpasswd", str(pw), "--auth", mode)
    layout, img = busybox_layout(tmp_path, busybox_tar)
    ref = f"docker://{reg.host}/private/busybox:1"
    src = f"oci:{layout.root}:1"
    cp = skopeo.run("copy", INSECURE_DST, src, ref, ok=False)
    assert cp.returncode != 0
    assert any(w in cp.stderr.lower() for w in ("authentication required", "unauthorized",
                                                 "denied")), cp.stderr
    cp = skopeo.run("copy", INSECURE_DST, "--dest-creds", "alice:wrong", src, ref, ok=False)
    assert cp.returncode != 0
    skopeo.run("copy", INSECURE_DST, "--dest-creds", "alice:s3cret pass", src, ref)
    info = json.loads(skopeo.run("inspect", INSECURE, "--creds", "alice:s3cret pass", ref).stdout)
    assert info["Digest"] == img.manifest_digest
    assert skopeo.run("inspect", INSECURE, ref, ok=False).returncode != 0
    tags = json.loads(skopeo.run("list-tags", INSECURE, "--creds", "alice:s3cret pass",
                                 f"docker://{reg.host}/private/busybox").stdout)
    assert tags["Tags"] == ["1"]
    skopeo.run("copy", INSECURE_SRC, "--src-creds", "alice:s3cret pass", ref,
               f"oci:{tmp_path / 'out'}:x")
    assert blobs_of(tmp_path / "out") == blobs_of(layout.root)
    skopeo.run("delete", INSECURE, "--creds", "alice:s3cret pass", ref)
    assert skopeo.run("inspect", INSECURE, "--creds", "alice:s3cret pass", ref,
                      ok=False).returncode != 0
    if mode == "token":
        challenge = _challenge(f"http://{reg.host}/v2/")
        assert challenge == (f'Bearer realm="http://{reg.host}/token",'
                             'service="dockyard-registry"')
    else:
        assert _challenge(f"http://{reg.host}/v2/") == 'Basic realm="Registry Realm"'


def _challenge(url: str) -> str:
    try:
        urllib.request.urlopen(url, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 401
        return e.headers["WWW-Authenticate"]
    raise AssertionError("no 401")


def test_tls(tmp_path: Path, busybox_tar: Path, registry_factory, skopeo: Skopeo) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(certs / "key.pem"), "-out", str(certs / "ca.crt"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    pw = _htpasswd(tmp_path, "alice", "tlspass")
    reg: RegistryProcess = registry_factory(
        "--tls-cert", str(certs / "ca.crt"), "--tls-key", str(certs / "key.pem"),
        "--htpasswd", str(pw), "--auth", "token")
    assert reg.scheme == "https"
    layout, img = busybox_layout(tmp_path, busybox_tar)
    ref = f"docker://{reg.host}/secure/busybox:1"
    # certificate verification on, against our CA
    skopeo.run("copy", "--dest-cert-dir", str(certs), "--dest-creds", "alice:tlspass",
               f"oci:{layout.root}:1", ref)
    info = json.loads(skopeo.run("inspect", "--cert-dir", str(certs), "--creds",
                                 "alice:tlspass", ref).stdout)
    assert info["Digest"] == img.manifest_digest
    # unknown CA: refused unless verification is off
    cp = skopeo.run("inspect", "--creds", "alice:tlspass", ref, ok=False)
    assert cp.returncode != 0 and "certificate" in cp.stderr
    skopeo.run("inspect", INSECURE, "--creds", "alice:tlspass", ref)


def _upload_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.glob("repositories/**/_uploads/*/data"))


def test_kill9_mid_push_then_push_again(tmp_path: Path, registry_factory,
                                        skopeo: Skopeo) -> None:
    reg: RegistryProcess = registry_factory()
    layout = OCILayout(tmp_path / "oci-big")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    layers = [layout.random_layer(size, i, scratch)
              for i, size in enumerate([3 << 20, 400 << 20, 2 << 20])]
    img = layout.add_image(layers, "big")
    ref = f"docker://{reg.host}/crash/big:1"
    push = skopeo.popen("copy", INSECURE_DST, f"oci:{layout.root}:big", ref)
    try:
        deadline = time.monotonic() + 120
        while _upload_bytes(reg.root) < 40 << 20:
            assert push.poll() is None, push.stdout.read() if push.stdout else ""
            assert time.monotonic() < deadline, "the push never got going"
            time.sleep(0.01)
        reg.kill9()
        out, _ = push.communicate(timeout=120)
        assert push.returncode != 0, out
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    # nothing half-stored is visible: every blob is whole, the big layer is not among them
    driver = FilesystemDriver(reg.root)
    assert verify(driver) == []
    big = layers[1][0]
    assert not (reg.root / "blobs" / "sha256" / big[7:9] / big[7:]).exists()
    assert _upload_bytes(reg.root) > 0  # the torn upload is still there, invisible
    # restart on the same port and root: the same push now succeeds
    reg.start()
    assert _get_status(f"http://{reg.host}/v2/crash/big/blobs/{big}") == 404
    skopeo.run("copy", INSECURE_DST, f"oci:{layout.root}:big", ref)
    info = json.loads(skopeo.run("inspect", INSECURE, ref).stdout)
    assert info["Digest"] == img.manifest_digest and info["Layers"] == img.layer_digests
    reg.stop()
    assert verify(driver) == []
    out = gc(reg.root, "--upload-max-age", "0")
    assert "deleted 0 blobs" in out
    assert int(re.search(r"(\d+) uploads", out).group(1)) >= 1  # type: ignore[union-attr]
    assert _upload_bytes(reg.root) == 0
    assert verify(driver) == []
    reg.start()
    skopeo.run("copy", INSECURE_SRC, ref, f"dir:{tmp_path / 'back'}")
    back = tmp_path / "back" / big[7:]
    assert back.stat().st_size == layers[1][1]


def _get_status(url: str) -> int:
    req = urllib.request.Request(url, method="HEAD")
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def test_concurrent_pushes_of_one_image(tmp_path: Path, registry_factory,
                                        skopeo: Skopeo) -> None:
    reg: RegistryProcess = registry_factory()
    layout = OCILayout(tmp_path / "oci")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    img = layout.add_image([layout.random_layer(20 << 20, i, scratch) for i in range(3)], "x")
    results: list[int] = []

    def push(repo: str) -> None:
        cp = skopeo.run("copy", INSECURE_DST, f"oci:{layout.root}:x",
                        f"docker://{reg.host}/{repo}:1", ok=False)
        results.append(cp.returncode)

    threads = [threading.Thread(target=push, args=(f"con/r{i % 3}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
    for i in range(3):
        info = json.loads(skopeo.run("inspect", INSECURE,
                                     f"docker://{reg.host}/con/r{i}:1").stdout)
        assert info["Digest"] == img.manifest_digest
    assert len(list((reg.root / "blobs").rglob("data"))) == 5  # 3 layers, config, manifest
    reg.stop()
    assert verify(FilesystemDriver(reg.root)) == []
