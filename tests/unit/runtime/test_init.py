"""The init and exec sequences against RecordingSyscalls (no fork, no root)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from dockyard.errors import OCIRuntimeError
from dockyard.linux import ns
from dockyard.linux.caps import mask_of
from dockyard.linux.fake import RecordingSyscalls
from dockyard.oci.runtime_spec import DEFAULT_CAPABILITIES, default_spec
from dockyard.runtime.channel import Channel, Proceed, Ready, Start
from dockyard.runtime.init import run_exec, run_init
from dockyard.runtime.plan import build_init_plan, build_process_plan

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nmail:x:8:12:mail:/var/spool/mail:/bin/false\n"
GROUP = b"root:x:0:\nwheel:x:10:root\nmail:x:12:mail\nstaff:x:50:\n"


def _sc() -> RecordingSyscalls:
    return RecordingSyscalls(
        dirs={"/b/rootfs", "/bin", "/proc", "/tmp"},
        files={"/bin/sh": b"", "/etc/passwd": PASSWD, "/etc/group": GROUP},
        modes={"/bin/sh": stat.S_IFREG | 0o755},
    )


def _run(spec: dict, sc: RecordingSyscalls, start: bool = True) -> list:  # type: ignore[type-arg]
    plan = build_init_plan(spec, Path("/b"), last_cap=40)
    parent, child = Channel.pair()
    try:
        parent.send(Proceed())
        if start:
            parent.send(Start())
        else:
            parent.sock.shutdown(socket.SHUT_WR)  # the caller went away before Start
        run_init(sc, plan, child)
        return _replies(parent, child)
    finally:
        parent.close()
        child.close()


def _replies(parent: Channel, child: Channel) -> list:  # type: ignore[type-arg]
    """Every message the child sent, once its end is closed."""
    child.close()
    msgs = []
    while True:
        msg, _fds = parent.recv()
        if msg is None:
            return msgs
        msgs.append(msg)


def test_order_of_the_init() -> None:
    sc = _sc()
    msgs = _run(default_spec(["sh", "-c", "true"], hostname="h"), sc)
    assert msgs == [Ready()]
    names = sc.names()
    # every namespace but the cgroup one first; the cgroup namespace only after the
    # parent's Proceed (it has moved us into the cgroup), after the rootfs mount
    first, second = sc.args("unshare")
    assert first[0] == ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC | ns.CLONE_NEWNET
    assert second[0] == ns.CLONE_NEWCGROUP
    assert names[:3] == ["unshare", "link_up", "sethostname"]
    overlay = sc.calls.index(("mount", ("/b/rootfs", "/b/rootfs", None, 16384 | 4096, None)))
    cgroupns = sc.calls.index(("unshare", second))
    # everything that does not need the cgroup namespace first (it overlaps the parent's
    # cgroup work), then the cgroup mounts inside the new root
    assert overlay < names.index("pivot_root") < cgroupns
    first_after = next(c for c in sc.calls[cgroupns + 1 :] if c[0] == "mount")
    assert first_after == ("mount", ("tmpfs", "/sys/fs/cgroup", "tmpfs", 14, "mode=755"))
    assert names.index("pivot_root") < names.index("setsid") < names.index("setresuid")
    # bounding set dropped while still privileged, ids changed with keepcaps, then capset
    order = [
        n
        for n in names
        if n
        in (
            "bounding_drop",
            "set_keepcaps",
            "setgroups",
            "setresgid",
            "setresuid",
            "capset",
            "set_no_new_privs",
            "execve",
        )
    ]
    assert order[0] == "bounding_drop"
    i = order.index("set_keepcaps")
    assert order[i : i + 5] == [
        "set_keepcaps",
        "setgroups",
        "setresgid",
        "setresuid",
        "set_keepcaps",
    ]
    assert order[-3:] == ["capset", "set_no_new_privs", "execve"]
    dropped = {a[0] for a in sc.args("bounding_drop")}
    assert dropped == set(range(41)) - {
        i for i in range(41) if mask_of(DEFAULT_CAPABILITIES) >> i & 1
    }
    assert sc.args("capset") == [(mask_of(DEFAULT_CAPABILITIES), mask_of(DEFAULT_CAPABILITIES), 0)]


def test_default_user_is_root_with_wheel_and_home() -> None:
    sc = _sc()
    _run(default_spec(["sh"]), sc)
    assert sc.args("setgroups") == [((10,),)]
    assert sc.args("setresuid") == [(0, 0, 0)]
    path, argv, env = sc.args("execve")[0]
    assert path == "/bin/sh" and argv == ("sh",)
    assert "HOME=/root" in env


def test_user_by_name_with_group_add() -> None:
    sc = _sc()
    _run(default_spec(["sh"], user="mail", additional_gids=[50]), sc)
    assert sc.args("setgroups") == [((12, 50),)]
    assert sc.args("setresgid") == [(12, 12, 12)]
    assert sc.args("setresuid") == [(8, 8, 8)]
    assert "HOME=/var/spool/mail" in sc.args("execve")[0][2]
    # stdio is handed to the user before the uid changes
    assert sc.names().index("fchown") < sc.names().index("setresuid")


def test_unknown_user_fails_before_ready() -> None:
    sc = _sc()
    with pytest.raises(
        OCIRuntimeError, match="^unable to find user nosuch: no matching entries in passwd file$"
    ):
        _run(default_spec(["sh"], user="nosuch"), sc)
    assert "execve" not in sc.names() and "setresuid" not in sc.names()


def test_missing_command_fails_before_ready() -> None:
    with pytest.raises(OCIRuntimeError) as info:
        _run(default_spec(["nosuch"]), _sc())
    assert info.value.message == 'exec: "nosuch": executable file not found in $PATH'


def test_child_joins_cgroup_itself_when_told_to() -> None:
    sc = _sc()
    plan = build_init_plan(
        default_spec(["sh"]), Path("/b"), cgroup_procs=["/cg/cgroup.procs"], last_cap=40
    )
    parent, child = Channel.pair()
    try:
        parent.send(Proceed())
        parent.send(Start())
        run_init(sc, plan, child)
    finally:
        parent.close()
        child.close()
    i = sc.calls.index(("write_file", ("/cg/cgroup.procs", "0")))
    assert sc.calls[i + 1] == ("unshare", (ns.CLONE_NEWCGROUP,))


def test_no_start_means_no_exec() -> None:
    sc = _sc()
    msgs = _run(default_spec(["sh"]), sc, start=False)
    assert msgs == [Ready()]
    assert "execve" not in sc.names()


def test_cwd_is_created_and_entered_as_the_user() -> None:
    sc = _sc()
    _run(default_spec(["sh"], cwd="/work/dir", user="mail"), sc)
    assert ("mkdir", ("/work", 0o755)) in sc.calls and ("mkdir", ("/work/dir", 0o755)) in sc.calls
    names = sc.names()
    assert names.index("setresuid") < len(names) - 1 - names[::-1].index("chdir")


def test_terminal_sends_the_master_and_makes_the_slave_stdio() -> None:
    r, w = os.pipe()

    class PtySyscalls(RecordingSyscalls):
        def open_pty(self, ptmx: str) -> tuple[int, int, str]:
            self._rec("open_pty", ptmx)
            return r, w, "/dev/pts/0"

    sc = PtySyscalls(
        dirs={"/b/rootfs", "/bin"}, files={"/bin/sh": b""}, modes={"/bin/sh": stat.S_IFREG | 0o755}
    )
    spec = default_spec(["sh"], terminal=True, console_size=(24, 80))
    plan = build_init_plan(spec, Path("/b"), last_cap=40)
    parent, child = Channel.pair()
    try:
        parent.send(Proceed())
        parent.send(Start())
        run_init(sc, plan, child)
        msg, fds = parent.recv()
        assert msg == Ready() and len(fds) == 1
        os.close(fds[0])
    finally:
        parent.close()
        child.close()
        os.close(r)
        os.close(w)
    assert ("set_winsize", (w, 24, 80)) in sc.calls
    assert ("mount", ("/dev/pts/0", "/dev/console", None, 4096, None)) in sc.calls
    assert [a for a in sc.args("dup2")] == [(w, 0), (w, 1), (w, 2)]
    assert sc.names().index("setsid") < sc.names().index("set_ctty")


def test_exec_joins_cgroup_then_namespaces_then_execs_without_start() -> None:
    sc = _sc()
    p = build_process_plan(default_spec(["sh"])["process"], user_spec="mail", last_cap=40)
    parent, child = Channel.pair()
    try:
        run_exec(
            sc,
            p,
            child,
            cgroup_procs=["/cg/cgroup.procs"],
            ns_fds=[(5, ns.CLONE_NEWIPC), (6, ns.CLONE_NEWNS)],
            stdio=None,
        )
        assert parent.recv()[0] == Ready()
    finally:
        parent.close()
        child.close()
    assert sc.calls[:3] == [
        ("write_file", ("/cg/cgroup.procs", "0")),
        ("setns", (5, ns.CLONE_NEWIPC)),
        ("setns", (6, ns.CLONE_NEWNS)),
    ]
    assert sc.args("setresuid") == [(8, 8, 8)] and sc.names()[-1] == "execve"


def _spare(sc: RecordingSyscalls, msg: object, on_job: object = None,
           stdio: bool = True) -> list:  # type: ignore[type-arg]
    """run_spare_init given ``msg`` (then Start), with pipes as stdio; the messages back."""
    from dockyard.runtime.init import run_spare_init

    parent, child = Channel.pair()
    fds = list(os.pipe()) + list(os.pipe()) if stdio else []
    try:
        parent.send(msg, fds[:3])  # type: ignore[arg-type]
        parent.send(Start())
        run_spare_init(sc, child, on_job)  # type: ignore[arg-type]
        return _replies(parent, child)
    finally:
        parent.close()
        child.close()
        for fd in fds:
            os.close(fd)


def test_a_spare_init_makes_its_namespaces_before_its_plan_and_needs_no_proceed() -> None:
    from dockyard.runtime.channel import Job

    sc = _sc()
    jobs = []

    def on_job(data: bytes) -> object:
        jobs.append(data)
        assert sc.names()[:2] == ["unshare", "link_up"]  # before the job, not after
        return build_init_plan(default_spec(["sh"], hostname="h"), Path("/b"),
                               cgroup_procs=["/proc/self/fd/9"], last_cap=40)

    assert _spare(sc, Job(b'{"id": "c"}'), on_job) == [Ready()]
    assert jobs == [b'{"id": "c"}']
    names = sc.names()
    assert sc.args("unshare")[0] == (ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC
                                     | ns.CLONE_NEWNET,)
    assert names.index("sethostname") > names.index("link_up")
    # the received stdio became 0-2, and the cgroup is joined through the fd's path
    assert [a[1] for a in sc.args("dup2")] == [0, 1, 2]
    i = sc.calls.index(("write_file", ("/proc/self/fd/9", "0")))
    assert i > names.index("pivot_root")
    assert sc.calls[i + 1] == ("unshare", (ns.CLONE_NEWCGROUP,))
    # (a real execve never returns; the fake one does, and the received fds are closed)
    assert names.index("execve") > i and set(names[names.index("execve") + 1:]) == {"close"}


def test_a_spare_init_given_a_plan_waits_for_proceed() -> None:
    from dockyard.runtime.channel import Plan

    sc = _sc()
    plan = build_init_plan(default_spec(["sh"]), Path("/b"), last_cap=40)
    parent, child = Channel.pair()
    try:
        parent.send(Plan(plan))
        parent.sock.shutdown(socket.SHUT_WR)  # no Proceed: the parent went away
        from dockyard.runtime.init import run_spare_init

        run_spare_init(sc, child)
    finally:
        parent.close()
        child.close()
    assert "mount" in sc.names() and "execve" not in sc.names()
    assert ("unshare", (ns.CLONE_NEWCGROUP,)) not in sc.calls


def test_a_spare_init_refuses_a_job_whose_namespaces_it_does_not_have() -> None:
    from dockyard.runtime.channel import Job

    spec = default_spec(["sh"])
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"]  # --network host
    with pytest.raises(OCIRuntimeError, match="do not fit a spare init"):
        _spare(_sc(), Job(b"{}"), lambda data: build_init_plan(spec, Path("/b"), last_cap=40))


def test_a_spare_init_without_a_job_does_nothing() -> None:
    from dockyard.runtime.init import run_spare_init

    sc = _sc()
    parent, child = Channel.pair()
    parent.close()
    try:
        run_spare_init(sc, child)
    finally:
        child.close()
    assert sc.names() == ["unshare", "link_up"]


def test_a_spare_init_does_its_work_ahead_in_its_own_namespaces() -> None:
    """``ahead`` (the staging of /proc, /dev and /sys) runs after the namespaces are made,
    before the job is awaited: never in the parent's mount namespace."""
    from dockyard.runtime.init import run_spare_init

    sc = _sc()
    seen: list[list[str]] = []
    parent, child = Channel.pair()
    parent.close()
    try:
        run_spare_init(sc, child, ahead=lambda: seen.append(sc.names()))
    finally:
        child.close()
    assert seen == [["unshare", "link_up"]]
