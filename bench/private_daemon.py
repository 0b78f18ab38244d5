"""A dockyardd of the benchmark's own: temp dirs, its own socket and cgroup parent.

Everything it starts is found again for clean-up without guessing by name:

* the daemon is our child (its PID);
* its environment carries ``DOCKYARD_BENCH_RUN=<token>``, which the launcher and every
  shim inherit, so a shim left behind is found by reading ``/proc/PID/environ``;
* container processes live in cgroups under ``--cgroup-parent``, which is ours alone.

``close()`` removes the containers through the API, stops the daemon by its PID, then
ends any process still marked with our token or still in our cgroups (by PID), removes
the cgroup directories and the temp dir. It reports what it had to clean up by force.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from rawapi import Conn

__all__ = ["MARKER", "PrivateDaemon", "marked_pids", "pss_kib", "remove_cgroup_tree"]

MARKER = "DOCKYARD_BENCH_RUN"
CGROUP_ROOT = Path("/sys/fs/cgroup")


# -- /proc helpers ------------------------------------------------------------------------

def marked_pids(token: str) -> list[int]:
    """PIDs whose environment carries ``MARKER=token`` (the daemon's descendants)."""
    want = f"{MARKER}={token}".encode()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            env = Path(f"/proc/{p}/environ").read_bytes()
        except OSError:
            continue
        if want in env.split(b"\0"):
            out.append(int(p))
    return out


def rollup(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` as {field: kB}."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def private_by_mapping(pid: int) -> list[tuple[str, int]]:
    """Private (clean + dirty) KiB of each mapping name in ``/proc/PID/smaps``, largest
    first: anonymous memory shows as ``[anon]``, the interpreter binary by its path."""
    out: dict[str, int] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                out[name] = out.get(name, 0) + int(parts[1])
    return sorted(out.items(), key=lambda kv: -kv[1])


def pss_kib(pid: int) -> tuple[int, int, int]:
    """(PSS, USS = private clean + dirty, RSS) of a process, in KiB."""
    r = rollup(pid)
    return r["Pss"], r.get("Private_Clean", 0) + r.get("Private_Dirty", 0), r["Rss"]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# -- cgroups ---------------------------------------------------------------------------------

def _hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure v2
        return [CGROUP_ROOT]
    return [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]


def migration_probe(rel: str, samples: int, idle: float = 0.3) -> tuple[list[float], list[float]]:
    """Time one ``cgroup.procs`` write (moving a ``sleep`` into the cgroup ``rel``/probe and
    back) after ``idle`` seconds without any move, and right after another move, in ms.

    On this kernel the first move after an idle period waits for an RCU grace period
    (``cgroup_threadgroup_rwsem``), which every container start pays once. ``rel`` must be
    a cgroup path of the caller's own: it is removed by ``remove_cgroup_tree``."""
    # any hierarchy will do (the lock is global); pids needs no set-up, cpuset would
    hs = sorted((h for h in _hierarchies()
                 if (h / "cgroup.procs").exists() and "cpuset" not in h.name),
                key=lambda h: h.name != "pids")
    if not hs:
        return [], []
    h = hs[0]
    probe = h / rel.strip("/") / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(["sleep", "600"])
    try:
        def move(to: Path) -> float:
            t0 = time.perf_counter()
            (to / "cgroup.procs").write_text(str(child.pid))
            return (time.perf_counter() - t0) * 1e3

        cold, warm = [], []
        for _ in range(samples):
            time.sleep(idle)
            cold.append(move(probe))
            warm.append(move(h))  # back to the hierarchy's root: a second, warm move
        return cold, warm
    finally:
        child.kill()
        child.wait()


def cgroup_pids(rel: str) -> set[int]:
    """Every PID in the cgroup tree ``rel`` (e.g. ``/dockyard-bench-1``), in any hierarchy."""
    pids: set[int] = set()
    for h in _hierarchies():
        top = h / rel.strip("/")
        if not top.is_dir():
            continue
        for d, _, _ in os.walk(top):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in (Path(d) / "cgroup.procs").read_text().split())
    return pids


def remove_cgroup_tree(rel: str, timeout: float = 5.0) -> list[str]:
    """rmdir the cgroup tree ``rel`` in every hierarchy, deepest first; kills (by PID) what
    is still inside it. Returns the directories that could not be removed."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in cgroup_pids(rel):
            _kill(pid)
        left: list[str] = []
        for h in _hierarchies():
            top = h / rel.strip("/")
            if not top.is_dir():
                continue
            for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        left.append(d)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# -- the daemon ----------------------------------------------------------------------------

class PrivateDaemon:
    def __init__(self, base: Path, dockyardd: str, cgroup_parent: str) -> None:
        self.base = base
        self.sock = str(base / "d.sock")
        self.host = "unix://" + self.sock
        self.data_root = base / "data"
        self.exec_root = base / "x"  # short: <exec-root>/shim/<64 hex>/shim.sock must fit
                                      # in sun_path (107 bytes)
        self.cgroup_parent = cgroup_parent
        self.token = uuid.uuid4().hex
        self.dockyardd = dockyardd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "dockyardd.log"
        self.prefix = ""  # "/v1.NN", from the ping
        self.forced: list[str] = []  # what close() had to clean up by force

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        env[MARKER] = self.token
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.dockyardd, "-H", self.host, "--data-root", str(self.data_root),
                 "--exec-root", str(self.exec_root), "--cgroup-parent", self.cgroup_parent,
                 "--log-level", "warning"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited ({self.proc.returncode}): {self.log()}")
            try:
                with Conn(self.sock, timeout=5) as c:
                    c.send("GET", "/_ping")
                    status, headers = c.read_head()
                    c.read_body()
                if status == 200:
                    self.prefix = "/v" + headers.get("api-version", "1.24")
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"dockyardd did not come up in {timeout:.0f} s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def launcher_pid(self) -> int | None:
        """The daemon's child running ``dockyard.runtime.launcher``."""
        try:
            kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return None
        for k in kids:
            if "dockyard.runtime.launcher" in cmdline(int(k)):
                return int(k)
        return None

    def shim_pids(self) -> dict[str, int]:
        """{container id: shim PID} from ``<exec-root>/shim/<id>/status.json``, for the PIDs
        that are still a shim (the native ``dockyard-shim``, or a fork of the launcher,
        whose command line it keeps) and carry our run's marker."""
        out: dict[str, int] = {}
        d = self.exec_root / "shim"
        if not d.is_dir():
            return out
        for sub in d.iterdir():
            try:
                st = json.loads((sub / "status.json").read_text())
            except (OSError, ValueError):
                continue
            pid = int(st.get("shim_pid") or 0)
            cmd = cmdline(pid) if pid else ""
            shim = "dockyard-shim" in cmd or "dockyard.runtime.launcher" in cmd
            if shim and self._marked(pid):
                out[sub.name] = pid
        return out

    def _marked(self, pid: int) -> bool:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return f"{MARKER}={self.token}".encode() in env.split(b"\0")

    def conn(self) -> Conn:
        return Conn(self.sock)

    # -- API conveniences -------------------------------------------------------------
    def import_image(self, tar: Path, repo: str, tag: str = "latest") -> None:
        data = tar.read_bytes()
        with self.conn() as c:
            c.send("POST", f"{self.prefix}/images/create?fromSrc=-&repo={repo}&tag={tag}",
                   data, content_type="text/plain")
            status, _ = c.read_head()
            body = c.read_body()
        if status != 200 or b'"error' in body:
            raise RuntimeError(f"import of {tar} failed ({status}): {body[-500:]!r}")
        with self.conn() as c:
            c.json("GET", f"{self.prefix}/images/{repo}:{tag}/json")

    def container_ids(self) -> list[str]:
        with self.conn() as c:
            return [x["Id"] for x in c.json("GET", f"{self.prefix}/containers/json?all=1")]

    def remove_all(self) -> int:
        ids = self.container_ids()
        with self.conn() as c:
            for cid in ids:
                c.request("DELETE", f"{self.prefix}/containers/{cid}?force=1", ok=(204, 404))
        return len(ids)

    def close(self) -> list[str]:
        """Remove everything this daemon made and stop it. Returns what had to be forced."""
        forced = self.forced
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.remove_all()
            except Exception as exc:  # noqa: BLE001 - clean-up goes on regardless
                forced.append(f"removing containers through the API failed: {exc}")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                forced.append(f"dockyardd {self.proc.pid} ignored SIGTERM: killed")
                self.proc.kill()
                self.proc.wait()
        # Shims and launchers outlive the daemon by design: any left is ours (marked env).
        for pid in marked_pids(self.token):
            forced.append(f"killed leftover pid {pid}: {cmdline(pid)[:80]}")
            _kill(pid)
        left = remove_cgroup_tree(self.cgroup_parent)
        forced += [f"could not remove cgroup {d}" for d in left]
        deadline = time.monotonic() + 5
        while marked_pids(self.token) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.base.exists():
            mounts = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                      if ln.split()[4].startswith(str(self.base) + "/")]
            for m in sorted(mounts, key=len, reverse=True):  # none expected: say so if any
                forced.append(f"unmounted leftover {m}")
                subprocess.run(["umount", "-l", m], check=False)
            shutil.rmtree(self.base, ignore_errors=True)
        return forced
