"""RecordingSyscalls satisfies the Syscalls Protocol, records in order, touches nothing."""

from __future__ import annotations

import errno
import os

import pytest

from dockyard.linux.fake import RecordingSyscalls
from dockyard.linux.syscalls import LinuxSyscalls, Syscalls


def _protocol_methods() -> set[str]:
    names: set[str] = set()
    for base in Syscalls.__mro__:
        names |= {n for n, v in vars(base).items() if callable(v) and not n.startswith("_")}
    return names


@pytest.mark.parametrize("impl", [RecordingSyscalls, LinuxSyscalls])
def test_implements_every_protocol_method(impl: type) -> None:
    missing = {n for n in _protocol_methods() if not callable(getattr(impl, n, None))}
    assert not missing


def test_records_calls_in_order_and_updates_its_tree() -> None:
    sc: Syscalls = RecordingSyscalls(dirs={"/r"})
    sc.mount("proc", "/r/proc", "proc", 14, None)
    assert sc.stat("/r/proc") is None
    sc.mkdir("/r/proc", 0o755)
    assert sc.stat("/r/proc") is not None
    sc.symlink("pts/ptmx", "/r/dev/ptmx")
    assert sc.readlink("/r/dev/ptmx") == "pts/ptmx"
    assert isinstance(sc, RecordingSyscalls)
    assert sc.names() == ["mount", "mkdir", "symlink"]
    assert sc.args("mount") == [("proc", "/r/proc", "proc", 14, None)]
    assert not os.path.exists("/r/proc")


def test_fail_makes_a_method_raise() -> None:
    sc = RecordingSyscalls(fail={"pivot_root": errno.EINVAL})
    with pytest.raises(OSError) as info:
        sc.pivot_root(".", ".")
    assert info.value.errno == errno.EINVAL
    assert sc.names() == ["pivot_root"]
