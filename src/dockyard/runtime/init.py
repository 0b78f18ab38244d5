"""The container process side: what runs in the forked child, from fork to execve.

``run_init`` is the whole life of a container init before execve; ``run_exec`` the life of
a process exec'd into a running container. Both take every kernel call through
``Syscalls`` and every value from a plan computed in the parent (``dockyard.runtime.plan``):
no imports, no parsing of the spec here. They raise OCIRuntimeError on failure; the fork
wrapper in ``dockyard.runtime.container`` reports it to the parent and exits.

Init order (runc's, see docs/architecture.md §2):

1. setns into namespaces given by path, unshare the new ones except the cgroup namespace
   (the pid namespace was set up by the parent before fork: this process is pid 1 in it)
2. loopback up, hostname, oom_score_adj, stdio, ``/`` rslave, the rootfs mounts and the
   spec mounts but the cgroup ones, devices (``rootfs.mount_root``), pivot_root
3. setsid; terminal: pty from the container's devpts, controlling tty, /dev/console
4. sysctl, read-only and masked paths, read-only root (``rootfs.finalize_rootfs``)
   — all along, the parent creates the cgroup and moves this process into it (on
   cgroup v1 the first migration after an idle spell waits for an RCU grace period:
   this overlaps it)
5. wait for Proceed, then unshare (or join) the cgroup namespace, so the container's
   cgroup is its root, and mount the cgroup filesystems (``rootfs.mount_cgroups``)
6. rlimits, user (``org.dockyard.user`` resolved in /etc/passwd, /etc/group), bounding
   set, keepcaps → groups/gid/uid → capset, ambient, cwd, args[0] lookup,
   no_new_privs, umask
7. Ready (with the pty master) → wait for Start (channel) or for the exec fifo to be
   opened (``dockyard-runtime create``) → execve

A *spare init* (``run_spare_init``) does step 1 before its container is known (new
namespaces of docker's default set, none joined; lo up), then waits for its job: a
``Plan`` (then as above from step 2), or a ``Job`` from the native shim, which it plans
itself, making its cgroup on the way, so that no Proceed is awaited in step 5.
"""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Callable, Sequence

from dockyard.errors import DockyardError, OCIRuntimeError
from dockyard.linux.ns import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUTS,
)
from dockyard.linux.syscalls import Syscalls
from dockyard.runtime.channel import Channel, ExecFailed, Job, Plan, Proceed, Ready, Start
from dockyard.runtime.lookpath import lookpath, path_of_env
from dockyard.runtime.plan import InitPlan, ProcessPlan
from dockyard.runtime.rootfs import finalize_rootfs, mount_cgroups, mount_root, pivot, why
from dockyard.runtime.user import resolve_user

__all__ = [
    "SPARE_NAMESPACES",
    "Prepared",
    "join_cgroup",
    "prepare_process",
    "run_exec",
    "run_init",
    "run_spare_init",
    "setup_terminal",
    "spare_fits",
]

# the namespaces a spare init makes before it knows its container (docker's default set
# but pid, which its parent made, and cgroup, which comes after the cgroup is joined)
SPARE_NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET


class Prepared:
    """The result of ``prepare_process``: what execve needs."""

    __slots__ = ("path", "argv", "env")

    def __init__(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None:
        self.path, self.argv, self.env = path, argv, env


def join_cgroup(sc: Syscalls, procs_files: Sequence[str]) -> None:
    """Write ``0`` (= this process) into each cgroup.procs file."""
    for path in procs_files:
        try:
            sc.write_file(path, "0")
        except OSError as exc:
            raise OCIRuntimeError(f"join cgroup {path}: {why(exc)}") from exc


def _stdio(sc: Syscalls, stdio: tuple[int, int, int] | None) -> None:
    if stdio is None:
        return
    if stdio == (0, 1, 2):
        return
    # dup every source out of the way first so that swapped fds do not clobber each other
    high = [sc.dup(fd) for fd in stdio]
    for target, fd in enumerate(high):
        sc.dup2(fd, target)
        sc.close(fd)


def setup_terminal(sc: Syscalls, p: ProcessPlan, console: bool) -> int:
    """Open a pty from the container's /dev/ptmx, make its slave the controlling tty and
    stdio (and /dev/console when ``console``); return the master fd. The caller is a
    session leader already."""
    try:
        master, slave, path = sc.open_pty("/dev/ptmx")
    except OSError as exc:
        raise OCIRuntimeError(f"open /dev/ptmx: {why(exc)}") from exc
    try:
        if p.console_size:
            sc.set_winsize(slave, p.console_size[0], p.console_size[1])
        if console:
            sc.mount(path, "/dev/console", None, 4096, None)  # MS_BIND
        sc.set_ctty(slave)
        for fd in (0, 1, 2):
            sc.dup2(slave, fd)
        sc.close(slave)
    except OSError as exc:
        raise OCIRuntimeError(f"set up the console {path}: {why(exc)}") from exc
    return master


def _fix_stdio_owner(sc: Syscalls, uid: int) -> None:
    """Give fds 0-2 to ``uid`` so a non-root process can use its tty/pipes (not /dev/null)."""
    for fd in (0, 1, 2):
        try:
            st = sc.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid or (stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == 0x103):
            continue
        try:
            sc.fchown(fd, uid, st.st_gid)
        except OSError as exc:
            raise OCIRuntimeError(f"fchown fd {fd}: {why(exc)}") from exc


def _home_in(env: Sequence[str]) -> bool:
    return any(e.startswith("HOME=") for e in env)


def _text(sc: Syscalls, path: str) -> str | None:
    data = sc.read_file(path)
    return None if data is None else data.decode(errors="replace")


def prepare_process(sc: Syscalls, p: ProcessPlan) -> Prepared:
    """Step 7 of the module docstring. Returns what to execve."""
    for resource, soft, hard in p.rlimits:
        try:
            sc.setrlimit(resource, soft, hard)
        except OSError as exc:
            raise OCIRuntimeError(f"error setting rlimit type {resource}: {why(exc)}") from exc
    uid, gid, groups = p.uid, p.gid, p.additional_gids
    env = p.env
    if p.user_spec is not None or not _home_in(env):
        passwd, group = _text(sc, "/etc/passwd"), _text(sc, "/etc/group")
        try:
            if p.user_spec is not None:
                user = resolve_user(p.user_spec, passwd, group, p.uid, p.gid)
                uid, gid, groups = user.uid, user.gid, user.sgids + p.additional_gids
            else:
                user = resolve_user(f"{p.uid}:{p.gid}", passwd, group)
        except DockyardError as exc:
            raise OCIRuntimeError(exc.message) from exc
        if not _home_in(env):
            env = env + (f"HOME={user.home}",)
    if sc.stat(p.cwd) is None:
        cur = ""
        for part in p.cwd.strip("/").split("/"):
            cur += "/" + part
            if sc.stat(cur) is None:
                try:
                    sc.mkdir(cur, 0o755)
                except OSError as exc:
                    raise OCIRuntimeError(f"mkdir {p.cwd}: {why(exc)}") from exc
    if uid != 0:
        _fix_stdio_owner(sc, uid)
    _identity(sc, p, uid, gid, groups)
    try:
        sc.chdir(p.cwd)
    except OSError as exc:
        raise OCIRuntimeError(
            f'chdir to cwd ("{p.cwd}") set in config.json failed: {why(exc)}'
        ) from exc
    path = lookpath(sc, p.args[0], path_of_env(env), p.cwd)
    if p.no_new_privileges:
        sc.set_no_new_privs()
    sc.umask(p.umask)
    return Prepared(path, p.args, env)


def _identity(sc: Syscalls, p: ProcessPlan, uid: int, gid: int, groups: Sequence[int]) -> None:
    caps = p.caps
    try:
        if caps is not None:
            for cap in range(p.last_cap + 1):
                if not caps.bounding >> cap & 1:
                    sc.bounding_drop(cap)
        sc.set_keepcaps(True)
        sc.setgroups(groups)
        sc.setresgid(gid, gid, gid)
        sc.setresuid(uid, uid, uid)
        sc.set_keepcaps(False)
        if caps is not None:
            sc.capset(caps.effective, caps.permitted, caps.inheritable)
            sc.ambient_clear_all()
            for cap in range(p.last_cap + 1):
                if caps.ambient >> cap & 1:
                    sc.ambient_raise(cap)
    except OSError as exc:
        raise OCIRuntimeError(f"set user {uid}:{gid} and capabilities: {why(exc)}") from exc


def _execve(sc: Syscalls, prepared: Prepared, preserve_fds: int) -> None:
    sc.close_range_cloexec(3 + preserve_fds)
    sc.reset_signals()
    try:
        sc.execve(prepared.path, prepared.argv, prepared.env)
    except OSError as exc:
        raise _ExecError(f"exec {prepared.path}: {why(exc)}") from exc


class _ExecError(OCIRuntimeError):
    """execve itself failed (after Start)."""


def _setns(sc: Syscalls, ns_fds: Sequence[tuple[int, int]]) -> None:
    for fd, flag in ns_fds:
        try:
            sc.setns(fd, flag)
        except OSError as exc:
            raise OCIRuntimeError(f"setns {flag:#x}: {why(exc)}") from exc


def _unshare(sc: Syscalls, flags: int) -> None:
    if not flags:
        return
    try:
        sc.unshare(flags)
    except OSError as exc:
        raise OCIRuntimeError(f"unshare {flags:#x}: {why(exc)}") from exc


def run_init(
    sc: Syscalls,
    plan: InitPlan,
    chan: Channel,
    *,
    ns_fds: Sequence[tuple[int, int]] = (),
    stdio: tuple[int, int, int] | None = None,
    fifo_fd: int | None = None,
) -> None:
    """The container init from fork to execve (see the module docstring).

    ``ns_fds`` are (fd, CLONE_NEW*) opened by the parent for ``plan.join``; ``fifo_fd`` an
    O_PATH fd of the exec fifo when started by ``dockyard-runtime start``. Returns only
    when the parent went away before Start (nothing to do) or with a fake ``sc``."""
    _setns(sc, [(fd, flag) for fd, flag in ns_fds if flag != CLONE_NEWCGROUP])
    _unshare(sc, plan.unshare_flags & ~CLONE_NEWCGROUP)
    if plan.loopback and plan.unshare_flags & CLONE_NEWNET:
        sc.link_up("lo")
    _run_init_in_namespaces(sc, plan, chan, ns_fds=ns_fds, stdio=stdio, fifo_fd=fifo_fd)


def spare_fits(plan: InitPlan) -> bool:
    """Whether a spare init (``run_spare_init``) can become the init of ``plan``: a new pid
    namespace and new namespaces of exactly ``SPARE_NAMESPACES`` (the cgroup one aside),
    none joined, lo up, no exec fifo."""
    return (plan.new_pid_ns and not plan.join and plan.loopback and plan.exec_fifo is None
            and plan.unshare_flags & ~CLONE_NEWCGROUP == SPARE_NAMESPACES)


def run_spare_init(sc: Syscalls, chan: Channel,
                   on_job: Callable[[bytes], InitPlan] | None = None,
                   ahead: Callable[[], None] | None = None) -> None:
    """A container init forked before its container is known (a *spare init*): the caller
    forked it into a new pid namespace; it unshares ``SPARE_NAMESPACES``, brings lo up and
    waits for its job, with the stdio fds (none when the process has a terminal or keeps
    the parent's 0-2):

    * ``Plan``: the plan, from a parent that makes the cgroup and sends Proceed, as for
      any init (``create_init``);
    * ``Job``: the shim config as JSON, from the native shim: ``on_job`` turns it into the
      plan, making and limiting the cgroup on the way; the init joins it without waiting
      for a Proceed.

    ``ahead`` runs in the new namespaces, before the wait (what can be done for any job:
    only there may it touch mounts, which are the init's own by then). From there on it is
    ``run_init``'s step 2 onwards. Returns when the parent goes away without a job."""
    _unshare(sc, SPARE_NAMESPACES)
    sc.link_up("lo")
    if ahead is not None:
        ahead()
    msg, fds = chan.recv()
    try:
        stdio = (fds[0], fds[1], fds[2]) if len(fds) == 3 else None
        if isinstance(msg, Plan):
            _run_init_in_namespaces(sc, msg.plan, chan, stdio=stdio)
        elif isinstance(msg, Job) and on_job is not None:
            plan = on_job(msg.data)
            if not spare_fits(plan):
                raise OCIRuntimeError("the container's namespaces do not fit a spare init")
            _run_init_in_namespaces(sc, plan, chan, stdio=stdio, proceed=False)
    finally:
        for fd in fds:  # (left open only when returning: execve closes them)
            sc.close(fd)


def _run_init_in_namespaces(
    sc: Syscalls,
    plan: InitPlan,
    chan: Channel,
    *,
    ns_fds: Sequence[tuple[int, int]] = (),
    stdio: tuple[int, int, int] | None = None,
    fifo_fd: int | None = None,
    proceed: bool = True,
) -> None:
    """``run_init`` from step 2 on: the namespaces but the cgroup one are entered.
    ``proceed``: wait for the parent's Proceed before joining the cgroup (False: the
    cgroup is made already)."""
    if plan.hostname:
        sc.sethostname(plan.hostname)
    if plan.domainname:
        sc.setdomainname(plan.domainname)
    if plan.process.oom_score_adj is not None:
        sc.write_file("/proc/self/oom_score_adj", str(plan.process.oom_score_adj))
    if not plan.process.terminal:
        _stdio(sc, stdio)
    mount_root(sc, plan.rootfs)
    pivot(sc, plan.rootfs)
    sc.setsid()
    master = (
        setup_terminal(sc, plan.process, plan.rootfs.console) if plan.process.terminal else None
    )
    finalize_rootfs(sc, plan.rootfs)
    if proceed:
        msg, _ = chan.recv()
        if not isinstance(msg, Proceed):
            return
    join_cgroup(sc, plan.cgroup_procs)
    _setns(sc, [(fd, flag) for fd, flag in ns_fds if flag == CLONE_NEWCGROUP])
    _unshare(sc, plan.unshare_flags & CLONE_NEWCGROUP)
    mount_cgroups(sc, plan.rootfs)
    prepared = prepare_process(sc, plan.process)
    chan.send(Ready(), [master] if master is not None else [])
    if master is not None:
        sc.close(master)
    if fifo_fd is not None:
        # blocks until `start` opens the fifo for reading
        sc.write_file(f"/proc/self/fd/{fifo_fd}", "0")
    else:
        msg, _ = chan.recv()
        if not isinstance(msg, Start):
            return
    try:
        _execve(sc, prepared, plan.process.preserve_fds)
    except _ExecError as exc:
        chan.send(ExecFailed(exc.message))
        raise


def run_exec(
    sc: Syscalls,
    p: ProcessPlan,
    chan: Channel,
    *,
    cgroup_procs: Sequence[str],
    ns_fds: Sequence[tuple[int, int]],
    stdio: tuple[int, int, int] | None,
) -> None:
    """A process exec'd into a running container, from fork to execve: join its cgroup and
    namespaces (the pid namespace was joined by the parent before fork), then like the init
    from step 5 on, without waiting for Start."""
    join_cgroup(sc, cgroup_procs)
    _setns(sc, ns_fds)
    sc.setsid()
    if p.terminal:
        master: int | None = setup_terminal(sc, p, console=False)
    else:
        master = None
        _stdio(sc, stdio)
    prepared = prepare_process(sc, p)
    chan.send(Ready(), [master] if master is not None else [])
    if master is not None:
        sc.close(master)
    try:
        _execve(sc, prepared, p.preserve_fds)
    except _ExecError as exc:
        chan.send(ExecFailed(exc.message))
        raise
