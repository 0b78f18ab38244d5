"""The launcher: a single-threaded forkserver that turns requests into shims.

The daemon is multi-threaded and runs an event loop, so it must never fork to build a
container (STYLE.md §2.5). At start-up it runs this module once, in a fresh interpreter:
``python -m dockyard.runtime.launcher FD [--shim PATH] [--cgroup-parent CG] [--staging DIR]``,
where FD is its end of a socketpair, PATH the native shim (``dockyard-shim``; without it
shims run in Python), CG the cgroup that containers' cgroups go under and DIR an empty
directory where spare inits stage /proc, /dev and /sys in their own mount namespaces.
The launcher imports everything its children need, freezes the heap (``gc.freeze()``:
forked children then share those pages copy-on-write) and serves JSON lines on FD.

Its children are *spares* (``_Spare``): forked ahead of need, prepared, and blocked on a
socket until they are given one job, a JSON datagram with fds (SCM_RIGHTS):

* a spare **shim** (the ``ShimConfig`` as JSON + the fd to report on) becomes a
  container's shim. With the native shim built, the spare forks a spare container init
  (``SpareInit``: pid 1 of fresh namespaces with lo up) and execve()s the native shim
  while it waits (``shim.exec_native_spare``); the native shim takes the job itself and
  hands it to that init, so a start forks nothing and runs no Python but the init's.
  Without it, the spare forks its creation helper (``shim._Helper``, which makes a spare
  init too) and becomes the Python shim (``shim.main``) when the job comes;
* a spare **exec shim** (``{"config": {ExecConfig}}`` + its ``ctl`` and ``stream``
  sockets) serves one exec session (``execshim.py``).

The daemon keeps one spare of each kind and hands jobs to it directly, so neither a fork
nor the launcher is on the path of a start or an exec:

    → {"op": "spare", "kind": "spawn" | "exec"}
    ← {"spare": "spawn" | "exec"}                         + the spare's job socket
      (the spare prepares at the lowest priority, then sends "ready" on that socket)

A job whose init needs other namespaces than a spare init has (``"fresh": true``: host
network, another container's namespaces...) is never given to a spare: the launcher forks
a shim with a helper for it, which forks the init as ``create_init`` does.

When no spare is ready (requests in a burst), the launcher forks one for the request:

    → {"id": 7, "op": "spawn", "config": {...}}
    ← {"id": 7, "ok": true, "pid": <init pid>, "shim_pid": <shim pid>}   (relayed)
    ← {"id": 7, "ok": false, "error": "...", "kind": "OCIRuntimeError"}
    → {"op": "exec", "config": {...}, "nfds": 2}          + ctl, stream (no reply)

A request's fds arrive with its bytes or before them on the stream socket, so they are
taken in order from a queue. The launcher ignores SIGCHLD, so the kernel reaps its
children that exit while it lives; when it goes, they are reparented to init (or the
nearest subreaper) and live on. When the daemon goes away (EOF on FD, or PDEATHSIG), the
launcher exits; the shims stay, and spares, reading EOF, exit.
"""

from __future__ import annotations

import array
import gc
import json
import os
import selectors
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from dockyard.linux import sched
from dockyard.runtime.shim import recv_fds

__all__ = ["serve"]


class _Spare:
    """A child forked ahead of need (a zygote): it does its own set-up (``prepare``) and
    waits for one job on ``sock``, so that a request does not wait for a fork. A spare
    whose socket is closed unused reads EOF and exits.

    ``ahead``: made before any request for it (``{"op": "spare"}``), it is forked and
    prepares at the lowest priority (``dockyard.linux.sched``: it must not take a CPU from
    a container being started meanwhile), then returns to the launcher's priority and
    sends ``ready`` on its socket; the daemon gives jobs to ready spares only. Otherwise it
    is given its job at once and prepares at the launcher's priority."""

    def __init__(self, prepare: Callable[[int | None, socket.socket], Any],
                 run: Callable[[dict[str, Any], list[int], Any], int], held: set[int],
                 ahead: bool = False) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        prio = sched.lower() if ahead else None
        pid = -1
        try:
            pid = os.fork()
        finally:
            if prio is not None and pid != 0:
                sched.restore(prio)
        if pid == 0:
            code = 1
            try:
                ours.close()
                for fd in held:  # nothing of the launcher's: not its socket, no other spare
                    os.close(fd)
                state = prepare(prio, theirs)  # (a native spare shim execve()s here)
                if prio is not None:
                    sched.restore(prio)
                    try:
                        theirs.send(b"ready")
                    except OSError:
                        pass  # the daemon is gone: EOF below
                data, fds = recv_fds(theirs, 1 << 18, 8)
                theirs.close()
                code = run(json.loads(data), fds, state) if data else 0
            except BaseException as exc:  # never return into the launcher's loop
                try:
                    os.write(2, f"dockyard launcher: spare {pid}: {exc}\n".encode())
                except OSError:
                    pass
            os._exit(code)
        theirs.close()
        self.sock = ours

    def give(self, msg: dict[str, Any], fds: list[int]) -> bool:
        """Hand the spare its job; False if it is gone (then nothing was taken)."""
        try:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], fds)
            return True
        except OSError:
            return False
        finally:
            self.sock.close()


def _prepare_shim(native: str | None, spare_init: bool = True, cgroup_parent: str | None = None,
                  staging: str | None = None) -> Callable[[int | None, socket.socket], Any]:
    """A spare shim: its own session, default signals, a child subreaper; then

    * with ``native`` (the native shim's path): a spare container init forked and the
      native shim exec'd at once, to take its job from the spare's socket itself
      (``shim.exec_native_spare``; the spare init waits in a cgroup of its own under
      ``cgroup_parent``, to be renamed to the container's, and has made /proc, /dev and
      /sys under ``staging`` in its own mount namespace, to be moved into the rootfs);
    * else (the Python shim, or a job whose init must be forked fresh): its creation
      helper forked (``shim._Helper``, with a spare init of its own if ``spare_init``),
      waiting for the container's config."""

    def prepare(nice: int | None, sock: socket.socket) -> Any:
        from dockyard.runtime import shim

        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the launcher ignores it; a shim reaps
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        shim._set_subreaper()
        if native:
            shim.exec_native_spare(native, sock.fileno(), nice,  # returns if it cannot
                                   cgroup_parent, staging)
        helper = shim._Helper(warm=True, spare_init=spare_init)
        shim.warm_up()
        return helper

    return prepare


def _run_shim(shim_binary: str | None) -> Callable[[dict[str, Any], list[int], Any], int]:
    def run(config: dict[str, Any], fds: list[int], helper: Any) -> int:
        _become_shim(config, fds[0], shim_binary, helper)
        return 1

    return run


def _become_shim(cfg: dict[str, Any], result_fd: int, shim_binary: str | None,
                 helper: Any) -> None:
    """In the spare: become the container's shim, native (``exec_native``: never returns)
    or Python; report on ``result_fd``."""
    from dockyard.runtime import shim

    try:
        state_dir = cfg["state_dir"]
        os.makedirs(state_dir, exist_ok=True)
        # the shim's own diagnostics go to a file beside its socket; stdio is never inherited
        log = os.open(os.path.join(state_dir, "shim.log"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        if shim_binary:
            shim.exec_native(shim.ShimConfig.from_json(cfg), result_fd, shim_binary,
                             helper=helper)
        code = shim.main(cfg, result_fd, helper=helper)
    except BaseException as exc:
        try:
            os.write(result_fd, json.dumps({"ok": False, "error": f"shim: {exc}",
                                            "kind": "Internal"}).encode() + b"\n")
        except OSError:
            pass
        code = 1
    os._exit(code)


def _prepare_exec(_nice: int | None, _sock: socket.socket) -> None:
    """A spare exec shim: its own session (it outlives the daemon, as shims do)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from dockyard.runtime import execshim
    execshim.warm_up()


def _run_exec(job: dict[str, Any], fds: list[int], _state: Any) -> int:
    from dockyard.runtime import execshim

    return execshim.main(job["config"], fds[0], fds[1] if len(fds) > 1 else -1)


class _DaemonGone(BaseException):
    """The daemon's end of the socket is closed (raised past ``except Exception``)."""


def serve(fd: int, shim_binary: str | None = None, cgroup_parent: str | None = None,
          staging: str | None = None) -> None:
    """The launcher's loop on socket ``fd``; returns when the daemon closes it."""
    try:
        _serve(fd, shim_binary, cgroup_parent, staging)
    except _DaemonGone:
        return  # (a reply it will not read: it went away, and so do we)


def _serve(fd: int, shim_binary: str | None, cgroup_parent: str | None,
           staging: str | None) -> None:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)
    inbuf = bytearray()
    outq: deque[tuple[bytes, list[int]]] = deque()   # lines to send, each with its fds
    fdq: deque[int] = deque()                        # received fds not yet taken by a request
    pending: dict[int, tuple[int, bytearray]] = {}   # result fd -> (request id, bytes so far)
    kinds = {"spawn": (_prepare_shim(shim_binary, cgroup_parent=cgroup_parent,
                                     staging=staging),
                       _run_shim(shim_binary)),
             "exec": (_prepare_exec, _run_exec)}

    def held() -> set[int]:
        """Every fd the launcher holds, which its children must close."""
        return {sock.fileno(), *pending, *fdq, *(f for _, fds in outq for f in fds)}

    def reply(msg: dict[str, Any], fds: list[int] | None = None) -> None:
        outq.append((json.dumps(msg).encode() + b"\n", fds or []))
        flush()

    def flush() -> None:
        while outq:
            data, fds = outq[0]
            try:
                n = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                           array.array("i", fds))] if fds else [])
            except BlockingIOError:
                break
            except (BrokenPipeError, ConnectionResetError):
                raise _DaemonGone from None
            for f in fds:  # sent with the line's first byte: the daemon has them now
                os.close(f)
            if n < len(data):
                outq[0] = (data[n:], [])
            else:
                outq.popleft()
        sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if outq else 0), None)

    def handle(req: dict[str, Any]) -> None:
        op = str(req.get("op"))
        fds = [fdq.popleft() for _ in range(min(int(req.get("nfds") or 0), len(fdq)))]
        if op == "spare" and req.get("kind") in kinds:
            kind = str(req["kind"])
            spare = _Spare(*kinds[kind], held(), ahead=True)
            reply({"spare": kind}, [spare.sock.detach()])
            return
        if op not in kinds:
            for extra in fds:
                os.close(extra)
            reply({"id": req.get("id"), "ok": False, "error": f"unknown op {op!r}",
                   "kind": "InvalidArgument"})
            return
        prepare, run = kinds[op]
        job = req
        if op == "spawn":  # the shim reports on a pipe, relayed to the daemon
            r, w = os.pipe2(os.O_CLOEXEC)
            pending[r] = (int(req.get("id") or 0), bytearray())
            sel.register(r, selectors.EVENT_READ, "result")
            fds = [w]
            job = req.get("config") or {}
            if job.get("fresh"):
                prepare = _prepare_shim(None, spare_init=False)
        # (the exec shim reports on its own control socket: no reply here)
        spare = _Spare(prepare, run, held() | set(fds))
        spare.give(job, fds)
        for f in fds:
            os.close(f)

    while True:
        for key, mask in sel.select():
            if key.data is None:  # the daemon's socket
                if mask & selectors.EVENT_WRITE:
                    flush()
                if not mask & selectors.EVENT_READ:
                    continue
                try:
                    data, fds = recv_fds(sock, 65536, 16)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data, fds = b"", []
                fdq.extend(fds)
                if not data:
                    return
                inbuf.extend(data)
                while (nl := inbuf.find(b"\n")) >= 0:
                    line = bytes(inbuf[:nl])
                    del inbuf[:nl + 1]
                    try:
                        handle(json.loads(line))
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
    opts = dict(zip(sys.argv[2::2], sys.argv[3::2], strict=False))
    shim_binary = opts.get("--shim")
    cgroup_parent = opts.get("--cgroup-parent")
    staging = opts.get("--staging")
    try:
        from dockyard.linux.caps import set_pdeathsig

        set_pdeathsig(signal.SIGKILL)  # dies with the daemon
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # its children are reaped by the kernel
    # Import everything a shim, an exec shim and a container init need, then freeze the heap
    # so that forked children share these pages instead of copying them on the first GC pass.
    import dockyard.oci.mount  # noqa: F401
    import dockyard.runtime.cgroups  # noqa: F401
    import dockyard.runtime.container  # noqa: F401
    import dockyard.runtime.execshim  # noqa: F401
    import dockyard.runtime.shim  # noqa: F401
    from dockyard.runtime.cgroups import discover

    discover()  # the host's cgroup mounts, cached for every child
    gc.collect()
    gc.freeze()
    serve(fd, shim_binary, cgroup_parent, staging)


if __name__ == "__main__":
    main()
