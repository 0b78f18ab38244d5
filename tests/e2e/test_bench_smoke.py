"""``bench/run.py --quick`` runs to the end and prints every section (no timing is checked).

The benchmark starts its own dockyardd on temp dirs, measures a few iterations of each
figure and removes everything it created; the session's leak check covers what it might
leave behind (its processes inherit this session's marker).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requires import require

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX_TAR = Path(os.environ.get("DOCKYARD_BUSYBOX_TAR", ROOT / "build" / "busybox-rootfs.tar"))

SECTIONS = [
    "== setup ==",
    "== daemon-side lifecycle: create -> start -> exit of `true`, no network (ms) ==",
    "== run --rm busybox true, end to end (wall ms of the CLI process) ==",
    "== memory per idle container, engine side (MiB, /proc/PID/smaps_rollup) ==",
    "== ps -a with N created containers (wall ms of the CLI process) ==",
    "== CLI start-up (wall ms of the process, real daemon, no containers left) ==",
    "== clean-up ==",
    "== summary ==",
]

ROWS = [
    "dockyardd cycle, create..delete",
    "dockyard run --rm busybox true",
    "dockyard version",
    "dockyard ps -a, 0",
    "shim PSS per idle container",
    "nothing left behind",
]


@pytest.mark.slow
def test_bench_quick_completes() -> None:
    require(BUSYBOX_TAR.exists(), f"{BUSYBOX_TAR} is missing (make images)")
    env = dict(os.environ, DOCKYARD_BUSYBOX_TAR=str(BUSYBOX_TAR))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"bench failed ({proc.returncode}):\n{out}\n{proc.stderr}"
    positions = []
    for title in SECTIONS:
        assert title in out, f"missing section {title!r}:\n{out}"
        positions.append(out.index(title))
    assert positions == sorted(positions), f"sections out of order:\n{out}"
    for row in ROWS:
        assert row in out, f"missing {row!r}:\n{out}"
    assert "a measurement failed" not in out
    assert "forced:" not in out, f"the benchmark had to force its clean-up:\n{out}"
