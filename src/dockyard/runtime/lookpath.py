"""Resolve ``args[0]`` in the container's PATH with Go's ``exec.LookPath`` semantics, so
errors read as runc's and the docker CLI maps them to exit codes 127 and 126:

* ``exec: "nosuch": executable file not found in $PATH``
* ``exec: "/nosuch": stat /nosuch: no such file or directory``
* ``exec: "/etc/passwd": permission denied`` (not a regular executable file)
"""

from __future__ import annotations

import os
import stat as stat_mod

from dockyard.errors import OCIRuntimeError
from dockyard.linux.syscalls import FileSyscalls

__all__ = ["lookpath", "path_of_env"]


def path_of_env(env: list[str] | tuple[str, ...]) -> str:
    """The value of the last ``PATH=`` entry of ``env``, or ``""``."""
    value = ""
    for item in env:
        if item.startswith("PATH="):
            value = item[5:]
    return value


def _check_executable(sc: FileSyscalls, path: str) -> str | None:
    """None if ``path`` is an executable regular file, else the error text."""
    st = sc.stat(path)
    if st is None:
        return f"stat {path}: no such file or directory"
    if stat_mod.S_ISDIR(st.st_mode) or not st.st_mode & 0o111 or not sc.access(path, os.X_OK):
        return "permission denied"
    return None


def lookpath(sc: FileSyscalls, name: str, path_env: str, cwd: str = "/") -> str:
    """The absolute path to execute for ``name``; raises OCIRuntimeError (runc's words).

    A name with a slash is used as is (relative to ``cwd``); otherwise each PATH entry
    is tried in order and the first executable regular file wins."""
    if "/" in name:
        full = name if name.startswith("/") else os.path.normpath(os.path.join(cwd, name))
        err = _check_executable(sc, full)
        if err is not None:
            raise OCIRuntimeError(f'exec: "{name}": {err}')
        return full
    for d in path_env.split(":"):
        d = d or "."
        full = os.path.join(d if d.startswith("/") else os.path.join(cwd, d), name)
        err = _check_executable(sc, full)
        if err is None:
            return full
    raise OCIRuntimeError(f'exec: "{name}": executable file not found in $PATH')
