#!/usr/bin/env python3
"""``make bench``: dockyard's speed and memory next to its peers, measured in one run.

    .venv/bin/python bench/run.py [--quick] [--runs N] [--warmup N] [--no-docker]
                                  [--ps-counts 0,100,1000] [--idle-counts 1,10,50]

Needs root (namespaces, cgroups). ``make bench`` runs it in a network namespace of its
own with only loopback up. It starts its own ``dockyardd`` on temp dirs (own socket,
data root, exec root, ``--cgroup-parent dockyard-bench-<pid>``), imports the busybox
rootfs (``$DOCKYARD_BUSYBOX_TAR``, default ``build/busybox-rootfs.tar``) as ``busybox``,
warms up, and measures each figure N times, printing the median, p10 and p90:

1. daemon side, ``true`` without network, through the Engine API on the unix socket with
   a raw HTTP client (``rawapi``): create, ``wait?condition=next-exit`` registered, start,
   the wait's result, delete; the whole cycle and each step. Peers: ``crun run`` and
   ``runc run`` of the same command on a plain extracted busybox rootfs
   (``runtime_bench``'s bundles, cgroup included), and the kernel's own cost of moving a
   process into a cgroup after an idle period and right after another move;
2. ``dockyard run --rm busybox true`` end to end (wall time of the process), and
   ``docker run --rm busybox true`` (docker CLI 28) against the same daemon, interleaved;
3. memory per idle container, engine side: PSS (and USS, RSS) of each shim from
   ``/proc/PID/smaps_rollup`` (shims found through ``<exec-root>/shim/<id>/status.json``)
   with 1, 10 and 50 idle ``sleep`` containers, and the daemon's and launcher's PSS;
4. ``dockyard ps -a`` and ``docker ps -a`` with 0, 100 and 1000 created containers;
5. CLI start-up: ``dockyard version`` / ``dockyard ps`` against ``docker version`` /
   ``docker ps``, and the interpreter alone (``python -c pass``).

When the installed ``dockyard`` script is pip's (it imports ``re`` before anything else),
the CLI rows are also measured through a 3-line launcher without that import, marked
``[script w/o import re]``, to show what replacing the script would save.

Ratios compare figures of this run only. Nothing is asserted: targets are printed as
met / not met and the exit status is 0 whenever every measurement could be taken.
Byte code is compiled first (``compileall``, as ``make`` does) and the children run with
``PYTHONDONTWRITEBYTECODE=1``, so every CLI run loads ``.pyc`` files and none writes any.
At the end every container, the daemon (by PID), its shims, the cgroups under its parent
and the temp dirs are removed; anything that had to be removed by force is listed.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from cli_bench import time_runs  # noqa: E402
from private_daemon import (  # noqa: E402
    PrivateDaemon,
    migration_probe,
    private_by_mapping,
    pss_kib,
    remove_cgroup_tree,
)
from rawapi import Conn  # noqa: E402
from stats import Table, percentile, ratio, summarize  # noqa: E402

TARGET_CYCLE_MS = 15.0  # issue 2: daemon-side create -> start -> exit of `true`
TARGET_RUN_MS = 80.0
TARGET_SHIM_MIB = 1.5
TARGET_CLI_MS = 60.0  # bench/cli_bench.py's target for version and ps
TARGET_EXEC_MS = 10.0  # issue 4: daemon-side exec of `true`


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


class Report:
    """Targets met or not, gathered for the summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def target(self, what: str, value: float, limit: float, unit: str) -> None:
        ok = "met" if value <= limit else "NOT met"
        self.lines.append(f"{what:<44} {value:8.2f} {unit:<4} target <= {limit:g} {unit}: {ok}")

    def note(self, text: str) -> None:
        self.lines.append(text)


# -- the environment ---------------------------------------------------------------------------

def busybox_tar() -> Path:
    tar = Path(os.environ.get("DOCKYARD_BUSYBOX_TAR") or ROOT / "build" / "busybox-rootfs.tar")
    if not tar.exists():
        raise SystemExit(f"bench: {tar} is missing (make images, or set DOCKYARD_BUSYBOX_TAR)")
    return tar


def venv_bin(name: str) -> str:
    p = Path(sys.executable).parent / name
    if not p.exists():
        raise SystemExit(f"bench: {p} is missing (make venv)")
    return str(p)


def compile_bytecode() -> tuple[int, int]:
    """compileall src/dockyard (as make does); returns (modules with a current .pyc, all)."""
    src = ROOT / "src" / "dockyard"
    compileall.compile_dir(str(src), quiet=1)
    total = fresh = 0
    for py in src.rglob("*.py"):
        total += 1
        pyc = Path(importlib.util.cache_from_source(str(py)))
        with contextlib.suppress(OSError):
            if pyc.stat().st_mtime >= py.stat().st_mtime:
                fresh += 1
    return fresh, total


def net_interfaces() -> list[str]:
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return [ln.split(":", 1)[0].strip() for ln in lines]


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "-"
    return out.splitlines()[0].strip() if out else "-"


def lean_script(installed: str, where: Path) -> str | None:
    """pip's console script for ``dockyard`` starts with ``import re`` (about 6 ms here, a
    fifth of ``dockyard version``). If the installed one does, write the same launcher
    without it, so that the report shows what replacing it would save; else None."""
    head = Path(installed).read_text(errors="replace").splitlines()[:6]
    if "import re" not in head:
        return None
    path = where / "dockyard-lean"
    path.write_text(f"#!{sys.executable}\nimport sys\nfrom dockyard.cli.main import main\n"
                    "if __name__ == '__main__':\n    sys.exit(main())\n")
    path.chmod(0o755)
    return str(path)


def cli_env(daemon: PrivateDaemon, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    (home / "docker-config").mkdir(parents=True, exist_ok=True)
    env.update(DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(home / "docker-config"),
               HOME=str(home), DOCKER_CLI_HINTS="false", PYTHONDONTWRITEBYTECODE="1")
    return env


# -- timing helpers ----------------------------------------------------------------------------

def interleaved(cmds: Mapping[str, Sequence[str]], env: dict[str, str], runs: int,
                warmup: int) -> dict[str, list[float]]:
    """Run the commands in turn (a, b, a, b, ...) so that machine noise hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(warmup + runs):
        for name, argv in cmds.items():
            dt = time_runs(list(argv), env)  # cli_bench's: wall ms, SystemExit on failure
            if i >= warmup:
                out[name].append(dt)
    return out


# -- 1. daemon-side lifecycle --------------------------------------------------------------------

STEPS = ("create", "wait registered", "start", "exit reported", "delete")


def lifecycle_once(d: PrivateDaemon, c: Conn) -> list[float]:
    """One create → wait → start → wait result → delete cycle; the step times in ms."""
    p = d.prefix
    body = json.dumps({"Image": "busybox", "Cmd": ["true"],
                       "HostConfig": {"NetworkMode": "none"}}).encode()
    w = Conn(d.sock)  # the streaming wait holds its own connection; opened outside the clock
    try:
        t0 = time.perf_counter()
        _, data = c.request("POST", f"{p}/containers/create", body)
        cid = json.loads(data)["Id"]
        t1 = time.perf_counter()
        w.send("POST", f"{p}/containers/{cid}/wait?condition=next-exit")
        status, _ = w.read_head()
        if status != 200:
            raise RuntimeError(f"wait: {status} {w.read_body()!r}")
        t2 = time.perf_counter()
        c.request("POST", f"{p}/containers/{cid}/start")
        t3 = time.perf_counter()
        result = json.loads(w.read_body())
        t4 = time.perf_counter()
        c.request("DELETE", f"{p}/containers/{cid}")
        t5 = time.perf_counter()
    finally:
        w.close()
    if result.get("StatusCode") != 0:
        raise RuntimeError(f"`true` exited with {result}")
    ts = (t0, t1, t2, t3, t4, t5)
    return [(b - a) * 1e3 for a, b in zip(ts, ts[1:], strict=False)]


def bench_lifecycle(d: PrivateDaemon, runs: int, warmup: int) -> tuple[list[float], list[float],
                                                                         list[list[float]]]:
    steps: list[list[float]] = [[] for _ in STEPS]
    cycle, to_exit = [], []
    with d.conn() as c:
        for i in range(warmup + runs):
            parts = lifecycle_once(d, c)
            if i < warmup:
                continue
            for k, v in enumerate(parts):
                steps[k].append(v)
            cycle.append(sum(parts))
            to_exit.append(sum(parts[:4]))
    return cycle, to_exit, steps


def exec_once(d: PrivateDaemon, c: Conn, cid: str) -> list[float]:
    """Daemon-side ``docker exec CID true``, as the CLI does it: exec create, exec start
    (hijacked, 101, read to the end of the stream), exec inspect; the step times in ms."""
    p = d.prefix
    body = json.dumps({"Cmd": ["true"], "AttachStdout": True, "AttachStderr": True}).encode()
    t0 = time.perf_counter()
    _, data = c.request("POST", f"{p}/containers/{cid}/exec", body)
    eid = json.loads(data)["Id"]
    t1 = time.perf_counter()
    s = Conn(d.sock)
    try:
        start = json.dumps({"Detach": False, "Tty": False}).encode()
        s.sock.sendall(
            f"POST {p}/exec/{eid}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
            f"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {len(start)}"
            "\r\n\r\n".encode() + start)
        status, _ = s.read_head()
        if status != 101:
            raise RuntimeError(f"exec start: {status}")
        while s.sock.recv(65536):
            pass
    finally:
        s.close()
    t2 = time.perf_counter()
    _, data = c.request("GET", f"{p}/exec/{eid}/json")
    t3 = time.perf_counter()
    if json.loads(data).get("ExitCode") != 0:
        raise RuntimeError(f"exec of `true`: {data!r}")
    ts = (t0, t1, t2, t3)
    return [(b - a) * 1e3 for a, b in zip(ts, ts[1:], strict=False)]


PEER_GAP = 0.3  # seconds of idle before each "apart" run of a peer


def bench_peers(work: Path, tar: Path, runs: int) -> tuple[dict[str, list[float]], list[str]]:
    """``crun run`` and ``runc run`` of ``true`` on a plain busybox rootfs (runtime_bench),
    back to back and ``PEER_GAP`` seconds apart (as each dockyardd cycle is: see the probe
    of cgroup moves in the report)."""
    notes: list[str] = []
    out: dict[str, list[float]] = {}
    try:
        import runtime_bench as rb
    except Exception as exc:  # noqa: BLE001 - the peers are optional, the report says why
        return out, [f"peers skipped: bench/runtime_bench.py did not import: {exc}"]
    lower = work / "busybox"
    lower.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(tar), "-C", str(lower)], check=True)

    def crun(gap: float, tag: str) -> list[float]:
        return list(rb.bench_crun(work, rb._plain_bundle(work, lower, tag), runs, gap=gap,
                                  tag=tag))

    def runc(gap: float, tag: str) -> list[float]:
        return list(rb.bench_program(["runc"], work, rb._plain_bundle(work, lower, tag), runs,
                                     tag, gap=gap))

    peers = [(name, fn) for name, fn in (("crun", crun), ("runc", runc)) if shutil.which(name)]
    try:
        for name, fn in peers:
            for label, gap, tag in (("back to back", 0.0, name),
                                    (f"{PEER_GAP:g} s apart", PEER_GAP, f"{name}gap")):
                try:
                    out[f"{name} run, {label}"] = fn(gap, tag)
                except (Exception, SystemExit) as exc:  # noqa: BLE001
                    notes.append(f"{name} run ({label}) failed: {exc}")
    finally:
        # runtime_bench puts its cgroups under a parent named after our pid
        parent = getattr(rb, "CGROUP_PARENT", "")
        if parent and str(os.getpid()) in parent:
            left = remove_cgroup_tree(parent, timeout=2.0)
            notes += [f"could not remove cgroup {d}" for d in left]
    if not peers:
        notes.append("peers skipped: neither crun nor runc is installed")
    return out, notes


# -- 4. ps -a ------------------------------------------------------------------------------------

def create_stopped(d: PrivateDaemon, n: int) -> list[float]:
    """Create n containers (not started); returns each create's time in ms."""
    body = json.dumps({"Image": "busybox", "Cmd": ["true"],
                       "HostConfig": {"NetworkMode": "none"}}).encode()
    times = []
    with d.conn() as c:
        for _ in range(n):
            t0 = time.perf_counter()
            c.request("POST", f"{d.prefix}/containers/create", body)
            times.append((time.perf_counter() - t0) * 1e3)
    return times


# -- 5. memory -----------------------------------------------------------------------------------

def start_idle(d: PrivateDaemon, n: int) -> None:
    body = json.dumps({"Image": "busybox", "Cmd": ["sleep", "3600"],
                       "HostConfig": {"NetworkMode": "none"}}).encode()
    with d.conn() as c:
        for _ in range(n):
            cid = json.loads(c.request("POST", f"{d.prefix}/containers/create", body)[1])["Id"]
            c.request("POST", f"{d.prefix}/containers/{cid}/start")


def measure_memory(d: PrivateDaemon, expect: int) -> dict[str, object]:
    deadline = time.monotonic() + 10
    shims = d.shim_pids()
    while len(shims) < expect and time.monotonic() < deadline:
        time.sleep(0.05)
        shims = d.shim_pids()
    if len(shims) < expect:
        raise RuntimeError(f"expected {expect} shims, found {len(shims)}")
    time.sleep(0.5)  # let the shims settle into their idle loop
    pss, uss, rss = [], [], []
    for pid in shims.values():
        a, b, c = pss_kib(pid)
        pss.append(a / 1024)
        uss.append(b / 1024)
        rss.append(c / 1024)
    launcher = d.launcher_pid()
    return {"pss": pss, "uss": uss, "rss": rss,
            "daemon": pss_kib(d.pid)[0] / 1024,
            "launcher": pss_kib(launcher)[0] / 1024 if launcher else float("nan")}


# -- main ----------------------------------------------------------------------------------------

def parse_counts(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: few iterations, small counts")
    ap.add_argument("--runs", type=int, help="measured iterations per figure "
                    "(default 30; 3 with --quick; ps -a and peers use fewer)")
    ap.add_argument("--warmup", type=int, help="unmeasured iterations first (default 3; 1)")
    ap.add_argument("--ps-counts", type=parse_counts, help="default 0,100,1000 (0,20)")
    ap.add_argument("--idle-counts", type=parse_counts, help="default 1,10,50 (1,3)")
    ap.add_argument("--no-docker", action="store_true", help="leave the docker CLI out")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    ps_counts = args.ps_counts or ([0, 20] if args.quick else [0, 100, 1000])
    idle_counts = args.idle_counts or ([1, 3] if args.quick else [1, 10, 50])
    ps_runs = max(2, runs // 3)

    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (namespaces, mounts, cgroups)")
    tar = busybox_tar()
    dockyardd, dockyard = venv_bin("dockyardd"), venv_bin("dockyard")
    docker = None if args.no_docker else shutil.which("docker")
    report = Report()
    t_start = time.monotonic()

    section("setup")
    fresh, total = compile_bytecode()
    ifaces = net_interfaces()
    print(f"  host: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} ({sys.executable})")
    print(f"  peers: {tool_version(['crun', '--version'])}; {tool_version(['runc', '--version'])}"
          f"; {tool_version([docker, '--version']) if docker else 'docker CLI: not used'}")
    print(f"  byte code: {fresh}/{total} modules of src/dockyard have a current .pyc; "
          "children run with PYTHONDONTWRITEBYTECODE=1")
    print(f"  network: {'isolated, ' if ifaces == ['lo'] else 'NOT isolated, '}"
          f"interfaces {', '.join(ifaces)}")
    print(f"  iterations: {runs} measured after {warmup} warm-up "
          f"({ps_runs} for ps -a); ps -a counts {ps_counts}; idle counts {idle_counts}")
    load = os.getloadavg()
    print(f"  load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    tmp = Path(tempfile.mkdtemp(prefix="dyb", dir="/tmp"))  # short: see PrivateDaemon
    daemon = PrivateDaemon(tmp / "d", dockyardd, f"dockyard-bench-{os.getpid()}")
    (tmp / "d").mkdir()
    failed = False
    try:
        t0 = time.perf_counter()
        daemon.start()
        t_up = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        daemon.import_image(tar, "busybox")
        t_imp = (time.perf_counter() - t0) * 1e3
        print(f"  dockyardd pid {daemon.pid} on {daemon.sock} (API {daemon.prefix[2:]}): "
              f"up in {t_up:.0f} ms; busybox imported in {t_imp:.0f} ms ({tar})")
        env = cli_env(daemon, tmp / "home")
        lean = lean_script(dockyard, tmp)
        lean_tag = " [script w/o import re]"

        # 1 ------------------------------------------------------------------------------------
        section("daemon-side lifecycle: create -> start -> exit of `true`, no network (ms)")
        print("  raw HTTP on the unix socket: create; wait?condition=next-exit (headers back); "
              "start; wait's body; delete")
        cycle, to_exit, steps = bench_lifecycle(daemon, runs, warmup)
        peers, notes = bench_peers(tmp / "peers", tar, max(3, runs * 2 // 3))
        t = Table("", "median", "p10", "p90", "n", "vs crun", "vs runc")
        apart = f"{PEER_GAP:g} s apart"  # the peers measured the way dockyardd's cycles run
        crun_m = summarize(peers[f"crun run, {apart}"]).median if f"crun run, {apart}" in peers \
            else 0.0
        runc_m = summarize(peers[f"runc run, {apart}"]).median if f"runc run, {apart}" in peers \
            else 0.0
        s_cycle = summarize(cycle)
        t.add_summary("dockyardd cycle, create..delete", cycle, ratio(s_cycle.median, crun_m),
                      ratio(s_cycle.median, runc_m))
        s_exit = summarize(to_exit)
        t.add_summary("dockyardd create..exit reported", to_exit, ratio(s_exit.median, crun_m),
                      ratio(s_exit.median, runc_m))
        for name, xs in zip(STEPS, steps, strict=True):
            t.add_summary(f"  {name}", xs)
        for name, xs in peers.items():
            t.add_summary(f"{name} (plain rootfs)", xs)
        print(t.render())
        for n in notes:
            print(f"  note: {n}")
        cold, warm = migration_probe(f"/{daemon.cgroup_parent}", max(3, runs // 3))
        if cold:
            print(f"  kernel: one cgroup.procs write (a process moved into a cgroup) takes "
                  f"{percentile(cold, 50):.2f} ms after 0.3 s without any move, "
                  f"{percentile(warm, 50):.2f} ms right after another (median of {len(cold)}):"
                  "\n  each dockyardd start pays the first figure once, as crun and runc do "
                  f"when {PEER_GAP:g} s apart (the ratios compare with those)")
        report.target("daemon-side create..exit of `true` (median)", s_exit.median,
                      TARGET_CYCLE_MS, "ms")
        report.note(f"{'daemon-side cycle with the delete (median)':<44} {s_cycle.median:8.2f} ms")

        # 2 ------------------------------------------------------------------------------------
        section("run --rm busybox true, end to end (wall ms of the CLI process)")
        cmds: dict[str, list[str]] = {"dockyard run --rm busybox true":
                                      [dockyard, "run", "--rm", "busybox", "true"]}
        if lean:
            cmds["dockyard run --rm busybox true" + lean_tag] = [lean, "run", "--rm", "busybox",
                                                                  "true"]
        if docker:
            cmds["docker run --rm busybox true"] = [docker, "run", "--rm", "busybox", "true"]
        res = interleaved(cmds, env, runs, warmup)
        base = summarize(res["dockyard run --rm busybox true"]).median
        peer = summarize(res["docker run --rm busybox true"]).median if docker else 0.0
        t = Table("", "median", "p10", "p90", "n", "dockyard / docker")
        for name, xs in res.items():
            t.add_summary(name, xs, ratio(summarize(xs).median, peer)
                          if name.startswith("dockyard") else "")
        print(t.render())
        print("  (same daemon for both; the daemon-side cycle above is "
              f"{s_cycle.median:.1f} ms of it)")
        if lean:
            print(f"  {lean_tag.strip()}: the same CLI, started by a 3-line launcher instead "
                  "of pip's console script, which imports re first")
        report.target("dockyard run --rm busybox true (median)", base, TARGET_RUN_MS, "ms")
        if docker:
            report.note(f"{'docker CLI run --rm busybox true (median)':<44} "
                        f"{summarize(res['docker run --rm busybox true']).median:8.2f} ms")

        # 2b (issue 4) ------------------------------------------------------------------------
        section("exec of `true` in a running container (ms)")
        with daemon.conn() as c:
            _, data = c.request("POST", f"{daemon.prefix}/containers/create", json.dumps(
                {"Image": "busybox", "Cmd": ["sleep", "1000"]}).encode())
            ecid = json.loads(data)["Id"]
            c.request("POST", f"{daemon.prefix}/containers/{ecid}/start")
            parts = [exec_once(daemon, c, ecid) for _ in range(warmup + runs)][warmup:]
        totals = [sum(x) for x in parts]
        t = Table("daemon side (raw HTTP)", "median", "p10", "p90", "n")
        t.add_summary("exec create + start to end of stream + inspect", totals, "")
        steps = ("  exec create", "  exec start, stream to its end", "  exec inspect")
        for k, name in enumerate(steps):
            t.add_summary(name, [x[k] for x in parts], "")
        print(t.render())
        report.target("daemon-side exec of `true` (median)", summarize(totals).median,
                      TARGET_EXEC_MS, "ms")
        ecmds: dict[str, list[str]] = {"dockyard exec ID true": [dockyard, "exec", ecid, "true"]}
        if docker:
            ecmds["docker exec ID true"] = [docker, "exec", ecid, "true"]
        res = interleaved(ecmds, env, runs, warmup)
        peer = summarize(res["docker exec ID true"]).median if docker else 0.0
        t = Table("end to end (wall ms of the CLI process)", "median", "p10", "p90", "n",
                  "dockyard / docker")
        for name, xs in res.items():
            t.add_summary(name, xs, ratio(summarize(xs).median, peer)
                          if name.startswith("dockyard") else "")
        print(t.render())
        ours = summarize(res["dockyard exec ID true"]).median
        report.note(f"{'dockyard exec ID true (median)':<44} {ours:8.2f} ms")
        if docker:
            report.note(f"{'docker CLI exec ID true (median)':<44} {peer:8.2f} ms")
        with daemon.conn() as c:
            c.request("DELETE", f"{daemon.prefix}/containers/{ecid}?force=1")

        # 3 ------------------------------------------------------------------------------------
        section("memory per idle container, engine side (MiB, /proc/PID/smaps_rollup)")
        launcher = daemon.launcher_pid()
        base_daemon = pss_kib(daemon.pid)[0] / 1024
        base_launcher = pss_kib(launcher)[0] / 1024 if launcher else float("nan")
        t = Table("idle sleep containers", "shim PSS median", "p10", "p90", "shim USS",
                  "shim RSS", "daemon PSS", "launcher PSS", "engine/container")
        t.add("0", "-", "-", "-", "-", "-", base_daemon, base_launcher, "-")
        running = 0
        worst = 0.0
        for count in idle_counts:
            start_idle(daemon, count - running)
            running = count
            m = measure_memory(daemon, count)
            pss = m["pss"]
            assert isinstance(pss, list)
            med = percentile(pss, 50)
            worst = max(worst, med)
            per = (sum(pss) + float(m["daemon"]) - base_daemon) / count  # type: ignore[arg-type]
            t.add(str(count), med, percentile(pss, 10), percentile(pss, 90),
                  percentile(m["uss"], 50), percentile(m["rss"], 50),  # type: ignore[arg-type]
                  m["daemon"], m["launcher"], per)
        print(t.render())
        print("  engine/container = (sum of shim PSS + daemon PSS growth since 0) / N; "
              "USS = private pages only")
        shims = daemon.shim_pids()
        if shims:
            top = private_by_mapping(next(iter(shims.values())))[:4]
            print("  one shim's private pages by mapping: " + ", ".join(
                f"{os.path.basename(name) or name} {kib / 1024:.2f} MiB" for name, kib in top))
        report.target("shim PSS per idle container (worst median)", worst, TARGET_SHIM_MIB,
                      "MiB")
        t0 = time.perf_counter()
        removed = daemon.remove_all()
        print(f"  removed {removed} running containers (force) in "
              f"{(time.perf_counter() - t0) * 1e3:.0f} ms")
        # 4 ------------------------------------------------------------------------------------
        section("ps -a with N created containers (wall ms of the CLI process)")
        t = Table("", "median", "p10", "p90", "n", "dockyard / docker")
        have = 0
        creates: list[float] = []
        for count in ps_counts:
            if count > have:
                creates += create_stopped(daemon, count - have)
                have = count
            cmds = {f"dockyard ps -a, {count}": [dockyard, "ps", "-a"]}
            if docker:
                cmds[f"docker ps -a, {count}"] = [docker, "ps", "-a"]
            res = interleaved(cmds, env, ps_runs, 1)
            ours = summarize(res[f"dockyard ps -a, {count}"]).median
            peer = summarize(res[f"docker ps -a, {count}"]).median if docker else 0.0
            for name, xs in res.items():
                t.add_summary(name, xs, ratio(ours, peer) if name.startswith("dockyard") else "")
        print(t.render())
        if creates:
            print(f"  creating them: median {percentile(creates, 50):.2f} ms per create, "
                  f"p90 {percentile(creates, 90):.2f} ms ({len(creates)} creates, "
                  f"last at {have} containers)")
        t0 = time.perf_counter()
        removed = daemon.remove_all()
        print(f"  removed {removed} containers in {(time.perf_counter() - t0) * 1e3:.0f} ms")

        # 5 ------------------------------------------------------------------------------------
        section("CLI start-up (wall ms of the process, real daemon, no containers left)")
        cmds = {"python -c pass": [sys.executable, "-c", "pass"],
                "dockyard version": [dockyard, "version"], "dockyard ps": [dockyard, "ps"]}
        if lean:
            cmds["dockyard version" + lean_tag] = [lean, "version"]
            cmds["dockyard ps" + lean_tag] = [lean, "ps"]
        if docker:
            cmds.update({"docker version": [docker, "version"], "docker ps": [docker, "ps"]})
        res = interleaved(cmds, env, runs, warmup)
        t = Table("", "median", "p10", "p90", "n", "dockyard / docker")
        for name, xs in res.items():
            peer_name = name.replace(lean_tag, "").replace("dockyard", "docker")
            r = (ratio(summarize(xs).median, summarize(res[peer_name]).median)
                 if name.startswith("dockyard") and peer_name in res else "")
            t.add_summary(name, xs, r)
        print(t.render())
        for name in ("dockyard version", "dockyard ps"):
            report.target(f"{name} (median)", summarize(res[name]).median, TARGET_CLI_MS, "ms")

    except (Exception, SystemExit) as exc:  # noqa: BLE001 - report, then clean up
        failed = True
        print(f"\nbench: a measurement failed: {exc}", flush=True)
        if daemon.proc is not None:
            print(f"  dockyardd log tail:\n{daemon.log()}")
    finally:
        section("clean-up")
        forced = daemon.close()
        shutil.rmtree(tmp, ignore_errors=True)
        for f in forced:
            print(f"  forced: {f}")
        print(f"  daemon stopped, cgroup /{daemon.cgroup_parent} and {tmp} removed"
              f"{'' if forced else '; nothing left behind'}")

    section("summary")
    for line in report.lines:
        print(f"  {line}")
    load = os.getloadavg()
    print(f"  load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"total {time.monotonic() - t_start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
