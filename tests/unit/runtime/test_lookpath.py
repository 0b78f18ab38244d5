"""args[0] lookup with Go's LookPath semantics and runc's error texts."""

from __future__ import annotations

import stat

import pytest

from dockyard.errors import OCIRuntimeError
from dockyard.linux.fake import RecordingSyscalls
from dockyard.runtime.lookpath import lookpath, path_of_env

EXE = stat.S_IFREG | 0o755
DATA = stat.S_IFREG | 0o644


def _sc() -> RecordingSyscalls:
    return RecordingSyscalls(
        dirs={"/bin", "/usr/bin", "/etc"},
        files={"/bin/sh": b"", "/usr/bin/env": b"", "/etc/passwd": b"", "/usr/bin/sh": b""},
        modes={"/bin/sh": EXE, "/usr/bin/env": EXE, "/etc/passwd": DATA, "/usr/bin/sh": EXE},
    )


def test_first_match_in_path_wins() -> None:
    assert lookpath(_sc(), "sh", "/usr/bin:/bin") == "/usr/bin/sh"
    assert lookpath(_sc(), "env", "/bin:/usr/bin") == "/usr/bin/env"


def test_missing_command() -> None:
    with pytest.raises(OCIRuntimeError) as info:
        lookpath(_sc(), "nosuch", "/bin:/usr/bin")
    assert info.value.message == 'exec: "nosuch": executable file not found in $PATH'


def test_not_executable_is_permission_denied() -> None:
    with pytest.raises(OCIRuntimeError) as info:
        lookpath(_sc(), "/etc/passwd", "/bin")
    assert info.value.message == 'exec: "/etc/passwd": permission denied'
    with pytest.raises(OCIRuntimeError, match="permission denied"):
        lookpath(_sc(), "/etc", "/bin")


def test_missing_absolute_path_names_stat() -> None:
    with pytest.raises(OCIRuntimeError) as info:
        lookpath(_sc(), "/nosuch", "/bin")
    assert info.value.message == 'exec: "/nosuch": stat /nosuch: no such file or directory'


def test_relative_path_with_slash_is_relative_to_cwd() -> None:
    assert lookpath(_sc(), "./sh", "", cwd="/bin") == "/bin/sh"


def test_path_of_env_takes_the_last_path() -> None:
    assert path_of_env(["A=1", "PATH=/x", "PATH=/y:/z"]) == "/y:/z"
    assert path_of_env([]) == ""
