"""The runtime library against the real kernel: namespaces, mounts, users, capabilities,
terminals, cgroups, errors. Each container runs busybox over an overlay rootfs."""

from __future__ import annotations

import os
import select
import signal
from typing import Callable

import pytest

from dockyard.errors import OCIRuntimeError
from dockyard.runtime import Stdio, exec_process, exit_status
from dockyard.runtime.cgroups import open_cgroup

from .conftest import Box

MakeBox = Callable[..., Box]


def test_hostname_pid1_and_loopback(make_box: MakeBox) -> None:
    code, out, _ = make_box(
        ["sh", "-c", "hostname; echo $$; ip link show lo"], hostname="box1"
    ).run()
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "box1" and lines[1] == "1"
    assert "UP" in lines[2].split("<")[1]
    assert len([ln for ln in lines if ": " in ln and "link/" not in ln]) == 1  # only lo


def test_masked_and_readonly_paths(make_box: MakeBox) -> None:
    script = (
        "wc -c < /proc/keys; ls -A /sys/firmware | wc -l; touch /sys/x 2>&1; "
        "(echo x > /proc/sys/kernel/domainname) 2>&1; echo ok"
    )
    code, out, _ = make_box(["sh", "-c", script]).run()
    lines = out.splitlines()
    assert code == 0
    assert lines[0].strip() == "0" and lines[1].strip() == "0"
    assert "Read-only file system" in lines[2]
    assert "Read-only file system" in lines[3]
    assert lines[-1] == "ok"


def test_mount_table(make_box: MakeBox) -> None:
    code, out, _ = make_box(["cat", "/proc/self/mounts"]).run()
    mounts = {line.split()[1]: line.split() for line in out.splitlines()}
    assert code == 0
    assert mounts["/"][2] == "overlay"
    assert mounts["/proc"][2] == "proc" and "nosuid" in mounts["/proc"][3]
    assert mounts["/sys"][3].startswith("ro,")
    assert mounts["/dev/pts"][2] == "devpts" and "ptmxmode=666" in mounts["/dev/pts"][3]
    assert mounts["/dev/shm"][2] == "tmpfs" and mounts["/dev/mqueue"][2] == "mqueue"
    assert mounts["/sys/fs/cgroup"][3].startswith("ro,")
    assert mounts["/proc/sys"][3].startswith("ro,")


def test_devices(make_box: MakeBox) -> None:
    code, out, _ = make_box(
        [
            "sh",
            "-c",
            "ls -l /dev/null /dev/tty /dev/ptmx /dev/fd; echo hi > /dev/null; "
            "head -c 4 /dev/zero | wc -c",
        ]
    ).run()
    assert code == 0
    assert (
        "crw-rw-rw-    1 root     root        1,   3" in out
        and "/dev/ptmx -> pts/ptmx" in out
        and "/dev/fd -> /proc/self/fd" in out
    )
    assert out.splitlines()[-1].strip() == "4"


def test_docker_capabilities_and_no_new_privs(make_box: MakeBox) -> None:
    code, out, _ = make_box(["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"]).run()
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert code == 0
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "00000000a80425fb"
    assert fields["CapInh"] == fields["CapAmb"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"


@pytest.mark.parametrize(
    "user, want",
    [
        ("", "uid=0(root) gid=0(root) groups=10(wheel)"),
        # the image's passwd gives mail gid 8 (no such group), its group file lists mail in 12
        ("mail", "uid=8(mail) gid=8 groups=12(mail)"),
        # an explicit group: no supplementary groups from the file (docker's rule)
        ("1000:50", "uid=1000 gid=50(staff)"),
        ("mail:staff", "uid=8(mail) gid=50(staff)"),
        ("65534", "uid=65534(nobody) gid=65534(nogroup)"),
    ],
)
def test_user_resolved_in_the_container(make_box: MakeBox, user: str, want: str) -> None:
    code, out, _ = make_box(
        ["sh", "-c", "id; grep Cap /proc/self/status | grep Eff"], user=user
    ).run()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == want
    # a non-root process keeps no effective capabilities across execve, as with docker
    assert lines[1].endswith("00000000a80425fb" if user == "" else "0000000000000000")


def test_unknown_user_fails_at_create_and_leaves_nothing(make_box: MakeBox) -> None:
    box = make_box(["id"], user="nosuch")
    with pytest.raises(OCIRuntimeError) as info:
        box.create()
    assert info.value.message == "unable to find user nosuch: no matching entries in passwd file"
    assert not open_cgroup(box.cgroup_path).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], 'exec: "nosuch": executable file not found in $PATH'),
        (["/etc/passwd"], 'exec: "/etc/passwd": permission denied'),
        (["/nosuch"], 'exec: "/nosuch": stat /nosuch: no such file or directory'),
    ],
)
def test_bad_command_fails_at_create(make_box: MakeBox, args: list[str], message: str) -> None:
    box = make_box(args)
    with pytest.raises(OCIRuntimeError) as info:
        box.create()
    assert info.value.message == message
    assert not open_cgroup(box.cgroup_path).exists()


def test_env_cwd_home(make_box: MakeBox) -> None:
    box = make_box(["sh", "-c", 'pwd; echo "$A|$HOME|$PATH"'], env=["A=1"], cwd="/work/dir")
    code, out, _ = box.run()
    assert code == 0
    assert out.splitlines() == [
        "/work/dir",
        "1|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]


def test_rlimits_and_umask(make_box: MakeBox) -> None:
    box = make_box(
        ["sh", "-c", "ulimit -n; ulimit -Hn; umask"],
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000}],
    )
    code, out, _ = box.run()
    assert (code, out.split()) == (0, ["1000", "2000", "0022"])


def test_exit_codes(make_box: MakeBox) -> None:
    assert make_box(["sh", "-c", "exit 3"]).run()[0] == 3
    box = make_box(["sleep", "30"])
    init = box.create()
    init.start()
    init.kill(signal.SIGKILL)
    assert init.wait() == 128 + 9


def test_readonly_rootfs(make_box: MakeBox) -> None:
    code, out, _ = make_box(
        ["sh", "-c", "touch /x 2>&1; touch /tmp/y 2>&1; echo done"], readonly_rootfs=True
    ).run()
    assert code == 0 and out.count("Read-only file system") == 2


def test_cgroup_limits_and_namespace(make_box: MakeBox) -> None:
    box = make_box(
        [
            "sh",
            "-c",
            "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max "
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
        resources={"pids": {"limit": 20}, "memory": {"limit": 64 << 20}},
    )
    if open_cgroup(box.cgroup_path).version != "v1":
        pytest.skip("this check reads v1 files; the host mounts cgroup v2")
    code, out, _ = box.run()
    lines = out.splitlines()
    assert code == 0
    assert all(line.endswith(":/") for line in lines if ":" in line)  # the cgroup ns root
    assert lines[-2:] == ["20", str(64 << 20)]


def test_init_is_in_its_cgroup(make_box: MakeBox) -> None:
    box = make_box(["sleep", "30"])
    init = box.create()
    assert init.cgroup is not None and init.cgroup.pids() == [init.pid]
    with open(f"/proc/{init.pid}/cgroup") as f:
        assert f"pids:{box.cgroup_path}" in f.read()


def test_caller_namespaces_are_unchanged(make_box: MakeBox) -> None:
    before = {
        ns: os.stat(f"/proc/self/ns/{ns}").st_ino
        for ns in ("pid", "pid_for_children", "mnt", "net", "uts")
    }
    box = make_box(["true"])
    init = box.create()
    after = {ns: os.stat(f"/proc/self/ns/{ns}").st_ino for ns in before}
    assert before == after
    assert os.stat(f"/proc/{init.pid}/ns/pid").st_ino != before["pid"]
    init.start()
    assert init.wait() == 0


def test_terminal(make_box: MakeBox) -> None:
    box = make_box(
        ["sh", "-c", "tty; stty size; ls -l /dev/console"], terminal=True, console_size=(24, 80)
    )
    init = box.create()
    assert init.pty_master is not None
    init.start()
    out = b""
    while True:
        r, _, _ = select.select([init.pty_master], [], [], 10)
        if not r:
            break
        try:
            data = os.read(init.pty_master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    assert init.wait() == 0
    lines = out.decode().replace("\r", "").splitlines()
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "24 80"
    assert "136,   0" in lines[2]  # /dev/console is the pty slave


def test_exec_into_a_running_container(make_box: MakeBox) -> None:
    box = make_box(["sleep", "30"], hostname="execbox")
    init = box.create()
    init.start()
    r, w = os.pipe()
    try:
        proc = exec_process(
            init.pid,
            {
                **box.spec["process"],
                "args": ["sh", "-c", "hostname; echo $$; id -u; pwd"],
                "cwd": "/tmp",
            },
            stdio=Stdio(0, w, w),
            user="mail",
        )
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        out = f.read().split()
    assert exit_status(os.waitpid(proc.pid, 0)[1]) == 0
    assert out[0] == "execbox" and out[1] != "1" and int(out[1]) < 100
    assert out[2:] == ["8", "/tmp"]
    with pytest.raises(OCIRuntimeError, match='exec: "nosuch": executable file not found'):
        exec_process(init.pid, {**box.spec["process"], "args": ["nosuch"]})


def test_mount_failure_reports_the_mount_not_the_cgroup(make_box: MakeBox) -> None:
    box = make_box(
        ["true"],
        mounts=[
            {
                "destination": "/mnt/x",
                "type": "bind",
                "source": "/nonexistent-dockyard-src",
                "options": ["rbind"],
            }
        ],
    )
    with pytest.raises(OCIRuntimeError) as info:
        box.create()
    assert info.value.message == (
        'error mounting "/nonexistent-dockyard-src" to rootfs at "/mnt/x": '
        "no such file or directory"
    )
    assert not open_cgroup(box.cgroup_path).exists()


def test_exec_with_a_terminal(make_box: MakeBox) -> None:
    box = make_box(["sleep", "30"])
    init = box.create()
    init.start()
    proc = exec_process(init.pid, {**box.spec["process"], "args": ["tty"], "terminal": True})
    assert proc.pty_master is not None
    out = b""
    while select.select([proc.pty_master], [], [], 10)[0]:
        try:
            data = os.read(proc.pty_master, 1024)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(proc.pty_master)
    assert exit_status(os.waitpid(proc.pid, 0)[1]) == 0
    assert out.decode().strip() == "/dev/pts/0"  # the init has no tty: the exec gets pts 0


def test_oom_score_adj_domainname_and_sysctl(make_box: MakeBox) -> None:
    box = make_box(
        [
            "sh",
            "-c",
            "cat /proc/self/oom_score_adj; dnsdomainname; "
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname",
        ],
        oom_score_adj=500,
        domainname="example.test",
        hostname="h",
        sysctl={"net.ipv4.ip_forward": "1"},
    )
    code, out, _ = box.run()
    assert code == 0
    lines = out.split()
    assert lines[0] == "500" and lines[-2:] == ["1", "example.test"]


def test_namespaces_given_by_path_are_joined(make_box: MakeBox) -> None:
    first = make_box(["sleep", "30"], hostname="shared-uts")
    a = first.create()
    a.start()
    second = make_box(["sh", "-c", "hostname; readlink /proc/self/ns/net"],
                      namespaces={"mount": None, "pid": None, "ipc": None,
                                  "uts": f"/proc/{a.pid}/ns/uts",
                                  "network": f"/proc/{a.pid}/ns/net"})
    code, out, _ = second.run()
    assert code == 0
    hostname, netns = out.split()
    assert hostname == "shared-uts"
    assert netns == os.readlink(f"/proc/{a.pid}/ns/net")


def test_a_spare_init_becomes_the_container(make_box: MakeBox) -> None:
    """A SpareInit made before its container was known (fresh namespaces, lo up) is given
    the plan instead of a fork: the same container comes out, with the spare's pid."""
    from dockyard.runtime.container import SpareInit

    box = make_box(["sh", "-c", "hostname; echo $$; ip link show lo"], hostname="spare1")
    spare = SpareInit()
    try:
        code, out, _ = box.run(spare=spare)
    finally:
        spare.discard()  # a no-op once it was taken
    assert box.inits[-1].pid == spare.pid and code == 0
    lines = out.splitlines()
    assert lines[:2] == ["spare1", "1"] and "UP" in lines[2].split("<")[1]


def test_a_spare_init_that_does_not_fit_is_discarded(make_box: MakeBox) -> None:
    """A spec that keeps the host's network (docker's --network host) cannot use a spare
    init, which has a network namespace of its own: it is killed and reaped, and the init
    is forked as usual."""
    from dockyard.runtime.container import SpareInit

    box = make_box(["sh", "-c", "readlink /proc/self/ns/net"])
    box.spec["linux"]["namespaces"] = [n for n in box.spec["linux"]["namespaces"]
                                       if n["type"] != "network"]
    spare = SpareInit()
    code, out, _ = box.run(spare=spare)
    assert box.inits[-1].pid != spare.pid and code == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(spare.pid, os.WNOHANG)  # reaped already
    assert out.strip() == os.readlink("/proc/self/ns/net")  # the host's (the test's) netns
