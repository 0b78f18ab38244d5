"""``dockyard-runtime`` as a program: the runc lifecycle, run, exec, ps, pause, and a
cross-check of what the container sees against runc and crun on the same bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from .conftest import RUNTIME

MakeBundle = Callable[..., Path]


def _rt(
    root: Path, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    # files, not pipes: a created or detached init keeps the runtime's stdio open, as with runc
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        rc = subprocess.run(
            [
                *RUNTIME,
                "--root",
                str(root),
                "--log",
                str(root / "log.json"),
                "--log-format",
                "json",
                *args,
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        ).returncode
        out.seek(0)
        err.seek(0)
        p = subprocess.CompletedProcess(args, rc, out.read(), err.read())
    if check and p.returncode != 0:
        raise AssertionError(f"dockyard-runtime {args} failed: {p.stderr}")
    return p


def _state(root: Path, cid: str) -> dict:  # type: ignore[type-arg]
    return json.loads(_rt(root, "state", cid).stdout)


def _wait_status(root: Path, cid: str, want: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _state(root, cid)["status"] != want:
        assert time.monotonic() < deadline, f"{cid} never became {want}"
        time.sleep(0.02)


@pytest.fixture
def rt_root(tmp_path: Path) -> Path:
    root = tmp_path / "rt"
    root.mkdir()
    yield root
    # force-delete anything a failed test left
    for cid in (d.name for d in root.iterdir() if d.is_dir()):
        _rt(root, "delete", "--force", cid, check=False)


def test_create_start_state_kill_delete(
    rt_root: Path, plain_bundle: MakeBundle, tmp_path: Path
) -> None:
    bundle = plain_bundle(["sleep", "30"], hostname="clibox")
    pid_file = tmp_path / "init.pid"
    _rt(rt_root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1")
    st = _state(rt_root, "c1")
    assert st["status"] == "created" and st["pid"] == int(pid_file.read_text())
    assert st["bundle"] == str(bundle) and st["id"] == "c1" and st["ociVersion"] == "1.2.0"
    assert "created" in st and st["annotations"]["org.dockyard.user"] == ""
    dup = _rt(rt_root, "create", "--bundle", str(bundle), "c1", check=False)
    assert dup.returncode == 1 and "container with id exists: c1" in dup.stderr
    _rt(rt_root, "start", "c1")
    assert _state(rt_root, "c1")["status"] == "running"
    again = _rt(rt_root, "start", "c1", check=False)
    assert again.returncode == 1
    assert _rt(rt_root, "ps", "--format", "json", "c1").stdout.strip() == f"[{st['pid']}]"
    busy = _rt(rt_root, "delete", "c1", check=False)
    assert (
        busy.returncode == 1
        and "cannot delete container c1 that is not stopped: running" in busy.stderr
    )
    _rt(rt_root, "kill", "c1", "KILL")
    _wait_status(rt_root, "c1", "stopped")
    gone = _rt(rt_root, "kill", "c1", "9", check=False)
    assert gone.returncode == 1
    last = json.loads((rt_root / "log.json").read_text().splitlines()[-1])
    assert last["level"] == "error" and last["msg"] == "container not running"
    _rt(rt_root, "delete", "c1")
    missing = _rt(rt_root, "state", "c1", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_delete_of_a_created_container_kills_the_init(
    rt_root: Path, plain_bundle: MakeBundle
) -> None:
    _rt(rt_root, "create", "--bundle", str(plain_bundle(["true"])), "c2")
    pid = _state(rt_root, "c2")["pid"]
    _rt(rt_root, "delete", "c2")
    assert (
        not os.path.exists(f"/proc/{pid}/stat")
        or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    )


def test_create_fails_with_runc_message(rt_root: Path, plain_bundle: MakeBundle) -> None:
    p = _rt(rt_root, "create", "--bundle", str(plain_bundle(["nosuch"])), "c3", check=False)
    assert p.returncode == 1
    log = json.loads((rt_root / "log.json").read_text().splitlines()[-1])
    assert log["msg"] == 'exec: "nosuch": executable file not found in $PATH'
    assert not (rt_root / "c3").exists()


def test_run_foreground_exit_code(rt_root: Path, plain_bundle: MakeBundle) -> None:
    p = _rt(
        rt_root,
        "run",
        "--bundle",
        str(plain_bundle(["sh", "-c", "echo out; exit 7"])),
        "c4",
        check=False,
    )
    assert p.returncode == 7 and p.stdout == "out\n"
    assert not (rt_root / "c4").exists()


def test_run_detached_exec_pause_resume(
    rt_root: Path, plain_bundle: MakeBundle, tmp_path: Path
) -> None:
    bundle = plain_bundle(["sleep", "30"], hostname="detached")
    _rt(rt_root, "run", "--detach", "--bundle", str(bundle), "c5")
    assert _state(rt_root, "c5")["status"] == "running"
    p = _rt(rt_root, "exec", "c5", "sh", "-c", "hostname; id -u", check=False)
    assert (p.returncode, p.stdout) == (0, "detached\n0\n")
    p = _rt(rt_root, "exec", "--user", "mail", "c5", "id", "-un", check=False)
    assert p.stdout == "mail\n"
    assert _rt(rt_root, "exec", "c5", "sh", "-c", "exit 5", check=False).returncode == 5
    proc = {"args": ["sleep", "20"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    _rt(
        rt_root,
        "exec",
        "--process",
        str(tmp_path / "p.json"),
        "--detach",
        "--pid-file",
        str(tmp_path / "exec.pid"),
        "c5",
    )
    exec_pid = int((tmp_path / "exec.pid").read_text())
    pids = json.loads(_rt(rt_root, "ps", "--format", "json", "c5").stdout)
    assert exec_pid in pids and len(pids) == 2
    _rt(rt_root, "pause", "c5")
    assert _state(rt_root, "c5")["status"] == "paused"
    _rt(rt_root, "resume", "c5")
    assert _state(rt_root, "c5")["status"] == "running"
    _rt(rt_root, "kill", "--all", "c5", "SIGKILL")
    _wait_status(rt_root, "c5", "stopped")
    _rt(rt_root, "delete", "c5")


def test_delete_force_of_a_running_container(rt_root: Path, plain_bundle: MakeBundle) -> None:
    _rt(rt_root, "run", "--detach", "--bundle", str(plain_bundle(["sleep", "30"])), "c6")
    _rt(rt_root, "delete", "--force", "c6")
    assert _rt(rt_root, "list", "--format", "json").stdout.strip() == "[]"


_PROBE = (
    "hostname; id; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; echo $$; "
    "ls /dev; cut -d' ' -f2 /proc/self/mounts | sort; ulimit -n"
)


def _reference(runtime: str, bundle: Path, tmp_path: Path) -> str:
    root = tmp_path / f"{runtime}-root"
    root.mkdir(exist_ok=True)
    cmd = [runtime, "--root", str(root), "run", "--bundle", str(bundle), f"x-{runtime}"]
    if runtime == "crun":
        # crun refuses a hybrid cgroup host (cgroup2 mounted at /sys/fs/cgroup/unified):
        # run it in a private mount namespace without that mount
        cmd = [
            "unshare",
            "-m",
            "sh",
            "-c",
            'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"',
            "sh",
            *cmd,
        ]
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_same_view_as_runc_and_crun(
    rt_root: Path, plain_bundle: MakeBundle, tmp_path: Path, runtime: str
) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    # crun 1.8 knows runtime-spec 1.0 only
    # user=None: plain uid/gid as runc and crun take them (no org.dockyard.user)
    bundle = plain_bundle(["sh", "-c", _PROBE], hostname="same", user=None)
    spec = json.loads((bundle / "config.json").read_text())
    spec["ociVersion"] = "1.0.2"
    (bundle / "config.json").write_text(json.dumps(spec))
    ours = _rt(rt_root, "run", "--bundle", str(bundle), "ours").stdout
    theirs = _reference(runtime, bundle, tmp_path)

    def norm(text: str) -> list[str]:
        # the cgroup hierarchy mount points differ in how each runtime lays out v1, and
        # crun links /dev/core even when the kernel has no /proc/kcore (runc does not)
        return [
            ln for ln in text.splitlines() if not ln.startswith("/sys/fs/cgroup/") and ln != "core"
        ]

    assert norm(ours) == norm(theirs), f"ours:\n{ours}\n{runtime}:\n{theirs}"
