"""dockyard.linux.caps: names and masks (pure) and reading our own capabilities."""

from __future__ import annotations

import pytest

from dockyard.linux import caps


def test_capability_numbers_follow_the_kernel() -> None:
    assert caps.CAP_NUMBERS["CAP_CHOWN"] == 0
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NUMBERS["CAP_AUDIT_WRITE"] == 29
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40


def test_mask_round_trip() -> None:
    names = ["CAP_CHOWN", "CAP_KILL", "CAP_SETFCAP"]
    mask = caps.mask_of(names)
    assert mask == (1 << 0) | (1 << 5) | (1 << 31)
    assert caps.names_of(mask) == names


def test_docker_default_set_has_docker_mask() -> None:
    from dockyard.oci.runtime_spec import DEFAULT_CAPABILITIES

    # the CapEff line of `docker run busybox grep Cap /proc/self/status`
    assert caps.mask_of(DEFAULT_CAPABILITIES) == 0xA80425FB


def test_unknown_name_raises_keyerror() -> None:
    with pytest.raises(KeyError):
        caps.mask_of(["CAP_NOPE"])


def test_capget_of_self_is_consistent() -> None:
    state = caps.capget()
    assert state.effective & ~state.permitted == 0
    assert caps.last_cap() >= 36
