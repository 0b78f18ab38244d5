"""A real dockyardd on temporary directories, and the three clients that drive it:
our ``dockyard`` CLI, the docker CLI 28.2.2 (``docker`` on PATH) and docker-py."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUSYBOX_TAR = Path(os.environ.get("DOCKYARD_BUSYBOX_TAR", ROOT / "build" / "busybox-rootfs.tar"))
CGROUP_ROOT = Path("/sys/fs/cgroup")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Daemon:
    """One dockyardd process on its own data root, exec root, socket and cgroup parent."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data_root = base / "data"
        self.exec_root = base / "exec"
        self.sock = str(base / "dockyard.sock")
        self.host = "unix://" + self.sock
        self.cgroup_parent = f"dockyard-test-{uuid.uuid4().hex[:8]}"
        self.docker_config = base / "docker-config"
        self.docker_config.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []
        self.log = base / "dockyardd.log"

    # --- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 20) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(VENV_BIN / "dockyardd"),
                    "-H",
                    self.host,
                    "--data-root",
                    str(self.data_root),
                    "--exec-root",
                    str(self.exec_root),
                    "--cgroup-parent",
                    self.cgroup_parent,
                    "--log-level",
                    "debug",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited: {self.log.read_text()[-3000:]}")
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dockyardd did not come up: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        """Remove every container (killing running ones), stop, and remove the cgroup parent."""
        if self.proc is not None:
            try:
                for c in self.json("GET", "/containers/json?all=1"):
                    self.request("DELETE", f"/containers/{c['Id']}?force=1")
            except (OSError, ValueError):
                pass
            self.stop()
        for ctrl in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
            d = ctrl / self.cgroup_parent
            if d.is_dir():
                for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)):
                    try:
                        sub.rmdir()
                    except OSError:
                        pass

    # --- raw API -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        conn = _UnixConnection(self.sock, timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if data is not None and "Content-Type" not in hdrs:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data!r}")
        return json.loads(data) if data.strip() else None

    def import_busybox(self, repo: str = "busybox", tag: str = "latest") -> None:
        data = BUSYBOX_TAR.read_bytes()
        status, body = self.request(
            "POST",
            f"/images/create?fromSrc=-&repo={repo}&tag={tag}",
            data,
            headers={"Content-Type": "application/x-tar"},
            timeout=120,
        )
        assert status == 200 and b"error" not in body, body

    # --- clients ----------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.docker_config)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def dockyard(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [str(VENV_BIN / "dockyard"), "-H", self.host, *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=self.env(),
        )
        return _text(p, check)

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            ["docker", *args], input=input, capture_output=True, timeout=timeout, env=self.env()
        )
        return _text(p, check)

    def docker_py(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=60)


def _text(p: subprocess.CompletedProcess[bytes], check: bool) -> subprocess.CompletedProcess[str]:
    out = subprocess.CompletedProcess(
        p.args, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{p.args} exited {p.returncode}: {out.stderr}{out.stdout}")
    return out


def _new_daemon() -> Daemon:
    base = Path(tempfile.mkdtemp(prefix="dockyard-e2e-", dir="/tmp"))
    return Daemon(base)


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    """One daemon for the session, with busybox:latest imported."""
    if not BUSYBOX_TAR.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "mkbusybox.py"), "-o", str(BUSYBOX_TAR)],
            check=True,
        )
    d = _new_daemon()
    try:
        d.start()
        d.import_busybox()
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(d.base, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


def _print_log_if_failed(request: pytest.FixtureRequest, d: Daemon) -> None:
    if request.node.stash.get(_FAILED, False) and d.log.exists():
        print(f"--- the daemon's log ({d.log}), its end:\n{d.log.read_text()[-6000:]}")


@pytest.fixture
def fresh_daemon(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """A daemon of its own, for tests that restart or kill it (its log is printed when the
    test failed)."""
    d = _new_daemon()
    request.addfinalizer(lambda: _print_log_if_failed(request, d))
    try:
        d.start()
        d.import_busybox()
        yield d
    finally:
        d.cleanup()
        shutil.rmtree(d.base, ignore_errors=True)


def has_docker_cli() -> bool:
    return shutil.which("docker") is not None
