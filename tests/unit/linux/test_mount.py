"""dockyard.linux.mount: OCI option parsing (pure)."""

from __future__ import annotations

from dockyard.linux.mount import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_SLAVE,
    MS_STRICTATIME,
    parse_options,
    statvfs_to_ms,
)


def test_flags_data_and_propagation_are_split() -> None:
    mo = parse_options(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
    assert mo.flags == MS_NOSUID | MS_NOEXEC
    assert mo.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert mo.propagation == 0


def test_later_words_override_earlier_ones() -> None:
    assert parse_options(["ro", "rw"]).flags & MS_RDONLY == 0
    assert parse_options(["rw", "ro"]).flags & MS_RDONLY
    assert parse_options(["nodev", "dev"]).flags & MS_NODEV == 0


def test_bind_and_rbind() -> None:
    assert parse_options(["bind"]).flags == MS_BIND
    rb = parse_options(["rbind", "ro", "rprivate"])
    assert rb.bind and rb.flags == MS_BIND | MS_REC | MS_RDONLY
    assert rb.propagation == MS_PRIVATE | MS_REC


def test_propagation_words() -> None:
    assert parse_options(["slave"]).propagation == MS_SLAVE
    assert parse_options(["rslave"]).propagation == MS_SLAVE | MS_REC
    assert parse_options(["strictatime"]).flags == MS_STRICTATIME


def test_ignored_words_do_not_reach_data() -> None:
    assert parse_options(["tmpcopyup", "size=1m"]).data == "size=1m"


def test_statvfs_flags_map_to_ms() -> None:
    # ST_RDONLY|ST_NOSUID|ST_NODEV|ST_NOEXEC|ST_RELATIME
    assert (
        statvfs_to_ms(1 | 2 | 4 | 8 | 4096)
        == MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME
    )
