"""The container model: docker's config merge, ps status text, signals, the state machine."""

from __future__ import annotations

import pytest

from dockyard.engine.model import (
    Container,
    Status,
    human_duration,
    merge_config,
    parse_signal,
    status_text,
)
from dockyard.engine.spec import container_env
from dockyard.errors import InvalidArgument
from dockyard.util.timefmt import parse_rfc3339

IMAGE = {
    "Env": ["PATH=/bin", "A=image"],
    "Cmd": ["sh"],
    "WorkingDir": "/w",
    "Labels": {"x": "1"},
    "Entrypoint": None,
}


def test_merge_keeps_image_defaults_and_user_overrides() -> None:
    cfg = merge_config({"Env": ["A=user", "B=2"], "Cmd": None, "Labels": {"y": "2"}}, IMAGE)
    assert cfg["Env"] == ["PATH=/bin", "A=user", "B=2"]
    assert cfg["Cmd"] == ["sh"]
    assert cfg["WorkingDir"] == "/w"
    assert cfg["Labels"] == {"x": "1", "y": "2"}


def test_user_entrypoint_drops_image_cmd() -> None:
    img = dict(IMAGE, Entrypoint=["/entry"], Cmd=["a"])
    assert merge_config({"Entrypoint": ["/mine"]}, img)["Cmd"] is None
    cfg = merge_config({}, img)
    assert cfg["Entrypoint"] == ["/entry"] and cfg["Cmd"] == ["a"]
    # --entrypoint "" resets the image's entrypoint
    cfg = merge_config({"Entrypoint": [""], "Cmd": ["echo", "x"]}, img)
    assert not cfg["Entrypoint"] and cfg["Cmd"] == ["echo", "x"]


def test_container_env_order() -> None:
    env = container_env({"Hostname": "h1", "Tty": True, "Env": ["PATH=/x", "K=v"]})
    assert env == ["PATH=/x", "HOSTNAME=h1", "TERM=xterm", "K=v"]


@pytest.mark.parametrize("sig,n", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigterm", 15), (2, 2)])
def test_parse_signal(sig: str | int, n: int) -> None:
    assert parse_signal(sig) == n


@pytest.mark.parametrize("sig", ["NOPE", "0", "99", "SIGFOO"])
def test_parse_signal_rejects(sig: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid signal"):
        parse_signal(sig)


@pytest.mark.parametrize(
    "secs,text",
    [
        (0.2, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (7200, "2 hours"),
        (3 * 86400, "3 days"),
    ],
)
def test_human_duration(secs: float, text: str) -> None:
    assert human_duration(secs) == text


def test_status_text() -> None:
    now = parse_rfc3339("2026-11-28T05:00:00Z")
    assert status_text({"Status": "created"}, now) == "Created"
    assert (
        status_text({"Status": "running", "StartedAt": "2026-11-28T04:58:00Z"}, now)
        == "Up 2 minutes"
    )
    assert (
        status_text({"Status": "exited", "ExitCode": 3, "FinishedAt": "2026-11-28T04:59:57Z"}, now)
        == "Exited (3) 3 seconds ago"
    )


def test_state_machine_and_docs() -> None:
    c = Container(
        id="a" * 64,
        name="/n",
        created="2026-11-28T04:00:00Z",
        image_id="sha256:" + "b" * 64,
        config={"Cmd": ["sh", "-c", "echo hi"], "Image": "busybox"},
        host_config={},
    )
    assert c.status is Status.CREATED and c.status.can_start() and c.status.can_remove()
    c.set_running(42, "2026-11-28T04:00:01Z")
    assert c.status.is_running() and not c.status.can_remove()
    c.set_exited(137, "2026-11-28T04:00:02Z")
    assert c.state["ExitCode"] == 137 and c.status.can_start()
    assert c.command_text() == "sh -c 'echo hi'"
    back = Container.from_doc(c.to_doc())
    assert back.to_doc() == c.to_doc()
    doc = c.inspect()
    assert doc["Path"] == "sh" and doc["Args"] == ["-c", "echo hi"] and doc["Name"] == "/n"
    s = c.summary("busybox", parse_rfc3339("2026-11-28T04:00:05Z"))
    assert s["Names"] == ["/n"] and s["Status"] == "Exited (137) 3 seconds ago"
