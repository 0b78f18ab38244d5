"""Container start path: create → start → exit of ``true``, median of N runs.

    .venv/bin/python bench/runtime_bench.py [-n 30]

Four ways on the same busybox rootfs:

* ``library``: ``create_init`` + ``start`` + ``waitpid`` in this process, with an overlay
  rootfs mount (fresh upper/work per run) and a cgroup, as the shim does. The cgroup
  removal after exit is reported apart (it is off the start path). Measured twice:
  back to back, and with ``--gap`` seconds of idle before each run, which is what a
  ``docker run`` usually sees: on cgroup v1 the first cgroup migration after an idle
  period waits for an RCU grace period in the kernel (runc and crun pay it too; their
  figures are given both ways too).
* ``dockyard-runtime run``, ``runc run``, ``crun run``: the program, wall time of the
  whole command on a plain (read-only) rootfs, cgroup included. crun refuses this host's
  hybrid cgroup layout, so it runs in a private mount namespace without
  /sys/fs/cgroup/unified.

Needs root. Prints medians in milliseconds and each one's ratio to the library path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: a parent of our own: other benches on the machine may use /dockyard-bench
CGROUP_PARENT = f"/dockyard-rtbench-{os.getpid()}"
sys.path.insert(0, str(REPO / "src"))

from dockyard.linux import mount as mnt  # noqa: E402
from dockyard.linux import ns  # noqa: E402
from dockyard.oci.mount import Mount  # noqa: E402
from dockyard.oci.runtime_spec import default_spec  # noqa: E402
from dockyard.runtime import create_init  # noqa: E402
from dockyard.runtime.cgroups import open_cgroup  # noqa: E402


def _tar() -> Path:
    env = os.environ.get("DOCKYARD_BUSYBOX_TAR")
    tar = Path(env) if env else REPO / "build" / "busybox-rootfs.tar"
    if not tar.exists():
        tar.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["/usr/bin/python3", str(REPO / "scripts" / "mkbusybox.py"), "-o", str(tar)], check=True
        )
    return tar


def bench_library(
    work: Path, lower: Path, n: int, gap: float = 0.0, tag: str = "lib"
) -> tuple[list[float], list[float]]:
    bundle = work / tag
    (bundle / "rootfs").mkdir(parents=True)
    spec = default_spec(["true"], hostname="bench")
    starts, destroys = [], []
    for i in range(n + 2):
        up, wk = bundle / f"u{i}", bundle / f"w{i}"
        up.mkdir()
        wk.mkdir()
        overlay = Mount(
            "overlay", "overlay", (f"lowerdir={lower}", f"upperdir={up}", f"workdir={wk}")
        )
        if gap:
            time.sleep(gap)
        t0 = time.perf_counter()
        init = create_init(
            spec,
            bundle,
            container_id=f"bench{i}",
            rootfs_mounts=[overlay],
            cgroup_path=f"{CGROUP_PARENT}/{tag}{i}",
        )
        init.start()
        code = init.wait()
        t1 = time.perf_counter()
        init.destroy()
        t2 = time.perf_counter()
        assert code == 0, code
        if i >= 2:  # warm-up runs are dropped
            starts.append((t1 - t0) * 1e3)
            destroys.append((t2 - t1) * 1e3)
    return starts, destroys


def _plain_bundle(work: Path, lower: Path, name: str) -> Path:
    bundle = work / name
    bundle.mkdir()
    spec = default_spec(
        ["true"], hostname="bench", root_path=str(lower), readonly_rootfs=True, user=None
    )
    spec["ociVersion"] = "1.0.2"  # crun 1.8 knows runtime-spec 1.0
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def _set_cgroup(bundle: Path, path: str) -> None:
    spec = json.loads((bundle / "config.json").read_text())
    spec["linux"]["cgroupsPath"] = path
    (bundle / "config.json").write_text(json.dumps(spec))


def bench_program(
    argv0: list[str], work: Path, bundle: Path, n: int, tag: str, gap: float = 0.0
) -> list[float]:
    root = work / f"root-{tag}"
    root.mkdir()
    times = []
    for i in range(n + 2):
        _set_cgroup(bundle, f"{CGROUP_PARENT}/{tag}{i}")
        if gap:
            time.sleep(gap)
        cmd = [*argv0, "--root", str(root), "run", "--bundle", str(bundle), f"{tag}{i}"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
        t1 = time.perf_counter()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {p.stderr.decode().strip()}")
        if i >= 2:
            times.append((t1 - t0) * 1e3)
    return times


def bench_crun(
    work: Path, bundle: Path, n: int, gap: float = 0.0, tag: str = "crun"
) -> list[float]:
    """crun in a forked child that leaves the hybrid cgroup2 mount out of its mount ns."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            ns.unshare(ns.CLONE_NEWNS)
            mnt.mount(None, "/", None, mnt.MS_REC | mnt.MS_PRIVATE)
            mnt.umount2("/sys/fs/cgroup/unified", mnt.MNT_DETACH)
            times = bench_program(["crun"], work, bundle, n, tag, gap)
            os.write(w, json.dumps(times).encode())
            code = 0
        except BaseException as exc:  # noqa: B036
            os.write(w, json.dumps(str(exc)).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        data = json.loads(f.read() or "null")
    os.waitpid(pid, 0)
    if not isinstance(data, list):
        raise SystemExit(f"crun: {data}")
    return data


def _remove_cgroup_tree(path: str) -> None:
    """Remove ``path`` and what runc/crun may have left below it (they do not prune)."""
    cg = open_cgroup(path)
    for d in cg.dirs():
        if d.is_dir():
            for child in sorted((c for c in d.iterdir() if c.is_dir()), reverse=True):
                try:
                    open_cgroup(f"{path}/{child.name}").destroy(timeout=2.0, prune=False)
                except Exception as exc:  # noqa: BLE001 - report, never mask the figures
                    print(f"runtime_bench: could not remove {child}: {exc}", file=sys.stderr)
    try:
        cg.destroy(timeout=2.0, prune=False)
    except Exception as exc:  # noqa: BLE001
        print(f"runtime_bench: could not remove cgroup {path}: {exc}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.2, help="idle seconds before each spaced run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("runtime_bench: needs root")
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    try:
        lower = work / "busybox"
        lower.mkdir()
        subprocess.run(["tar", "-xf", str(_tar()), "-C", str(lower)], check=True)
        results: dict[str, list[float]] = {}
        results["library create+start+exit"], destroys = bench_library(work, lower, args.n)
        results[f"library, {args.gap:g}s apart"], _ = bench_library(
            work, lower, args.n, args.gap, "gap"
        )
        rt = [str(REPO / ".venv" / "bin" / "dockyard-runtime")]
        if not os.path.exists(rt[0]):
            rt = [sys.executable, "-m", "dockyard.runtime.cli"]
        results["dockyard-runtime run"] = bench_program(
            rt, work, _plain_bundle(work, lower, "dy"), args.n, "dy"
        )
        if shutil.which("runc"):
            b = _plain_bundle(work, lower, "runc")
            results["runc run"] = bench_program(["runc"], work, b, args.n, "runc")
            results[f"runc run, {args.gap:g}s apart"] = bench_program(
                ["runc"], work, b, args.n, "runcgap", args.gap
            )
        if shutil.which("crun"):
            b = _plain_bundle(work, lower, "crun")
            results["crun run"] = bench_crun(work, b, args.n)
            results[f"crun run, {args.gap:g}s apart"] = bench_crun(
                work, b, args.n, args.gap, "crungap"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _remove_cgroup_tree(CGROUP_PARENT)
    base = statistics.median(results["library create+start+exit"])
    print(f"create -> start -> exit of `true`, median of {args.n} runs (ms)")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"  {name:28} {med:7.2f}   x{med / base:5.2f}")
    removal = statistics.median(destroys)
    print(f"  {'library cgroup removal':28} {removal:7.2f}   (after exit, off the start path)")


if __name__ == "__main__":
    main()
