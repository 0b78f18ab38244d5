"""dockyard.linux.proc and ns helpers that need no privileges."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.linux import ns, proc


def test_start_time_and_state_of_self() -> None:
    assert proc.process_start_time(os.getpid()) is not None
    assert proc.process_state(os.getpid()) in ("R", "S")


def test_missing_pid_is_none(tmp_path: Path) -> None:
    assert proc.process_start_time(12345, proc_root=str(tmp_path)) is None
    assert proc.process_state(12345, proc_root=str(tmp_path)) is None


def test_stat_with_spaces_and_parens_in_comm(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    fields = ["S"] + [str(i) for i in range(4, 60)]
    fields[19] = "424242"  # field 22 = index 19 after the comm
    (tmp_path / "7" / "stat").write_text("7 (a b) (c)) " + " ".join(fields))
    assert proc.process_start_time(7, str(tmp_path)) == 424242
    assert proc.process_state(7, str(tmp_path)) == "S"


def test_rlimit_table_and_ns_paths() -> None:
    assert proc.RLIMITS["RLIMIT_NOFILE"] == 7
    assert ns.ns_path(12, "network") == "/proc/12/ns/net"
    assert ns.NAMESPACES["mount"] == (ns.CLONE_NEWNS, "mnt")
