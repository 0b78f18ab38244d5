"""docker --user resolution against /etc/passwd and /etc/group contents (pure)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime.user import ExecUser, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
mail:x:8:12:mail:/var/spool/mail:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
wheel:x:10:root
mail:x:12:mail
staff:x:50:
users:x:100:mail,nobody
"""


def test_empty_user_is_root_with_its_groups() -> None:
    assert resolve_user("", PASSWD, GROUP) == ExecUser(0, 0, (10,), "/root", "root")


def test_name_takes_uid_gid_home_and_member_groups() -> None:
    assert resolve_user("mail", PASSWD, GROUP) == ExecUser(
        8, 12, (12, 100), "/var/spool/mail", "mail"
    )


def test_uid_of_a_known_user_is_that_user() -> None:
    assert resolve_user("65534", PASSWD, GROUP).sgids == (100,)


def test_unknown_numeric_uid_is_used_as_is() -> None:
    assert resolve_user("1234", PASSWD, GROUP) == ExecUser(1234, 0, (), "/", "")


def test_explicit_group_by_name_or_number_drops_file_groups() -> None:
    assert resolve_user("mail:staff", PASSWD, GROUP) == ExecUser(
        8, 50, (), "/var/spool/mail", "mail"
    )
    assert resolve_user("1000:50", PASSWD, GROUP) == ExecUser(1000, 50, (), "/", "")
    assert resolve_user("mail:777", PASSWD, GROUP).gid == 777


def test_unknown_names_fail_with_runc_wording() -> None:
    with pytest.raises(
        InvalidArgument, match="^unable to find user nosuch: no matching entries in passwd file$"
    ):
        resolve_user("nosuch", PASSWD, GROUP)
    with pytest.raises(
        InvalidArgument, match="^unable to find group nogroup: no matching entries in group file$"
    ):
        resolve_user("mail:nogroup", PASSWD, GROUP)


def test_missing_files_resolve_only_numbers() -> None:
    assert resolve_user("5:6", None, None) == ExecUser(5, 6, (), "/", "")
    with pytest.raises(InvalidArgument):
        resolve_user("mail", None, None)
