"""``dockyard-registry``: serve the registry, or maintain its storage.

::

    dockyard-registry [serve] [--listen 127.0.0.1:5000] [--root DIR] [--htpasswd FILE]
                      [--auth none|basic|token] [--tls-cert F --tls-key F] ...
    dockyard-registry garbage-collect --root DIR [--dry-run] [--upload-max-age SECONDS]
    dockyard-registry verify --root DIR

``serve`` prints ``dockyard-registry listening on http(s)://HOST:PORT`` on stderr once it
accepts connections (``--listen 127.0.0.1:0`` picks a free port and the line tells which),
and stops cleanly on SIGTERM or SIGINT. Run ``garbage-collect`` while the registry is stopped
or idle.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from collections.abc import Sequence

from aiohttp import web

from .app import make_app
from .auth import (
    Authorizer,
    BasicAuth,
    Htpasswd,
    NoAuth,
    Policy,
    TokenAuth,
    TokenService,
    load_or_create_key,
)
from .storage.driver import StorageDriver
from .storage.filesystem import FilesystemDriver
from .storage.gc import collect, verify
from .storage.inmemory import InMemoryDriver
from .storage.repo import LayoutVersionError, Registry, ensure_layout

DEFAULT_ROOT = "/var/lib/dockyard-registry"
DEFAULT_LISTEN = "127.0.0.1:5000"

log = logging.getLogger("dockyard.registry")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _serve_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="OCI Distribution registry server",
        epilog="maintenance: dockyard-registry garbage-collect --root DIR [--dry-run] "
               "[--upload-max-age SECONDS] | dockyard-registry verify --root DIR")
    p.add_argument("--listen", type=_listen, default=_listen(DEFAULT_LISTEN), metavar="HOST:PORT",
                   help=f"address to serve on ({DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--root", default=DEFAULT_ROOT, help=f"storage directory ({DEFAULT_ROOT})")
    p.add_argument("--storage", choices=("filesystem", "inmemory"), default="filesystem")
    p.add_argument("--htpasswd", metavar="FILE", help="bcrypt htpasswd file (htpasswd -B)")
    p.add_argument("--auth", choices=("none", "basic", "token"),
                   help="none; basic (default with --htpasswd); token (own token endpoint)")
    p.add_argument("--anonymous-pull", action="store_true",
                   help="let clients without credentials pull")
    p.add_argument("--read-only-user", action="append", default=[], metavar="USER",
                   help="an htpasswd user who may only pull (repeatable)")
    p.add_argument("--token-ttl", type=int, default=300, metavar="SECONDS")
    p.add_argument("--token-realm", metavar="URL",
                   help="token endpoint URL (default http(s)://HOST/token)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="FILE", help="... and this private key")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"))
    return p


def _build_auth(args: argparse.Namespace) -> Authorizer:
    mode = args.auth or ("basic" if args.htpasswd else "none")
    policy = Policy(args.read_only_user, args.anonymous_pull)
    htpasswd = Htpasswd(args.htpasswd) if args.htpasswd else None
    if mode == "basic":
        if htpasswd is None:
            raise SystemExit("dockyard-registry: --auth basic needs --htpasswd FILE")
        return BasicAuth(htpasswd, policy)
    if mode == "token":
        if htpasswd is None and not args.anonymous_pull:
            raise SystemExit("dockyard-registry: --auth token needs --htpasswd FILE "
                             "(or --anonymous-pull)")
        root = args.root if args.storage == "filesystem" else None
        tokens = TokenService(load_or_create_key(root), ttl=args.token_ttl)
        return TokenAuth(tokens, htpasswd, policy, realm=args.token_realm)
    return NoAuth()


def _driver(args: argparse.Namespace) -> StorageDriver:
    if args.storage == "inmemory":
        return InMemoryDriver()
    return FilesystemDriver(args.root)


async def _serve(args: argparse.Namespace) -> None:
    ssl_ctx = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SystemExit("dockyard-registry: --tls-cert and --tls-key go together")
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
    driver = _driver(args)
    try:
        ensure_layout(driver)
    except LayoutVersionError as e:
        raise SystemExit(f"dockyard-registry: {args.root}: {e}") from None
    app = make_app(Registry(driver), _build_auth(args))
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.INFO) else None
    runner = web.AppRunner(app, access_log=access_log, handle_signals=False,
                           shutdown_timeout=5.0)
    await runner.setup()
    host, port = args.listen
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, backlog=1024,
                       reuse_address=True)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        port = sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    print(f"dockyard-registry listening on {scheme}://{host}:{port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _maintenance(cmd: str, argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"dockyard-registry {cmd}")
    p.add_argument("--root", default=DEFAULT_ROOT)
    if cmd == "garbage-collect":
        p.add_argument("--dry-run", action="store_true", help="report, delete nothing")
        p.add_argument("--upload-max-age", type=float, default=86400.0, metavar="SECONDS",
                       help="remove uploads started longer ago than this (86400)")
    args = p.parse_args(argv)
    driver = FilesystemDriver(args.root)
    try:
        ensure_layout(driver)
    except LayoutVersionError as e:
        raise SystemExit(f"dockyard-registry {cmd}: {args.root}: {e}") from None
    if cmd == "verify":
        problems = verify(driver)
        for line in problems:
            print(line)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1 if problems else 0
    res = collect(driver, dry_run=args.dry_run, upload_max_age=args.upload_max_age, log=print)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{len(res.marked)} blobs marked, {verb} {len(res.deleted_blobs)} blobs "
          f"({res.freed_bytes} bytes), {len(res.deleted_links)} links, "
          f"{len(res.deleted_uploads)} uploads")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("garbage-collect", "verify"):
        return _maintenance(argv[0], argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    args = _serve_parser("dockyard-registry").parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
