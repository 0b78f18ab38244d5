"""The launcher: a single-threaded forkserver that turns "spawn a shim" requests into shims.

The daemon is multi-threaded and runs an event loop, so it must never fork to build a
container (STYLE.md §2.5). At start-up it runs this module once, in a fresh interpreter:
``python -m dockyard.runtime.launcher FD``, where FD is its end of a socketpair. The
launcher imports everything a shim needs, freezes the heap (``gc.freeze()``: forked shims
then share those pages copy-on-write) and serves JSON lines on FD:

    → {"id": 7, "op": "spawn", "config": {...ShimConfig...}}
    ← {"id": 7, "ok": true, "pid": <init pid>, "shim_pid": <shim pid>}
    ← {"id": 7, "ok": false, "error": "...", "kind": "OCIRuntimeError"}

For each request it forks the shim, which calls ``setsid()``; the launcher ignores
SIGCHLD so that the kernel reaps shims, and when the launcher goes the shims are
reparented to init (or the nearest subreaper) and survive the daemon. The shim reports
its set-up result on a pipe, which the launcher relays. Several spawns can be
in flight at once. When the daemon goes away (EOF on FD, or PDEATHSIG), the launcher exits;
the shims stay.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any

__all__ = ["serve"]


def _spawn(cfg: dict[str, Any], keep: set[int]) -> int:
    """Fork a shim for ``cfg``; return the read end of its result pipe. The launcher
    ignores SIGCHLD, so the kernel reaps shims that exit while it lives; when it dies,
    they are reparented to init (or the nearest subreaper)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            for fd in keep:
                os.close(fd)
            os.setsid()
            _become_shim(cfg, w)
        except BaseException as exc:  # never return into the launcher's loop
            try:
                os.write(w, json.dumps({"ok": False, "error": f"shim: {exc}",
                                        "kind": "Internal"}).encode() + b"\n")
            except OSError:
                pass
        os._exit(1)
    os.close(w)
    return r


def _become_shim(cfg: dict[str, Any], result_fd: int) -> None:
    from dockyard.runtime import shim

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the launcher ignores it; a shim reaps
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    state_dir = cfg["state_dir"]
    os.makedirs(state_dir, exist_ok=True)
    # the shim's own diagnostics go to a file beside its socket; stdio is never inherited
    log = os.open(os.path.join(state_dir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    code = shim.main(cfg, result_fd)
    os._exit(code)


def serve(fd: int) -> None:
    """The launcher's loop on socket ``fd``; returns when the daemon closes it."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)
    inbuf = bytearray()
    outbuf = bytearray()
    pending: dict[int, tuple[int, bytearray]] = {}   # result fd -> (request id, bytes so far)

    def reply(msg: dict[str, Any]) -> None:
        outbuf.extend(json.dumps(msg).encode() + b"\n")
        flush()

    def flush() -> None:
        while outbuf:
            try:
                n = sock.send(outbuf)
            except BlockingIOError:
                break
            del outbuf[:n]
        sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if outbuf else 0), None)

    while True:
        for key, mask in sel.select():
            if key.data is None:  # the daemon's socket
                if mask & selectors.EVENT_WRITE:
                    flush()
                if not mask & selectors.EVENT_READ:
                    continue
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                if not data:
                    return
                inbuf.extend(data)
                while (nl := inbuf.find(b"\n")) >= 0:
                    line = bytes(inbuf[:nl])
                    del inbuf[:nl + 1]
                    try:
                        req = json.loads(line)
                        rid = req.get("id")
                        if req.get("op") != "spawn":
                            reply({"id": rid, "ok": False, "error": f"unknown op {req.get('op')!r}",
                                   "kind": "InvalidArgument"})
                            continue
                        r = _spawn(req["config"], {sock.fileno(), *pending})
                        pending[r] = (rid, bytearray())
                        sel.register(r, selectors.EVENT_READ, "result")
                    except Exception as exc:
                        reply({"id": None, "ok": False, "error": str(exc), "kind": "Internal"})
            else:  # a shim's result pipe
                r = key.fd
                rid, buf = pending[r]
                chunk = os.read(r, 65536)
                buf.extend(chunk)
                if chunk and b"\n" not in buf:
                    continue
                sel.unregister(r)
                os.close(r)
                del pending[r]
                try:
                    msg = json.loads(bytes(buf).split(b"\n", 1)[0])
                except ValueError:
                    msg = {"ok": False, "error": "shim exited before reporting", "kind": "Internal"}
                msg["id"] = rid
                reply(msg)


def main() -> None:
    fd = int(sys.argv[1])
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # shims are reaped by the kernel
    # Import everything a shim and a container init need, then freeze the heap so that
    # forked shims share these pages instead of copying them on the first GC pass.
    import dockyard.oci.mount  # noqa: F401
    import dockyard.runtime.cgroups  # noqa: F401
    import dockyard.runtime.container  # noqa: F401
    import dockyard.runtime.shim  # noqa: F401
    gc.collect()
    gc.freeze()
    serve(fd)


if __name__ == "__main__":
    main()
