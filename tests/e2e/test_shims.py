"""Both shims, chosen with ``dockyardd --shim``: the native one (the default when built)
and the Python fallback run the same containers the same way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, _new_daemon


@pytest.mark.parametrize("choice,exe", [("native", "dockyard-shim"), ("python", "python")])
def test_shim_choice(choice: str, exe: str) -> None:
    d: Daemon = _new_daemon()
    d.extra_args = ["--shim", choice]
    try:
        d.start()
        d.import_busybox()
        cid = d.dockyard("run", "-d", "busybox", "sh", "-c", "echo up; exec sleep 100",
                         check=True).stdout.strip()
        status = json.loads((Path(d.exec_root) / "shim" / cid / "status.json").read_text())
        shim_exe = os.path.basename(os.readlink(f"/proc/{status['shim_pid']}/exe"))
        assert shim_exe.startswith(exe), shim_exe
        assert d.dockyard("exec", cid, "echo", "hi").stdout == "hi\n"
        assert d.dockyard("stop", "-t", "1", cid).returncode == 0
        assert d.dockyard("logs", cid).stdout == "up\n"
        assert d.dockyard("inspect", "-f", "{{.State.ExitCode}}", cid).stdout == "137\n"
    finally:
        d.cleanup()
        shutil.rmtree(d.base, ignore_errors=True)

