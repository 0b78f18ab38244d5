"""Fixtures for the runtime's kernel tests: a busybox rootfs, bundles with an overlay
rootfs mount (mounted inside the container's own mount namespace, so nothing to unmount
on the host), and a helper that runs a container to completion and collects its output.

Every container gets a unique cgroup under ``/dockyard-test-<hex>`` and is killed, reaped
and its cgroup removed even when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.oci.mount import Mount
from dockyard.oci.runtime_spec import default_spec
from dockyard.runtime import InitProcess, Stdio, create_init
from dockyard.runtime.cgroups import open_cgroup

REPO = Path(__file__).resolve().parents[3]


def _busybox_tar() -> Path:
    env = os.environ.get("DOCKYARD_BUSYBOX_TAR")
    if env:
        return Path(env)
    tar = REPO / "build" / "busybox-rootfs.tar"
    if not tar.exists():
        tar.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["/usr/bin/python3", str(REPO / "scripts" / "mkbusybox.py"), "-o", str(tar)], check=True
        )
    return tar


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extracted busybox rootfs, shared read-only by the tests (an overlay lower dir)."""
    d = tmp_path_factory.mktemp("busybox") / "rootfs"
    d.mkdir()
    subprocess.run(["tar", "-xf", str(_busybox_tar()), "-C", str(d)], check=True)
    return d


@dataclass
class Box:
    """A bundle: config.json-to-be (``spec``), an overlay over the busybox rootfs, a cgroup."""

    bundle: Path
    spec: dict[str, Any]
    rootfs_mounts: list[Mount]
    cgroup_path: str
    inits: list[InitProcess] = field(default_factory=list)

    def create(self, stdio: Stdio | None = None, **kw: Any) -> InitProcess:
        init = create_init(
            self.spec,
            self.bundle,
            container_id=self.bundle.name,
            stdio=stdio,
            rootfs_mounts=self.rootfs_mounts,
            cgroup_path=self.cgroup_path,
            **kw,
        )
        self.inits.append(init)
        return init

    def run(self, timeout: float = 20, **kw: Any) -> tuple[int, str, str]:
        """Create (``kw`` for ``create_init``), start, collect stdout/stderr until exit:
        (exit status, out, err)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            init = self.create(Stdio(null, out_w, err_w), **kw)
        finally:
            os.close(out_w)
            os.close(err_w)
            os.close(null)
        try:
            init.start()
            out = _read_all(out_r)
            err = _read_all(err_r)
        finally:
            os.close(out_r)
            os.close(err_r)
        return init.wait(), out, err


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks).decode()
        chunks.append(data)


def _cleanup(init: InitProcess) -> None:
    try:
        os.kill(init.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(init.pid, 0)
    except ChildProcessError:
        pass
    if init.pty_master is not None:
        try:
            os.close(init.pty_master)
        except OSError:
            pass
    init.destroy()


@pytest.fixture
def make_box(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Callable[..., Box]]:
    """``make_box(args, **default_spec kwargs) -> Box``; cleans every container up."""
    boxes: list[Box] = []

    def make(args: list[str], **kw: Any) -> Box:
        name = f"c{len(boxes)}-{uuid.uuid4().hex[:8]}"
        bundle = tmp_path / name
        for sub in ("rootfs", "upper", "work"):
            (bundle / sub).mkdir(parents=True)
        cgroup_path = f"/dockyard-test-{uuid.uuid4().hex[:12]}"
        spec = default_spec(args, cgroups_path=cgroup_path, **kw)
        overlay = Mount(
            "overlay",
            "overlay",
            (
                f"lowerdir={busybox_rootfs}",
                f"upperdir={bundle / 'upper'}",
                f"workdir={bundle / 'work'}",
            ),
        )
        box = Box(bundle, spec, [overlay], cgroup_path)
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        for init in box.inits:
            _cleanup(init)
        cg = open_cgroup(box.cgroup_path)
        if cg.exists():
            cg.kill_all(signal.SIGKILL)
            cg.destroy()


@pytest.fixture
def plain_bundle(tmp_path: Path, busybox_rootfs: Path) -> Callable[..., Path]:
    """``plain_bundle(args, **kw) -> bundle dir`` with config.json whose root is the shared
    busybox rootfs, read-only (for dockyard-runtime, runc and crun alike)."""
    import json

    def make(args: list[str], **kw: Any) -> Path:
        bundle = tmp_path / f"b-{uuid.uuid4().hex[:8]}"
        bundle.mkdir()
        kw.setdefault("cgroups_path", f"/dockyard-test-{uuid.uuid4().hex[:12]}")
        spec = default_spec(args, root_path=str(busybox_rootfs), readonly_rootfs=True, **kw)
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    return make


RUNTIME = [sys.executable, "-m", "dockyard.runtime.cli"]
