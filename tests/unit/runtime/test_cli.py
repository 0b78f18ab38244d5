"""dockyard-runtime verbs that need no kernel: errors, logs, features, state checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.runtime.cli import _parse_signal, main
from dockyard.runtime.state import ContainerState, StateStore


def test_missing_container_logs_runc_wording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.json"
    rc = main(
        [
            "--root",
            str(tmp_path / "r"),
            "--log",
            str(log),
            "--log-format",
            "json",
            "state",
            "nosuch",
        ]
    )
    assert rc == 1
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and line["msg"] == 'container "nosuch" does not exist'
    assert "time" in line
    assert "does not exist" in capsys.readouterr().err


def test_delete_force_of_missing_is_ok(tmp_path: Path) -> None:
    assert main(["--root", str(tmp_path), "delete", "--force", "nosuch"]) == 0


def test_kill_of_stopped_says_not_running(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.reserve("c1")
    store.save(ContainerState("c1", 2**22 + 7, None, "/b", "/b/rootfs", "t"))
    log = tmp_path / "log.json"
    assert (
        main(
            ["--root", str(tmp_path), "--log", str(log), "--log-format", "json", "kill", "c1", "9"]
        )
        == 1
    )
    assert json.loads(log.read_text())["msg"] == "container not running"
    assert main(["--root", str(tmp_path), "start", "c1"]) == 1
    assert main(["--root", str(tmp_path), "delete", "c1"]) == 0
    assert not (tmp_path / "c1").exists()


def test_state_and_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = StateStore(tmp_path)
    store.reserve("c1")
    store.save(
        ContainerState("c1", 2**22 + 7, None, "/b", "/b/rootfs", "t", annotations={"a": "b"})
    )
    assert main(["--root", str(tmp_path), "state", "c1"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state == {
        "ociVersion": "1.2.0",
        "id": "c1",
        "pid": 0,
        "status": "stopped",
        "bundle": "/b",
        "rootfs": "/b/rootfs",
        "created": "t",
        "owner": "",
        "annotations": {"a": "b"},
    }
    assert main(["--root", str(tmp_path), "list", "--format", "json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["c1"]


def test_features(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    f = json.loads(capsys.readouterr().out)
    assert f["ociVersionMax"] == "1.2.0" and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["v1"] and f["linux"]["cgroup"]["v2"]


def test_signals() -> None:
    assert _parse_signal("9") == 9 and _parse_signal("KILL") == 9 and _parse_signal("SIGTERM") == 15
    assert _parse_signal("hup") == 1
