"""``dockyardd``: the daemon. Flags as in DESIGN.md §1.

It locks its data root (a second daemon on the same root refuses to start), writes its
pidfile, starts the engine (launcher + reconciliation with live shims) and serves the
Engine API on each ``-H unix://PATH`` socket (mode 0660). SIGTERM/SIGINT stop serving;
running containers keep running (their shims own them) and are picked up by the next
daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"

log = logging.getLogger("dockyard.daemon")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="dockyardd", description="The dockyard daemon: serves the Docker Engine API."
    )
    ap.add_argument(
        "-H", "--host", action="append", default=[], help="unix://PATH to listen on (repeatable)"
    )
    ap.add_argument("--data-root", default="/var/lib/dockyard")
    ap.add_argument("--exec-root", default="/run/dockyard")
    ap.add_argument("--pidfile", default="")
    ap.add_argument("--registry-mirror", action="append", default=[])
    ap.add_argument("--insecure-registry", action="append", default=[])
    ap.add_argument("--bip", default="")
    ap.add_argument(
        "--shim",
        default="",
        choices=["", "native", "python"],
        help="per-container shim: native (C, the default when built) or python",
    )
    ap.add_argument(
        "--cgroup-parent",
        default="/dockyard",
        help="cgroup path under which containers' cgroups are made",
    )
    ap.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warn", "warning", "error", "fatal"],
    )
    ap.add_argument("-v", "--version", action="store_true")
    return ap.parse_args(argv)


class DataRootLocked(Exception):
    pass


def lock_data_root(data_root: Path) -> int:
    """Hold ``<data-root>/dockyardd.lock`` for the life of the process."""
    data_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_root / "dockyardd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.read(fd, 32).decode().strip()
        except OSError:
            holder = "?"
        os.close(fd)
        raise DataRootLocked(
            f"another dockyardd (pid {holder or '?'}) is using data root {data_root}"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise SystemExit(f"dockyardd: only unix:// sockets are supported: {host}")
    return host[len("unix://") :]


async def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from dockyard.daemon.app import make_app
    from dockyard.engine.config import EngineConfig
    from dockyard.engine.engine import Engine

    cfg = EngineConfig(
        data_root=Path(args.data_root),
        exec_root=Path(args.exec_root),
        registry_mirrors=list(args.registry_mirror),
        insecure_registries=list(args.insecure_registry),
        bip=args.bip,
        cgroup_parent="/" + args.cgroup_parent.strip("/"),
        shim=args.shim,
    )
    engine = Engine(cfg)
    await engine.start()
    app = make_app(engine)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    paths = [_socket_path(h) for h in (args.host or [DEFAULT_HOST])]
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        site = web.UnixSite(runner, path)
        await site.start()
        os.chmod(path, 0o660)
    log.info("dockyardd listening on %s", ", ".join(paths))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("dockyardd shutting down; containers keep running")
    await runner.cleanup()
    await engine.close()
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.version:
        from dockyard import __version__

        print(f"dockyardd version {__version__}")
        return 0
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(args.log_level, args.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        lock_fd = lock_data_root(Path(args.data_root))
    except DataRootLocked as exc:
        print(f"dockyardd: {exc}", file=sys.stderr)
        return 1
    if args.pidfile:
        Path(args.pidfile).parent.mkdir(parents=True, exist_ok=True)
        Path(args.pidfile).write_text(f"{os.getpid()}\n")
    try:
        asyncio.run(serve(args))
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except FileNotFoundError:
                pass
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
