"""Status state machine and the state directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from dockyard.runtime.state import ContainerState, StateStore, Status, check_transition, validate_id


def test_predicates() -> None:
    assert [s.value for s in Status if s.can_start()] == ["created"]
    assert {s.value for s in Status if s.can_kill()} == {"created", "running", "paused"}
    assert {s.value for s in Status if s.can_delete()} == {"created", "stopped"}
    assert {s.value for s in Status if s.can_exec()} == {"created", "running"}


def test_transition_errors_name_both_states() -> None:
    with pytest.raises(Conflict) as info:
        check_transition("c1", Status.RUNNING, "start")
    assert "running" in info.value.message and "created" in info.value.message
    with pytest.raises(Conflict, match="^container not running$"):
        check_transition("c1", Status.STOPPED, "kill")
    with pytest.raises(Conflict, match="cannot delete container c1 that is not stopped: running"):
        check_transition("c1", Status.RUNNING, "delete")
    check_transition("c1", Status.CREATED, "start")


def test_ids() -> None:
    assert validate_id("abc-1_2.x+y") == "abc-1_2.x+y"
    for bad in ("", "..", "a/b", "a b"):
        with pytest.raises(InvalidArgument):
            validate_id(bad)


def _proc(tmp_path: Path, pid: int, state: str = "S", start: int = 99) -> str:
    d = tmp_path / "proc" / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    fields = [state] + ["0"] * 40
    fields[19] = str(start)
    (d / "stat").write_text(f"{pid} (sh) " + " ".join(fields))
    return str(tmp_path / "proc")


def test_save_load_and_derived_status(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "root", proc_root=_proc(tmp_path, 42))
    store.reserve("c1")
    with pytest.raises(AlreadyExists, match="container with id exists: c1"):
        store.reserve("c1")
    st = ContainerState("c1", 42, 99, "/b", "/b/rootfs", "2026-01-01T00:00:00Z", "/dockyard/c1")
    store.save(st)
    assert store.load("c1") == st
    assert store.list() == ["c1"]
    os.mkfifo(store.fifo("c1"))
    assert store.status(st) is Status.CREATED
    os.unlink(store.fifo("c1"))
    assert store.status(st) is Status.RUNNING
    assert store.status(st, frozen=True) is Status.PAUSED
    _proc(tmp_path, 42, start=100)  # pid reused by another process
    assert store.status(st) is Status.STOPPED
    _proc(tmp_path, 42, state="Z", start=99)
    assert store.status(st) is Status.STOPPED
    assert st.oci_state(Status.STOPPED)["pid"] == 0
    store.remove("c1")
    with pytest.raises(NotFound, match='container "c1" does not exist'):
        store.load("c1")
