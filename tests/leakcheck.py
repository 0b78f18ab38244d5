"""What the test run leaves behind on the host: mounts, processes, cgroups, namespaces, links.

``snapshot()`` before the run, ``leaks(before)`` after: a non-empty result fails the run.
A process counts as ours if it, or one of its ancestors, carries this session's marker in
its environment (``DOCKYARD_TEST_SESSION``, set by ``mark_session()`` and inherited by
every daemon, launcher and shim the tests start; a container's process is a child of its
shim). Processes of other sessions running at the same time are not ours.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    pids: frozenset[int]
    cgroups: frozenset[str]
    links: frozenset[str]
    netns: frozenset[str]


def _mounts() -> frozenset[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            out.add(f"{parts[4]} ({parts[parts.index('-') + 1]})")
    return frozenset(out)


def _pids() -> frozenset[int]:
    return frozenset(int(p) for p in os.listdir("/proc") if p.isdigit())


def _cgroups() -> frozenset[str]:
    out: set[str] = set()
    if not CGROUP_ROOT.is_dir():
        return frozenset()
    for ctrl in CGROUP_ROOT.iterdir():
        try:
            for p in ctrl.rglob("*"):
                if p.is_dir() and "dockyard" in str(p.relative_to(ctrl)):
                    out.add(str(p))
        except OSError:
            continue
    return frozenset(out)


def _links() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/sys/class/net"))
    except OSError:
        return frozenset()


def _netns() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/run/netns"))
    except OSError:
        return frozenset()


def snapshot() -> Snapshot:
    return Snapshot(_mounts(), _pids(), _cgroups(), _links(), _netns())


MARKER = "DOCKYARD_TEST_SESSION"


def mark_session() -> str:
    """Tag this process's environment so that everything it starts can be told apart."""
    token = os.environ.get(MARKER) or uuid.uuid4().hex
    os.environ[MARKER] = token
    return token


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _marked(pid: int, token: bytes) -> bool:
    try:
        return token in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _ours(pid: int) -> str | None:
    """A description of pid if this session started it (itself or an ancestor is marked)."""
    token = f"{MARKER}={os.environ.get(MARKER, '')}".encode()
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw or _ppid(pid) == 2 or not os.environ.get(MARKER):  # kernel threads
        return None
    p = pid
    for _ in range(8):
        if p <= 1 or p == os.getpid():
            return None
        if _marked(p, token):
            cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            return f"pid {pid}: {cmd[:120]}"
        p = _ppid(p)
    return None


def leaks(before: Snapshot, grace: float = 5.0) -> list[str]:
    """Everything new since ``before``, after waiting up to ``grace`` seconds for it to go."""
    deadline = time.monotonic() + grace
    while True:
        now = snapshot()
        found: list[str] = []
        found += [f"mount {m}" for m in sorted(now.mounts - before.mounts)]
        for pid in sorted(now.pids - before.pids):
            desc = _ours(pid)
            if desc:
                found.append(f"process {desc}")
        found += [f"cgroup {c}" for c in sorted(now.cgroups - before.cgroups)]
        found += [f"link {n}" for n in sorted(now.links - before.links)]
        found += [f"netns {n}" for n in sorted(now.netns - before.netns)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
