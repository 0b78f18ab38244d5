"""The runtime library: create a container init, start it, exec processes into it.

This is the contract of docs/architecture.md §2; the shim and ``dockyard-runtime`` call it.

Process model. The caller must be single-threaded. ``create_init`` forks the init as a
*direct child* of the caller (so the caller's ``waitpid`` gives its exit status):

* a new pid namespace: the caller calls ``unshare(CLONE_NEWPID)`` (which changes only
  its *children's* pid namespace), forks (the child is pid 1 in the new namespace) and
  immediately ``setns``-es its pid_for_children back to its own pid namespace. The
  caller's own namespaces are unchanged afterwards; nothing else of the caller is touched.
* every other namespace is created (``unshare``) or joined (``setns``) by the child.
* the cgroup is created, limited and joined (the child's pid written into it) by the
  caller right after fork, while the child unshares its other namespaces and mounts the
  rootfs; the child unshares its cgroup namespace only after the caller's Proceed, so
  the container's cgroup is the namespace's root. On two CPUs the two halves overlap.

The child never imports or parses: it walks the plan computed here
(``dockyard.runtime.plan``) through ``Syscalls``, reports Ready (with the pty master)
over the channel and blocks until ``InitProcess.start()`` (or, for ``dockyard-runtime``,
until ``start`` opens the exec fifo). Messages are in ``dockyard.runtime.channel``.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dockyard.errors import DockyardError, OCIRuntimeError
from dockyard.linux import ns, sched
from dockyard.linux.proc import process_state
from dockyard.linux.syscalls import LinuxSyscalls, Syscalls
from dockyard.oci.runtime_spec import validate_process, validate_spec
from dockyard.runtime.cgroups import (
    DEFAULT_ROOT,
    Cgroup,
    discover,
    open_cgroup,
    parse_proc_cgroup,
    procs_files_of_pid,
)
from dockyard.runtime.channel import Channel, ExecFailed, Failed, Plan, Proceed, Ready, Start
from dockyard.runtime.init import run_exec, run_init, run_spare_init, spare_fits
from dockyard.runtime.plan import InitPlan, build_init_plan, build_process_plan
from dockyard.runtime.rootfs import Staged, stage, use_staged

if TYPE_CHECKING:
    from dockyard.oci.mount import Mount

__all__ = [
    "ExecProcess",
    "InitProcess",
    "SpareInit",
    "Stdio",
    "create_init",
    "exec_process",
    "exit_status",
    "wait_exec_fifo",
]

_LINUX = LinuxSyscalls()


class Stdio(NamedTuple):
    """File descriptors in the caller that become the process's 0, 1 and 2."""

    stdin: int = 0
    stdout: int = 1
    stderr: int = 2

    def fds(self) -> tuple[int, int, int]:
        return (self.stdin, self.stdout, self.stderr)


def exit_status(waitstatus: int) -> int:
    """A ``waitpid`` status as a shell exit status: the exit code, or 128+signal when the
    process was killed by a signal (137 for SIGKILL)."""
    if os.WIFSIGNALED(waitstatus):
        return 128 + os.WTERMSIG(waitstatus)
    if os.WIFEXITED(waitstatus):
        return os.WEXITSTATUS(waitstatus)
    return 255


def _describe(waitstatus: int) -> str:
    if os.WIFSIGNALED(waitstatus):
        return f"killed by signal {os.WTERMSIG(waitstatus)}"
    return f"exit status {exit_status(waitstatus)}"


def _child_entry(body: Callable[[], None], chan: Channel) -> None:
    """Run ``body`` in the forked child and leave with ``os._exit``, never returning into
    the caller's code. A failure is reported over ``chan`` (runc's wording)."""
    code = 0
    try:
        gc.disable()
        _LINUX.reset_signals()
        body()
    except BaseException as exc:  # noqa: B036 - the child must never unwind into the caller
        code = 1
        msg = exc.message if isinstance(exc, DockyardError) else f"{type(exc).__name__}: {exc}"
        if type(exc).__name__ == "_ExecError":
            code = 127
        else:
            try:
                chan.send(Failed(msg))
            except OSError:
                pass
        if code == 127:
            try:
                os.write(2, f"dockyard-runtime: {msg}\n".encode())
            except OSError:
                pass
    finally:
        os._exit(code)


def _fork(
    body: Callable[[], None],
    chan: Channel,
    *,
    new_pid_ns: bool = False,
    pid_ns_path: str | None = None,
) -> int:
    """fork, with the child in a new pid namespace or in ``pid_ns_path``; the caller's
    pid_for_children is restored before returning."""
    restore = -1
    if new_pid_ns or pid_ns_path:
        restore = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if pid_ns_path:
                fd = os.open(pid_ns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    ns.setns(fd, ns.CLONE_NEWPID)
                finally:
                    os.close(fd)
            else:
                ns.unshare(ns.CLONE_NEWPID)
        except OSError as exc:
            os.close(restore)
            raise OCIRuntimeError(f"pid namespace: {exc.strerror}") from exc
    try:
        pid = os.fork()
        if pid == 0:
            _child_entry(body, chan)
    finally:
        if restore >= 0:
            ns.setns(restore, ns.CLONE_NEWPID)
            os.close(restore)
    return pid


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0


def _await_ready(pid: int, chan: Channel) -> int | None:
    """Wait for Ready; return the pty master fd it carried. On Failed or EOF the child is
    reaped and OCIRuntimeError raised."""
    msg, fds = chan.recv()
    if isinstance(msg, Ready):
        for extra in fds[1:]:
            os.close(extra)
        return fds[0] if fds else None
    for fd in fds:
        os.close(fd)
    status = _reap(pid)
    if isinstance(msg, (Failed, ExecFailed)):
        raise OCIRuntimeError(msg.message)
    raise OCIRuntimeError(f"container process exited during set-up ({_describe(status)})")


def wait_exec_fifo(fifo: str | Path, pid: int, timeout: float | None = None) -> None:
    """Release an init created with ``exec_fifo`` (``dockyard-runtime start``): open the
    fifo for reading, read the init's byte, remove the fifo. Raises OCIRuntimeError when
    the init dies first or ``timeout`` passes."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise OCIRuntimeError(f"open {fifo}: no such file or directory") from exc
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100) and os.read(fd, 1):
                break
            if process_state(pid) in (None, "Z", "X"):
                raise OCIRuntimeError("container init exited before start")
            if deadline is not None and time.monotonic() > deadline:
                raise OCIRuntimeError(f"timed out waiting for the container init (pid {pid})")
    finally:
        os.close(fd)
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass


class InitProcess:
    """A container init that finished its set-up and waits to execve.

    ``pid``: host pid, a direct child of the caller. ``pty_master``: the pty master fd
    (the caller owns it) when ``process.terminal``, else None. ``cgroup``: the container's
    cgroup (None without ``cgroup_path``); call ``destroy()`` after the init is reaped."""

    def __init__(
        self,
        pid: int,
        pty_master: int | None,
        chan: Channel | None,
        cgroup: Cgroup | None,
        container_id: str,
        exec_fifo: str | None,
    ) -> None:
        self.pid = pid
        self.pty_master = pty_master
        self.cgroup = cgroup
        self.container_id = container_id
        self.exec_fifo = exec_fifo
        self._chan = chan

    def __repr__(self) -> str:
        return f"<InitProcess {self.container_id[:12]} pid={self.pid}>"

    def start(self) -> None:
        """Release the init to execve ``args``; returns once execve happened. Raises
        OCIRuntimeError (the init reaped) when execve failed."""
        if self._chan is None:
            if self.exec_fifo is None:
                raise OCIRuntimeError(f"container {self.container_id}: already started")
            wait_exec_fifo(self.exec_fifo, self.pid)
            self.exec_fifo = None
            return
        chan, self._chan = self._chan, None
        try:
            chan.send(Start())
            msg, fds = chan.recv()
        except OSError as exc:
            raise OCIRuntimeError(f"start container {self.container_id}: {exc.strerror}") from exc
        finally:
            chan.close()
        for fd in fds:
            os.close(fd)
        if isinstance(msg, ExecFailed):
            _reap(self.pid)
            raise OCIRuntimeError(msg.message)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the init (ProcessLookupError is ignored)."""
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Reap the init; its exit status (``exit_status`` convention)."""
        return exit_status(_reap(self.pid))

    def destroy(self) -> None:
        """After the init exited: kill what is left in the cgroup, remove the cgroup,
        close the channel. Idempotent."""
        if self._chan is not None:
            self._chan.close()
            self._chan = None
        if self.cgroup is not None:
            self.cgroup.kill_all(signal.SIGKILL)
            self.cgroup.destroy()


class ExecProcess:
    """A process running in a container: host ``pid`` (the caller's child) and the pty
    master fd when the process has a terminal (the caller owns it)."""

    __slots__ = ("pid", "pty_master")

    def __init__(self, pid: int, pty_master: int | None) -> None:
        self.pid = pid
        self.pty_master = pty_master

    def __repr__(self) -> str:
        return f"<ExecProcess pid={self.pid}>"


class SpareInit:
    """A container init forked before its container is known: pid 1 of a new pid namespace
    that has unshared the other namespaces of docker's default set (``init.SPARE_NAMESPACES``)
    and brought lo up (``init.run_spare_init``), and now waits for its job. Those are the
    slow steps of a container's creation that do not depend on the container (a new
    network namespace with lo up alone takes milliseconds), so a spare shim makes one while
    it waits for a job, at the lowest priority. Its job comes either as a plan
    (``create_init(..., spare=)`` calls ``give``), or, when the spare shim became the native
    shim, as the shim config from that shim (``Job``, see ``plan_job``).

    It is a child of the process that made it (which must be single-threaded and stay its
    parent, or execve). ``give`` sends the plan; ``discard`` kills and reaps it unused."""

    def __init__(self, syscalls: Syscalls | None = None, staging: str | None = None) -> None:
        sc = syscalls or _LINUX
        parent, child = Channel.pair()

        staged: list[Staged] = []
        parent_mnt = os.readlink("/proc/self/ns/mnt")

        def ahead() -> None:  # in the spare init's own namespaces (run_spare_init)
            standard = warm_up_planning()
            if staging and os.readlink("/proc/self/ns/mnt") != parent_mnt:  # (never ours)
                try:
                    staged.append(stage(sc, staging, standard.rootfs))
                except OCIRuntimeError as exc:  # the job's init then makes its own
                    os.write(2, f"dockyard: spare init: {exc.message}\n".encode())

        def on_job(data: bytes) -> InitPlan:
            return plan_job(data, staged=staged[0] if staged else None)

        def body() -> None:
            parent.close()
            run_spare_init(sc, child, on_job, ahead)

        try:
            self.pid = _fork(body, child, new_pid_ns=True)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.chan = parent
        self.taken = False

    def __repr__(self) -> str:
        return f"<SpareInit pid={self.pid}>"

    def give(self, plan: InitPlan, stdio: tuple[int, int, int] | None) -> bool:
        """Send the spare its plan (and ``stdio``, the fds that become its 0-2); it runs
        from then on at the caller's priority (it was made at the lowest one). False when
        it cannot take it (it is gone, or the plan does not fit in a message): then call
        ``discard``."""
        if self.taken:
            return False
        try:
            sched.share_with(self.pid)
            self.chan.send(Plan(plan), stdio or ())
        except (OSError, ValueError):
            return False
        self.taken = True
        return True

    def discard(self) -> None:
        """Kill and reap the spare unless it was given a plan (then it is the init of its
        container, which is not this object's business any more). Idempotent."""
        if self.taken:
            return
        self.taken = True
        self.chan.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(self.pid)


def create_init(
    spec: Mapping[str, Any],
    bundle: str | Path,
    *,
    container_id: str,
    stdio: Stdio | None = None,
    rootfs_mounts: Sequence[Mount] = (),
    cgroup_path: str | None = None,
    exec_fifo: str | Path | None = None,
    preserve_fds: int = 0,
    no_pivot: bool = False,
    cgroup_root: Path = DEFAULT_ROOT,
    syscalls: Syscalls | None = None,
    spare: SpareInit | None = None,
) -> InitProcess:
    """Create the container init of ``spec`` and return it blocked before execve.

    ``stdio``: fds that become the process's 0-2 (default: the caller's own 0-2; ignored
    with a terminal). ``rootfs_mounts``: mounted at root.path inside the new mount
    namespace before anything else; () binds root.path onto itself. ``cgroup_path``:
    created, limited by ``linux.resources`` and joined (None: no cgroup). ``exec_fifo``:
    a fifo the init opens for writing after Ready, for a starter in another process
    (``wait_exec_fifo``). ``preserve_fds``: fds 3..3+N-1 stay open across execve (they
    must be inheritable in the caller). ``spare``: a ``SpareInit`` of the caller's, which
    becomes the init when the spec asks for the namespaces it has (else it is discarded
    and a child forked as usual).

    Returns once every set-up step is done and ``args[0]`` is resolved in the container's
    PATH. Raises OCIRuntimeError (runc's wording, e.g. ``exec: "x": executable file not
    found in $PATH``) after reaping the init and removing the cgroup; InvalidArgument or
    Unsupported for a bad spec."""
    sc = syscalls or _LINUX
    plan, cg = _plan(spec, bundle, rootfs_mounts, cgroup_path, cgroup_root,
                     exec_fifo=str(exec_fifo) if exec_fifo else None,
                     preserve_fds=preserve_fds, no_pivot=no_pivot)
    if spare is not None and not spare_fits(plan):
        spare.discard()
        spare = None
    parent, child = Channel.pair()
    ns_fds: list[tuple[int, int]] = []
    fifo_fd = -1
    pid = -1
    try:
        for path, flag in plan.join:
            ns_fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag))
        if plan.exec_fifo:
            fifo_fd = os.open(plan.exec_fifo, os.O_PATH | os.O_CLOEXEC)
        std = None if stdio is None else stdio.fds()
        if spare is not None and spare.give(plan, std):
            child.close()
            parent.close()
            pid, parent, child = spare.pid, spare.chan, spare.chan
        else:
            if spare is not None:
                spare.discard()

            def body() -> None:
                parent.close()
                run_init(sc, plan, child, ns_fds=ns_fds, stdio=std,
                         fifo_fd=fifo_fd if fifo_fd >= 0 else None)

            pid = _fork(body, child, new_pid_ns=plan.new_pid_ns, pid_ns_path=plan.pid_ns_path)
            child.close()
        if cg is not None:
            try:
                _cgroup_for(cg, pid, (spec.get("linux") or {}).get("resources"))
            except OCIRuntimeError:
                _raise_child_failure(parent)  # the child's own error explains it better
                raise
        try:
            parent.send(Proceed())
        except OSError:
            pass  # the child is gone: its Failed message (or EOF) is read below
        master = _await_ready(pid, parent)
    except BaseException:
        child.close()
        parent.close()
        if pid > 0 and process_state(pid) is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        if cg is not None:
            _destroy_quietly(cg)
        raise
    finally:
        for fd, _flag in ns_fds:
            os.close(fd)
        if fifo_fd >= 0:
            os.close(fifo_fd)
    chan: Channel | None = parent
    if plan.exec_fifo:
        parent.close()
        chan = None
    return InitProcess(pid, master, chan, cg, container_id, plan.exec_fifo)


def _plan(spec: Mapping[str, Any], bundle: str | Path, rootfs_mounts: Sequence[Mount],
          cgroup_path: str | None, cgroup_root: Path, *, exec_fifo: str | None = None,
          preserve_fds: int = 0, no_pivot: bool = False, cgroup_procs: Sequence[str] = (),
          ) -> tuple[InitPlan, Cgroup | None]:
    """The plan of a container init, and its cgroup (not made yet). ``cgroup_procs``: files
    the init writes itself into (empty: its parent moves it)."""
    validate_spec(spec)
    cg: Cgroup | None = None
    if cgroup_path:
        cg = open_cgroup(cgroup_path, cgroup_root)
        version, hierarchies = cg.version, cg.hierarchies
    else:
        version, hierarchies = discover(cgroup_root)
    plan = build_init_plan(
        spec,
        Path(bundle),
        rootfs_mounts=rootfs_mounts,
        cgroup_procs=cgroup_procs,
        hierarchies=hierarchies,
        cgroup_version=version,
        exec_fifo=exec_fifo,
        preserve_fds=preserve_fds,
        no_pivot=no_pivot,
    )
    return plan, cg


def warm_up_planning() -> InitPlan:
    """A dry run of a container's planning (the spec checked, a Job's config parsed, the
    plan built) in a process forked from the launcher, ahead of its job: the copy-on-write
    faults on the launcher's pages that this code touches are taken now, not on the path
    of a container's start."""
    from dockyard.oci.mount import Mount
    from dockyard.oci.runtime_spec import default_spec

    cfg = json.loads(json.dumps({"bundle": "/warm-up", "cgroup_path": "/warm/up",
                                 "rootfs_mounts": [Mount("overlay", "overlay", (
                                     "lowerdir=/a", "upperdir=/b", "workdir=/c")).to_json()]}))
    spec = json.loads(json.dumps(default_spec(["true"], cgroups_path="/warm/up")))
    validate_spec(spec)
    mounts = [Mount.from_json(m) for m in cfg["rootfs_mounts"]]
    cg = open_cgroup(cfg["cgroup_path"])
    return build_init_plan(spec, Path(cfg["bundle"]), rootfs_mounts=mounts,
                           cgroup_procs=[f"/proc/self/fd/{n}" for n in
                                         range(len(cg.procs_files()))],
                           hierarchies=cg.hierarchies, cgroup_version=cg.version,
                           is_dir=lambda path: True)


def plan_job(data: bytes, cgroup_root: Path = DEFAULT_ROOT, staged: Staged | None = None,
             ) -> InitPlan:
    """In a spare init, its job from the native shim (``Job``: the shim config as JSON,
    ``runtime.shim.ShimConfig``): read the bundle's config.json, plan, and make and limit
    the cgroup. The init joins it itself later, where a parent would have moved it (after
    its mounts: on cgroup v1 the first move after a quiet spell waits for an RCU grace
    period, which the engine starts early, see ``cgroups.warm_up``), through its
    ``cgroup.procs`` files opened now, as ``/proc/self/fd/N`` (the host's cgroup
    filesystems are out of sight after pivot_root). Raises OCIRuntimeError (the cgroup is
    removed by the shim, which knows its path)."""
    from dockyard.oci.mount import Mount

    cfg = json.loads(data)
    with open(os.path.join(cfg["bundle"], "config.json"), "rb") as f:
        spec = json.load(f)
    mounts = [Mount.from_json(m) for m in cfg.get("rootfs_mounts") or ()]
    cgroup_path = cfg.get("cgroup_path") or None
    cg = open_cgroup(cgroup_path, cgroup_root) if cgroup_path else None
    procs: list[str] = []
    if cg is not None:
        try:
            with open("/proc/self/cgroup") as f:
                now = parse_proc_cgroup(f.read())
            # the cgroup2 hierarchy of a hybrid host has no rename: the spare's cgroup
            # there, under the same parent, is the container's (the shim agrees)
            parent = cg.path.rsplit("/", 1)[0]
            ours = tuple(h for h in cg.hierarchies if not (
                h.fstype == "cgroup2" and now.get(h.key, "").startswith(parent + "/spare-")))
            cg = type(cg)(cg.path, ours, cgroup_root)
            # made and joined only where the shim did not rename the spare's to it
            missing = type(cg)(cg.path, tuple(h for h in ours if now.get(h.key) != cg.path),
                               cgroup_root)
            missing.create()
            cg.apply((spec.get("linux") or {}).get("resources"))
            procs = [f"/proc/self/fd/{os.open(path, os.O_WRONLY | os.O_CLOEXEC)}"
                     for path in missing.procs_files()]
        except (OSError, DockyardError) as exc:
            raise _cgroup_error(cg, exc) from exc
    plan, _ = _plan(spec, cfg["bundle"], mounts, cgroup_path, cgroup_root, cgroup_procs=procs)
    if staged is not None:  # /proc, /dev and /sys made ahead, when they are what it wants
        plan = plan._replace(rootfs=use_staged(plan.rootfs, staged) or plan.rootfs)
    return plan


def _cgroup_error(cg: Cgroup, exc: OSError | DockyardError) -> OCIRuntimeError:
    if isinstance(exc, DockyardError):
        text = exc.message
    else:
        reason = exc.strerror or str(exc)
        text = f"{exc.filename}: {reason[:1].lower()}{reason[1:]}"
    return OCIRuntimeError(f"cgroup {cg.path}: {text}")


def _cgroup_for(cg: Cgroup, pid: int, resources: Mapping[str, Any] | None) -> None:
    """Create ``cg``, apply ``resources`` and move ``pid`` into it; OCIRuntimeError."""
    try:
        cg.create()
        # limits before the move: device rules start with "deny all", and the child may be
        # creating its device nodes right now
        cg.apply(resources)
        cg.add(pid)
    except (OSError, DockyardError) as exc:
        raise _cgroup_error(cg, exc) from exc


def _raise_child_failure(chan: Channel) -> None:
    """Raise the child's Failed message if one is already waiting on ``chan``."""
    if not select.select([chan.sock], [], [], 0)[0]:
        return
    msg, fds = chan.recv()
    for fd in fds:
        os.close(fd)
    if isinstance(msg, Failed):
        raise OCIRuntimeError(msg.message)


def _destroy_quietly(cg: Cgroup) -> None:
    try:
        cg.kill_all(signal.SIGKILL)
        cg.destroy(timeout=2.0)
    except (OSError, DockyardError):
        pass


_EXEC_NS_ORDER = ("ipc", "uts", "network", "cgroup", "mount")


def _exec_namespaces(init_pid: int, proc_root: str) -> tuple[list[tuple[int, int]], str | None]:
    """Open the namespaces of ``init_pid`` that differ from the caller's: (fds to setns in
    the child, the pid namespace path to fork into or None)."""
    fds: list[tuple[int, int]] = []
    try:
        for t in _EXEC_NS_ORDER:
            path = ns.ns_path(init_pid, t, proc_root)
            if os.stat(path).st_ino != os.stat(ns.ns_path("self", t, proc_root)).st_ino:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), ns.NAMESPACES[t][0]))
        pid_path = ns.ns_path(init_pid, "pid", proc_root)
        same_pid = os.stat(pid_path).st_ino == os.stat(ns.ns_path("self", "pid", proc_root)).st_ino
    except OSError as exc:
        for fd, _ in fds:
            os.close(fd)
        raise OCIRuntimeError(f"container init {init_pid} is not running: {exc.strerror}") from exc
    return fds, None if same_pid else pid_path


def exec_process(
    init_pid: int,
    process: Mapping[str, Any],
    *,
    stdio: Stdio | None = None,
    cgroup_path: str | None = None,
    user: str | None = None,
    preserve_fds: int = 0,
    cgroup_root: Path = DEFAULT_ROOT,
    proc_root: str = "/proc",
    syscalls: Syscalls | None = None,
) -> ExecProcess:
    """Start ``process`` (an OCI process object) in every namespace of ``init_pid``, in its
    cgroup (``cgroup_path``, or the init's own cgroups read from /proc), root and cwd.

    ``user`` is docker's ``--user`` string, resolved in the container like the init's.
    Returns once the process execve'd; it is the caller's child (reap it with waitpid).
    Raises OCIRuntimeError (runc's wording) when set-up or execve failed."""
    validate_process(process)
    sc = syscalls or _LINUX
    plan = build_process_plan(process, user_spec=user, preserve_fds=preserve_fds)
    if cgroup_path:
        procs = open_cgroup(cgroup_path, cgroup_root).procs_files()
    else:
        try:
            procs = procs_files_of_pid(init_pid, cgroup_root, proc_root)
        except OSError as exc:
            raise OCIRuntimeError(f"container init {init_pid} is not running") from exc
    ns_fds, pid_path = _exec_namespaces(init_pid, proc_root)
    parent, child = Channel.pair()
    std = None if stdio is None else stdio.fds()
    pid = -1
    try:

        def body() -> None:
            parent.close()
            run_exec(sc, plan, child, cgroup_procs=procs, ns_fds=ns_fds, stdio=std)

        pid = _fork(body, child, pid_ns_path=pid_path)
        child.close()
        master = _await_ready(pid, parent)
        msg, fds = parent.recv()
        for fd in fds:
            os.close(fd)
        if isinstance(msg, ExecFailed):
            if master is not None:
                os.close(master)
            _reap(pid)
            raise OCIRuntimeError(msg.message)
    except BaseException:
        child.close()
        if pid > 0 and process_state(pid) is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        raise
    finally:
        parent.close()
        for fd, _ in ns_fds:
            os.close(fd)
    return ExecProcess(pid, master)
