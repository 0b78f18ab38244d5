"""docker's ``--user`` resolution against a container's ``/etc/passwd`` and ``/etc/group``.

Pure functions over file contents (the init reads the files after pivot_root). The rules
are docker's (runc's ``GetExecUser``):

* ``user[:group]``; each part is a name or a number. Empty user = uid 0.
* The user is looked up by uid (numeric) or name. Found: uid, gid and home come from the
  entry. Not found: a number is used as is (gid 0, home ``/``); a name is an error,
  ``unable to find user NAME: no matching entries in passwd file``.
* With an explicit group: the gid comes from ``/etc/group`` (by gid or name); an unknown
  number is used as is, an unknown name is an error
  (``unable to find group NAME: no matching entries in group file``), and there are no
  supplementary groups from the file.
* Without a group: the supplementary groups are every group that lists the user's name.
"""

from __future__ import annotations

from typing import NamedTuple

from dockyard.errors import InvalidArgument

__all__ = ["ExecUser", "parse_group", "parse_passwd", "resolve_user"]

_MAX_ID = 2**31 - 1


class ExecUser(NamedTuple):
    uid: int
    gid: int
    sgids: tuple[int, ...]
    home: str
    name: str = ""


class _Passwd(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str


class _Group(NamedTuple):
    name: str
    gid: int
    members: tuple[str, ...]


def _int(s: str) -> int | None:
    return int(s) if s.isdigit() else None


def parse_passwd(text: str) -> list[_Passwd]:
    """Entries of a passwd file; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or not parts[0] or line.startswith("#"):
            continue
        uid, gid = _int(parts[2]), _int(parts[3])
        if uid is None or gid is None:
            continue
        out.append(_Passwd(parts[0], uid, gid, parts[5] if len(parts) > 5 else ""))
    return out


def parse_group(text: str) -> list[_Group]:
    """Entries of a group file; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or line.startswith("#"):
            continue
        gid = _int(parts[2])
        if gid is None:
            continue
        members = tuple(m for m in (parts[3].split(",") if len(parts) > 3 else []) if m)
        out.append(_Group(parts[0], gid, members))
    return out


def resolve_user(
    spec: str, passwd: str | None, group: str | None, default_uid: int = 0, default_gid: int = 0
) -> ExecUser:
    """Resolve docker's ``--user`` string ``spec`` (see the module docstring).

    ``passwd``/``group`` are the file contents, None when the file is missing (then only
    numeric parts resolve). Raises InvalidArgument with runc's wording."""
    user_arg, _, group_arg = spec.partition(":")
    uid_num, gid_num = _int(user_arg), _int(group_arg)
    entries = parse_passwd(passwd or "")
    if user_arg == "":
        match = [e for e in entries if e.uid == default_uid]
    elif uid_num is not None:
        match = [e for e in entries if e.uid == uid_num]
    else:
        match = [e for e in entries if e.name == user_arg]
    uid, gid, home, name = default_uid, default_gid, "/", ""
    if match:
        uid, gid, home, name = match[0].uid, match[0].gid, match[0].home or "/", match[0].name
    elif user_arg:
        if uid_num is None:
            raise InvalidArgument(
                f"unable to find user {user_arg}: no matching entries in passwd file"
            )
        if uid_num > _MAX_ID:
            raise InvalidArgument(f"uids and gids must be in range 0-{_MAX_ID}")
        uid = uid_num
    sgids: tuple[int, ...] = ()
    if group_arg or name:
        groups = parse_group(group or "")
        if group_arg:
            found = [
                g
                for g in groups
                if (g.gid == gid_num if gid_num is not None else g.name == group_arg)
            ]
            if found:
                gid = found[0].gid
            elif gid_num is None:
                raise InvalidArgument(
                    f"unable to find group {group_arg}: no matching entries in group file"
                )
            elif gid_num > _MAX_ID:
                raise InvalidArgument(f"uids and gids must be in range 0-{_MAX_ID}")
            else:
                gid = gid_num
        else:
            sgids = tuple(g.gid for g in groups if name in g.members)
    return ExecUser(uid, gid, sgids, home, name)
