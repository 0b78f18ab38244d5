"""Test images on disk for skopeo: OCI layouts and docker-archives, built from bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from dockyard.oci import mediatypes as mt


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    manifest_digest: str
    manifest: bytes
    config_digest: str
    layer_digests: list[str]


class OCILayout:
    """An OCI image layout directory (``oci:DIR:TAG`` for skopeo)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.index: list[dict[str, object]] = []

    def put(self, data: bytes) -> str:
        d = sha256(data)
        (self.root / "blobs" / "sha256" / d[7:]).write_bytes(data)
        return d

    def put_file(self, path: Path) -> tuple[str, int]:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        d = "sha256:" + h.hexdigest()
        os.replace(path, self.root / "blobs" / "sha256" / d[7:])
        return d, (self.root / "blobs" / "sha256" / d[7:]).stat().st_size

    def add_image(self, layers: list[tuple[str, int, str]], tag: str | None,
                  arch: str = "amd64") -> Image:
        """``layers``: (digest, size, diff_id) of blobs already put; returns the image."""
        config = json.dumps({
            "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, _, diff in layers]},
        }).encode()
        cd = self.put(config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": d, "size": s}
                       for d, s, _ in layers],
        }).encode()
        md = self.put(manifest)
        entry: dict[str, object] = {
            "mediaType": mt.OCI_MANIFEST, "digest": md, "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"}}
        if tag:
            entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index.append(entry)
        self._write_index()
        return Image(md, manifest, cd, [d for d, _, _ in layers])

    def add_index(self, images: list[Image], tag: str) -> str:
        children = [e for e in self.index if e["digest"] in {i.manifest_digest for i in images}]
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {k: v for k, v in e.items() if k != "annotations"} for e in children]}).encode()
        d = self.put(index)
        self.index.append({"mediaType": mt.OCI_INDEX, "digest": d, "size": len(index),
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
        self._write_index()
        return d

    def _write_index(self) -> None:
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": self.index}))

    def gzip_layer(self, raw: bytes, level: int = 6) -> tuple[str, int, str]:
        gz = gzip.compress(raw, compresslevel=level, mtime=0)
        return self.put(gz), len(gz), sha256(raw)

    def random_layer(self, size: int, seed: int, scratch: Path) -> tuple[str, int, str]:
        # seed only names the scratch file; the bytes come from os.urandom
        """A layer of ``size`` random bytes, gzip-framed without compression (level 0) so that
        clients take it as compressed and nobody spends CPU on it; written in pieces."""
        raw_hash = hashlib.sha256()
        tmp = scratch / f"layer-{seed}.gz"
        with open(tmp, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=0,
                                                 mtime=0) as gz:
            left = size
            while left:
                chunk = os.urandom(min(left, 4 << 20))
                raw_hash.update(chunk)
                gz.write(chunk)
                left -= len(chunk)
        d, s = self.put_file(tmp)
        return d, s, "sha256:" + raw_hash.hexdigest()


def docker_archive(path: Path, layer_tar: bytes, repo_tag: str) -> str:
    """A ``docker save`` style archive with one uncompressed layer; the config digest."""
    diff = sha256(layer_tar)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cfg_name = sha256(config)[7:] + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [repo_tag],
                            "Layers": [f"{diff[7:]}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [(cfg_name, config), (f"{diff[7:]}/layer.tar", layer_tar),
                           ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sha256(config)
