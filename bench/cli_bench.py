#!/usr/bin/env python3
"""Start-up cost of the ``dockyard`` CLI next to the docker CLI, against the same fake daemon.

For ``version``, ``ps`` and ``--help``: the median (and minimum) wall time of the whole
process, ``dockyard`` versus ``docker`` (28.2.2, if on PATH), and the ratio. Both talk to one
fake Engine API daemon (``tests/unit/cli/fakedaemon.py``, API 1.47) on a unix socket in a temp
dir, which holds a handful of containers so that ``ps`` prints a real table. Runs are
interleaved (dockyard, docker, dockyard, ...) so that machine noise hits both alike.

Python's byte-code cache is compiled first (``compileall``): an installed CLI has it, and
``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment for the same reason.
The target is a median of at most 60 ms for ``dockyard version`` and ``dockyard ps``.

    .venv/bin/python bench/cli_bench.py [--runs 40] [--warmup 3] [--no-docker]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.unit.cli.fakedaemon import FakeDaemon, Program  # noqa: E402

TARGET_MS = 60.0


def dockyard_argv() -> list[str]:
    script = Path(sys.executable).parent / "dockyard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dockyard.cli"]


def seed(d: FakeDaemon) -> None:
    """A few containers in different states, as ``ps -a`` would see them."""
    d.add_image("busybox")
    d.programs["busybox"] = Program(block=True)
    import json

    for i in range(6):
        cid = d.new_id()
        from tests.unit.cli.fakedaemon import Container

        c = Container(cid, f"bench_{i}", json.loads(
            '{"Image": "busybox", "Cmd": ["sleep", "300"], "Labels": {"bench": "1"}}'))
        c.state = "running" if i % 2 == 0 else "exited"
        c.created -= 60 * i
        d.containers[cid] = c


def time_runs(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.decode()[:500]}")
    return dt * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-docker", action="store_true", help="time dockyard only")
    args = ap.parse_args()

    compileall.compile_dir(str(ROOT / "src" / "dockyard"), quiet=1)
    docker = None if args.no_docker else shutil.which("docker")
    tmp = tempfile.mkdtemp(prefix="dycb", dir="/tmp")
    daemon = FakeDaemon(os.path.join(tmp, "d.sock")).start()
    try:
        seed(daemon)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(DOCKER_HOST=daemon.host, DOCKER_CONFIG=os.path.join(tmp, "cfg"),
                   HOME=tmp, DOCKER_CLI_HINTS="false")
        os.makedirs(env["DOCKER_CONFIG"])
        ours = dockyard_argv()
        cases = [("version", ["version"]), ("ps", ["ps"]), ("--help", ["--help"])]
        results: dict[str, dict[str, list[float]]] = {}
        for name, sub in cases:
            res: dict[str, list[float]] = {"dockyard": [], "docker": []}
            for i in range(args.warmup + args.runs):
                a = time_runs(ours + sub, env)
                b = time_runs([docker] + sub, env) if docker else None
                if i >= args.warmup:
                    res["dockyard"].append(a)
                    if b is not None:
                        res["docker"].append(b)
            results[name] = res
        py = time_runs([sys.executable, "-c", "pass"], env)
        print(f"dockyard CLI start-up, {args.runs} runs each (+{args.warmup} warm-up), "
              f"fake daemon on {daemon.path}")
        print(f"interpreter alone (python -c pass, one run): {py:.1f} ms")
        print(f"{'command':<10} {'dockyard median':>16} {'min':>7} {'docker median':>15} "
              f"{'min':>7} {'ratio':>6}")
        ok = True
        for name, res in results.items():
            dm = statistics.median(res["dockyard"])
            line = f"{name:<10} {dm:>13.1f} ms {min(res['dockyard']):>7.1f}"
            if res["docker"]:
                km = statistics.median(res["docker"])
                line += f" {km:>12.1f} ms {min(res['docker']):>7.1f} {dm / km:>6.2f}"
            print(line)
            if name in ("version", "ps") and dm > TARGET_MS:
                ok = False
        print(f"target: median <= {TARGET_MS:.0f} ms for version and ps: "
              f"{'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
