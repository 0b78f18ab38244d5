"""default_spec is docker's; validate_spec names the bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci.runtime_spec import (
    DEFAULT_CAPABILITIES,
    USER_ANNOTATION,
    default_spec,
    load_spec,
    merge_env,
    spec_namespaces,
    validate_spec,
)


def test_docker_defaults() -> None:
    s = default_spec(["sh"], hostname="abc", terminal=True, cgroups_path="/dockyard/x")
    validate_spec(s)
    p = s["process"]
    assert p["env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME=abc",
        "TERM=xterm",
    ]
    assert p["noNewPrivileges"] is True
    assert (
        p["capabilities"]["bounding"]
        == list(DEFAULT_CAPABILITIES)
        == p["capabilities"]["effective"]
    )
    assert "inheritable" not in p["capabilities"] and len(DEFAULT_CAPABILITIES) == 14
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert s["mounts"][2]["options"] == [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ]
    assert "/proc/kcore" in s["linux"]["maskedPaths"] and "/proc/sys" in s["linux"]["readonlyPaths"]
    assert spec_namespaces(s) == {
        t: None for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")
    }
    assert s["linux"]["cgroupsPath"] == "/dockyard/x"
    assert s["linux"]["resources"]["devices"][0] == {"allow": False, "type": "a", "access": "rwm"}
    assert s["annotations"][USER_ANNOTATION] == ""


def test_user_mounts_and_env() -> None:
    s = default_spec(
        ["sh"],
        user="mail:staff",
        env=["PATH=/bin", "A=1"],
        mounts=[{"destination": "/dev/shm", "type": "bind", "source": "/x", "options": ["rbind"]}],
        namespaces={"mount": None, "network": "/run/netns/n"},
    )
    assert s["annotations"][USER_ANNOTATION] == "mail:staff"
    assert s["process"]["env"] == ["PATH=/bin", "A=1"]
    assert [m for m in s["mounts"] if m["destination"] == "/dev/shm"][0]["type"] == "bind"
    assert s["linux"]["namespaces"] == [
        {"type": "mount"},
        {"type": "network", "path": "/run/netns/n"},
    ]
    assert "org.dockyard.user" not in default_spec(["sh"], user=None).get("annotations", {})


def test_merge_env() -> None:
    assert merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=3", "C=4"]


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda s: s.update(ociVersion="2.0.0"), "ociVersion"),
        (lambda s: s["process"].update(args=[]), "process.args"),
        (lambda s: s["process"].update(cwd="rel"), "process.cwd"),
        (lambda s: s["root"].pop("path"), "root.path"),
        (lambda s: s["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[6].type"),
        (lambda s: s["mounts"].append({"destination": "x"}), "mounts[7].destination"),
        (
            lambda s: s["process"].update(rlimits=[{"type": "NOFILE", "soft": 1, "hard": 1}]),
            "process.rlimits[0].type",
        ),
    ],
)
def test_validate_names_the_field(mutate, field) -> None:  # type: ignore[no-untyped-def]
    s = default_spec(["sh"])
    mutate(s)
    with pytest.raises(InvalidArgument) as info:
        validate_spec(s)
    assert info.value.message.startswith(f"invalid runtime spec: {field}:")


def test_load_spec(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file"):
        load_spec(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(default_spec(["true"])))
    assert load_spec(tmp_path)["process"]["args"] == ["true"]
