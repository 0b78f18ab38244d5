"""Both container shims (Python and native) and the exec shim with the real runtime, as
root: containers made by ``create_init`` in namespaces and cgroups, driven through the
daemon's own clients (``Launcher``, ``ShimClient``), and the clean-up of the container's
cgroups (what is left in them is killed, the directories removed, the parent pruned)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.oci.mount import Mount
from dockyard.oci.runtime_spec import default_process, default_spec
from dockyard.runtime.cgroups import discover, open_cgroup
from dockyard.runtime.shim import ShimConfig
from dockyard.runtime.shimclient import Launcher, ShimClient
from tests.unit.shim.test_shim import (
    FakeInit,
    call,
    connect,
    readline,
    require_native,
    run_shim_process,
    stop_shim_process,
)
from tests.unit.shim.test_shim import split_frames as frames

IMPLS = ["python", "native"]


def cgroup_dirs(path: str) -> list[Path]:
    """The directories of cgroup ``path`` (and of its ancestors) that exist."""
    _, hs = discover()
    out = []
    for h in hs:
        p = h.mount / path.lstrip("/")
        while p != h.mount:
            if p.is_dir():
                out.append(p)
            p = p.parent
    return out


def state_of(pid: int) -> str:
    """The process's state letter (R, S, T, ...); "" when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""
    return "" if st in ("Z", "X") else st


def alive(pid: int) -> bool:
    return state_of(pid) != ""


def wait_for(cond: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def container(tmp_path: Path, busybox_rootfs: Path) -> Any:
    """``container(args, **cfg) -> ShimConfig``: a bundle over the busybox rootfs and a
    unique cgroup parent (``/dockyard-test-<hex>``), removed at the end if anything is left."""
    parents: list[str] = []

    def make(args: list[str], **cfg: Any) -> ShimConfig:
        cid = uuid.uuid4().hex * 2
        parent = f"/dockyard-test-{uuid.uuid4().hex[:12]}"
        parents.append(parent)
        bundle = tmp_path / "bundle"
        for sub in ("rootfs", "upper", "work"):
            (bundle / sub).mkdir(parents=True, exist_ok=True)
        spec = default_spec(args, cgroups_path=f"{parent}/{cid}", terminal=cfg.get("tty", False))
        (bundle / "config.json").write_text(json.dumps(spec))
        overlay = Mount("overlay", "overlay", (f"lowerdir={busybox_rootfs}",
                                               f"upperdir={bundle / 'upper'}",
                                               f"workdir={bundle / 'work'}"))
        return ShimConfig(id=cid, bundle=str(bundle), state_dir=str(tmp_path / "s" / cid[:12]),
                          log_path=str(tmp_path / "ctr.log"), rootfs_mounts=[overlay.to_json()],
                          cgroup_path=f"{parent}/{cid}", **cfg)

    yield make
    _, hs = discover()
    for parent in parents:                      # what a failed test left: kill, rmdir
        for h in hs:
            top = h.mount / parent.lstrip("/")
            if not top.is_dir():
                continue
            for d in sorted(top.glob("**/"), key=lambda p: -len(p.parts)):
                for pid in (d / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
                wait_for(lambda d=d: _rmdir(d), 5)


def _rmdir(d: Path) -> bool:
    try:
        d.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


async def _exec(launcher: Launcher, init_pid: int, cgroup_path: str, args: list[str],
                **cfg: Any) -> tuple[int, bytes]:
    """Run ``args`` in the container through an exec shim: (exit code, output bytes)."""
    config = {"id": "e1", "init_pid": init_pid, "cgroup_path": cgroup_path,
              "process": default_process(args, terminal=bool(cfg.get("tty"))), **cfg}
    session = await launcher.exec(config, stream=True)
    assert session.stream is not None and session.pid > 0
    if cfg.get("tty"):
        assert await session.call("resize", height=11, width=22) == {"ok": True}
        session.stream.writer.write(b"go\n")  # the process reads it after the resize
    else:
        session.stream.writer.write_eof()
    out = await asyncio.wait_for(session.stream.reader.read(), 20)
    session.stream.writer.close()
    return await asyncio.wait_for(session.wait(), 20), out


@pytest.mark.parametrize("impl", IMPLS)
def test_a_container_through_the_launcher(impl: str, container: Any) -> None:
    if impl == "native":
        require_native()
    cfg = container(["sh", "-c", "echo out; echo err >&2; read line; echo got $line; exit 7"],
                    open_stdin=True, stdin_once=True)

    async def scenario() -> dict[str, Any]:
        launcher = Launcher(shim=impl)
        await launcher.start()
        try:
            res = await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            assert res["pid"] > 0 and res["shim_pid"] > 0
            status = json.loads((Path(cfg.state_dir) / "status.json").read_text())
            assert status["shim_pid"] == res["shim_pid"] and status["status"] == "created"
            shim = ShimClient(cfg.state_dir)
            waiter = await shim.open_wait()
            stream = await shim.attach(True, True, True)
            started = await shim.call("start")
            assert started["status"] == "running" and started["pid"] == res["pid"]
            # exec sessions, beside the running container: pipes, then a tty
            code, out = await _exec(launcher, res["pid"], cfg.cgroup_path,
                                    ["sh", "-c", "echo in"])
            assert code == 0 and frames(out)[0] == (1, b"in\n")
            code, out = await _exec(launcher, res["pid"], cfg.cgroup_path,
                                    ["sh", "-c", "read x; stty size; exit 2"], tty=True,
                                    stdin=True)
            assert code == 2 and b"11 22" in out
            with pytest.raises(Exception, match="executable file not found"):
                await launcher.exec({"id": "e2", "init_pid": res["pid"],
                                     "process": default_process(["nosuch"])}, stream=True)
            stream.writer.write(b"hello\n")
            stream.writer.write_eof()
            data = await asyncio.wait_for(stream.reader.read(), 20)
            assert frames(data) == [(1, b"out\n"), (2, b"err\n"), (1, b"got hello\n")] or \
                sorted(frames(data)) == sorted([(1, b"out\n"), (2, b"err\n"), (1, b"got hello\n")])
            stream.writer.close()
            return await asyncio.wait_for(waiter, 20)
        finally:
            await launcher.close()

    done = asyncio.run(scenario())
    assert done["exit_code"] == 7 and done["status"] == "exited"
    log = [json.loads(x) for x in Path(cfg.log_path).read_text().splitlines()]
    assert [e["log"] for e in log if e["stream"] == "stdout"] == ["out\n", "got hello\n"]
    deadline = time.monotonic() + 10                 # the shim removes the cgroups and exits
    while (cgroup_dirs(cfg.cgroup_path) or Path(cfg.state_dir, "shim.sock").exists()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup_dirs(cfg.cgroup_path) == []         # the parent was pruned too
    assert not Path(cfg.state_dir, "shim.sock").exists()


class CgroupInit(FakeInit):
    """A fake init (no namespaces) in a real cgroup: the shim's clean-up has work to do."""

    def __init__(self, args: list[str], stdio: Any, cgroup_path: str) -> None:
        super().__init__(args, stdio)
        cg = open_cgroup(cgroup_path)
        cg.create()
        cg.add(self.pid)


@pytest.mark.parametrize("impl", IMPLS)
def test_kill_all_and_the_cgroup_clean_up(impl: str, tmp_path: Path) -> None:
    """A process that outlives the init (no pid namespace here) is killed by the shim's
    clean-up, and every cgroup directory goes; ``kill`` with ``all`` signals each process."""
    path = f"/dockyard-test-{uuid.uuid4().hex[:12]}/c1"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"args": [
        "sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!; exec sleep 100"]}}))
    state = tmp_path / "state"
    cfg = ShimConfig(id="c1", bundle=str(bundle), state_dir=str(state),
                     log_path=str(tmp_path / "log"), cgroup_path=path)
    pid, result = run_shim_process(
        impl, cfg, create=lambda spec, stdio: CgroupInit(spec["process"]["args"], stdio, path))
    try:
        assert result["ok"], result
        init = result["pid"]
        w = connect(state)
        w.sendall(b'{"op":"wait"}\n')
        call(state, {"op": "start"})
        assert wait_for(lambda: Path(cfg.log_path).exists() and Path(cfg.log_path).read_text())
        bg = int(json.loads(Path(cfg.log_path).read_text().splitlines()[0])["log"])
        for sig, want in ((signal.SIGSTOP, "T"), (signal.SIGCONT, "S")):
            _, r = call(state, {"op": "kill", "signal": int(sig), "all": True})
            assert r == {"ok": True}
            assert wait_for(lambda w=want: state_of(bg) == w and state_of(init) == w), sig
        # the background sleep outlives the init (no pid namespace here): the clean-up
        # kills it, and removes the cgroup directories and their parent. It holds no
        # output pipe (the fds passed around are close-on-exec), so the exit is at once.
        w.settimeout(10)
        _, r = call(state, {"op": "kill", "signal": 9})
        assert readline(w)["exit_code"] == 137
        assert wait_for(lambda: not alive(bg) and not cgroup_dirs(path))
    finally:
        stop_shim_process(pid, state)


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


@pytest.mark.parametrize("tty", [False, True])
def test_a_spare_native_shim_takes_its_job_itself(tty: bool, container: Any) -> None:
    """The launcher's spare shim is the native shim already, exec'd before any job, with a
    spare container init: it says ready, takes the job from the daemon, and the init it
    hands the job to plans, makes its cgroup and becomes the container. A ``fresh`` job
    (namespaces a spare init lacks) goes to a shim forked for it, with a helper."""
    require_native()
    args = ["sh", "-c", "tty >/dev/null && echo tty; hostname; echo $$; exit 3"]
    cfg = container(args, tty=tty)
    fresh: list[ShimConfig] = []

    async def scenario() -> tuple[dict[str, Any], list[str], list[str]]:
        launcher = Launcher(shim="native")
        await launcher.start()
        try:
            assert await asyncio.to_thread(wait_for, lambda: "spawn" in launcher._ready)
            res = await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            spare_argv = _cmdline(res["shim_pid"])
            shim = ShimClient(cfg.state_dir)
            waiter = await shim.open_wait()
            stream = await shim.attach(False, True, True)
            started = await shim.call("start")
            assert started["status"] == "running" and started["pid"] == res["pid"]
            await asyncio.wait_for(stream.reader.read(), 20)
            stream.writer.close()
            done = await asyncio.wait_for(waiter, 20)
            fresh.append(container(["true"], fresh=True))  # (the fixture's bundle is shared)
            res2 = await launcher.spawn(json.loads(json.dumps(fresh[0].__dict__)))
            fresh_argv = _cmdline(res2["shim_pid"])
            await ShimClient(fresh[0].state_dir).call("kill", signal=9)
            return done, spare_argv, fresh_argv
        finally:
            await launcher.close()

    done, spare_argv, fresh_argv = asyncio.run(scenario())
    assert "--job-fd" in spare_argv and "--init-fd" in spare_argv
    assert "--helper-fd" in fresh_argv and "--job-fd" not in fresh_argv
    assert done["exit_code"] == 3 and done["status"] == "exited"
    log = [json.loads(x)["log"] for x in Path(cfg.log_path).read_text().splitlines()]
    text = "".join(log).replace("\r\n", "\n").splitlines()
    assert text[0] == "tty" if tty else text[0] != "tty"
    assert text[-1] == "1"  # pid 1 of its own pid namespace
    assert wait_for(lambda: not cgroup_dirs(cfg.cgroup_path))  # removed, the parent pruned
    assert wait_for(lambda: not cgroup_dirs(fresh[0].cgroup_path))


def test_a_spare_native_shim_reports_a_failed_init(container: Any) -> None:
    """The init fails before Ready (no such command): the spare native shim reports the
    init's own error, and removes the cgroup the init had made."""
    require_native()
    cfg = container(["nosuch-command"])

    async def scenario() -> None:
        launcher = Launcher(shim="native")
        await launcher.start()
        try:
            assert await asyncio.to_thread(wait_for, lambda: "spawn" in launcher._ready)
            with pytest.raises(Exception, match="executable file not found"):
                await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
        finally:
            await launcher.close()

    asyncio.run(scenario())
    assert wait_for(lambda: not cgroup_dirs(cfg.cgroup_path))


@pytest.mark.parametrize("same_parent", [True, False])
def test_the_spare_cgroup_becomes_the_containers(same_parent: bool, container: Any) -> None:
    """A spare native shim's init waits in ``<parent>/spare-<pid>``; the job renames that
    to the container's cgroup in the v1 hierarchies when the parent is the same (in the
    cgroup2 one, which has no rename, the container keeps it), else the init makes and
    joins the container's cgroup itself. No spare cgroup is left behind."""
    require_native()
    _, hs = discover()
    if not any(h.fstype == "cgroup" for h in hs):
        pytest.skip("no cgroup v1 hierarchy here")
    cfg = container(["sleep", "30"])
    parent = cfg.cgroup_path.rsplit("/", 1)[0]
    launcher_parent = parent if same_parent else f"/dockyard-test-{uuid.uuid4().hex[:12]}"

    async def scenario() -> tuple[dict[str, str], list[Path]]:
        launcher = Launcher(shim="native", cgroup_parent=launcher_parent)
        await launcher.start()
        try:
            assert await asyncio.to_thread(wait_for, lambda: "spawn" in launcher._ready)
            spares = [p for h in hs
                      for p in (h.mount / launcher_parent.lstrip("/")).glob("spare-*")]
            assert spares  # the spare waits in its own cgroup
            res = await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            with open(f"/proc/{res['pid']}/cgroup") as f:
                paths = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
            await ShimClient(cfg.state_dir).call("kill", signal=9)
            return paths, spares
        finally:
            await launcher.close()

    paths, spares = asyncio.run(scenario())
    v1 = {k: v for k, v in paths.items() if k}
    assert v1 and all(v == cfg.cgroup_path for v in v1.values()), paths
    if "" in paths:  # the cgroup2 hierarchy of a hybrid host: no rename there, so the
        # container keeps the spare's cgroup under the same parent, or joins its own
        want = f"{parent}/spare-" if same_parent else cfg.cgroup_path
        assert paths[""].startswith(want), paths
    assert wait_for(lambda: not any(p.exists() for p in spares))
    assert wait_for(lambda: not cgroup_dirs(cfg.cgroup_path))
    assert wait_for(lambda: not cgroup_dirs(f"{launcher_parent}/x"))  # pruned with its spares


def test_stale_spare_cgroups_are_pruned_but_busy_ones_kept() -> None:
    """What a spare shim killed outright leaves (an empty ``spare-<pid>`` cgroup) is removed
    at the daemon's start; a spare cgroup with a process in it stays."""
    from dockyard.runtime.cgroups import CgroupV1, prune_spare_cgroups

    _, hs = discover()
    v1 = tuple(h for h in hs if h.fstype == "cgroup")
    if not v1:
        pytest.skip("no cgroup v1 hierarchy here")
    parent = f"/dockyard-test-{uuid.uuid4().hex[:12]}"
    stale, busy = CgroupV1(f"{parent}/spare-1", v1), CgroupV1(f"{parent}/spare-2", v1)
    stale.create()
    busy.create()
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    try:
        busy.add(pid)
        removed = prune_spare_cgroups(parent)
        assert len(removed) == len(v1) and all(r.endswith("/spare-1") for r in removed)
        assert not stale.exists() and busy.exists()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        busy.destroy()
    assert not cgroup_dirs(parent)


def test_a_job_that_says_start_starts_and_waits_for_its_wait(container: Any) -> None:
    """``"start": true`` (nobody attaches first): the native shim starts the init as soon
    as it is ready, reports ``started_at``, and after the exit stays until a ``wait`` comes,
    so the daemon cannot miss the exit code; the Python shim ignores it (no ``started_at``)
    and is started as ever."""
    require_native()
    cfg = container(["sh", "-c", "echo early; exit 4"], start=True)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], bool]:
        launcher = Launcher(shim="native")
        await launcher.start()
        try:
            assert await asyncio.to_thread(wait_for, lambda: "spawn" in launcher._ready)
            res = await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            await asyncio.sleep(0.5)  # it has exited by now
            status = json.loads((Path(cfg.state_dir) / "status.json").read_text())
            alive_before_wait = Path(cfg.state_dir, "shim.sock").exists()
            done = await asyncio.wait_for(await ShimClient(cfg.state_dir).open_wait(), 20)
            assert status["status"] == "exited"
            return res, done, alive_before_wait
        finally:
            await launcher.close()

    res, done, alive_before_wait = asyncio.run(scenario())
    assert res["started_at"] and res["pid"] > 0
    assert alive_before_wait and done["exit_code"] == 4 and done["status"] == "exited"
    log = [json.loads(x)["log"] for x in Path(cfg.log_path).read_text().splitlines()]
    assert log == ["early\n"]
    assert wait_for(lambda: not Path(cfg.state_dir, "shim.sock").exists())


def test_the_shim_holds_the_containers_mount_namespace(container: Any) -> None:
    """The native shim holds the container's mount namespace from Ready until the exit is
    reported, so that unmounting the container's mounts does not delay the init's exit."""
    require_native()
    cfg = container(["sleep", "30"])

    async def scenario() -> tuple[str, set[str]]:
        launcher = Launcher(shim="native")
        await launcher.start()
        try:
            res = await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            mnt = os.readlink(f"/proc/{res['pid']}/ns/mnt")
            fds = set()
            for fd in os.listdir(f"/proc/{res['shim_pid']}/fd"):
                try:
                    fds.add(os.readlink(f"/proc/{res['shim_pid']}/fd/{fd}"))
                except OSError:
                    continue
            await ShimClient(cfg.state_dir).call("kill", signal=9)
            return mnt, fds
        finally:
            await launcher.close()

    mnt, fds = asyncio.run(scenario())
    assert mnt.startswith("mnt:[") and mnt in fds
    assert wait_for(lambda: not cgroup_dirs(cfg.cgroup_path))


def test_the_launcher_exits_quietly_when_the_daemon_is_gone(tmp_path: Path) -> None:
    """A reply the daemon can no longer read (it asked for a spare and went away) ends the
    launcher without a traceback on its stderr (the daemon's log)."""
    import socket as _socket
    import subprocess
    import sys

    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    err = tmp_path / "launcher.err"
    with open(err, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.runtime.launcher",
                                 str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                stderr=f)
    theirs.close()
    ours.sendall(b'{"op": "spare", "kind": "exec"}\n' * 3)
    ours.close()  # gone before the replies
    assert proc.wait(20) == 0
    assert b"Traceback" not in err.read_bytes()


def test_a_staged_rootfs_looks_like_a_fresh_one(container: Any, tmp_path: Path) -> None:
    """The spare init builds /proc, /dev and /sys ahead in its own mount namespace (under
    the launcher's ``staging`` directory) and moves them into the rootfs: the container
    sees the same mounts, devices and masked paths as one whose init made them at start
    (a ``fresh`` job), and nothing of it shows in the host's mount table."""
    require_native()
    staging = tmp_path / "staging"
    staging.mkdir()
    script = ("awk '{print $2, $3, substr($4, 1, 2)}' /proc/self/mounts | sort; ls -l /dev | "
              "awk '{print $1, $5, $6, $NF}'; wc -c < /proc/keys; "
              "(echo x > /proc/sys/kernel/domainname) 2>&1")
    host_mounts = Path("/proc/self/mountinfo").read_text()

    async def run(fresh: bool) -> str:
        cfg = container(["sh", "-c", script], fresh=fresh)
        launcher = Launcher(shim="native", staging=str(staging))
        await launcher.start()
        try:
            assert await asyncio.to_thread(wait_for, lambda: "spawn" in launcher._ready)
            await launcher.spawn(json.loads(json.dumps(cfg.__dict__)))
            shim = ShimClient(cfg.state_dir)
            waiter = await shim.open_wait()
            await shim.call("start")
            assert (await asyncio.wait_for(waiter, 20))["exit_code"] in (0, 1)
        finally:
            await launcher.close()
        log = [json.loads(x)["log"] for x in Path(cfg.log_path).read_text().splitlines()]
        Path(cfg.log_path).unlink()
        return "".join(log)

    staged, fresh = asyncio.run(run(False)), asyncio.run(run(True))
    assert staged == fresh and "/proc proc rw" in staged and "/dev/pts devpts" in staged
    assert "/dev/shm tmpfs" in staged and "Read-only file system" in staged
    assert "\n0\n" in staged  # /proc/keys masked
    assert Path("/proc/self/mountinfo").read_text() == host_mounts
    assert list(staging.iterdir()) == []  # (the host's staging directory stays empty)
