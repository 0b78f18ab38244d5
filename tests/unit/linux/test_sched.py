"""The priority of spares (dockyard.linux.sched), on a child of the test process."""

from __future__ import annotations

import os

from dockyard.linux import sched


def test_lower_restore_and_share_with_a_child() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child that lowers itself, says so, and waits
        code = 1
        try:
            if sched.lower() == base:
                code = 0
            os.write(ready_w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(code)
    try:
        assert os.read(ready_r, 1) == b"x"
        assert os.getpriority(os.PRIO_PROCESS, pid) == sched.LOWEST
        sched.share_with(pid)  # raising needs CAP_SYS_NICE: root has it, others stay at 19
        want = base if os.geteuid() == 0 else sched.LOWEST
        assert os.getpriority(os.PRIO_PROCESS, pid) == want
        sched.restore(base, 2 ** 22 + 12345)  # no such process: ignored
    finally:
        os.write(go_w, b"x")
        _, status = os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0  # lower() returned the nice value before
