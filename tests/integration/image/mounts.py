"""Mount a snapshotter's ``list[Mount]`` for a test, with ``/bin/mount`` (root only).

dockyard's own mount wrappers (``dockyard.linux``) are being written separately; until
then the tests perform the mounts they check with mount(8) and always unmount.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dockyard.oci.mount import Mount


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def _mount_one(m: Mount, target: Path) -> None:
    if m.type == "bind":
        _run("mount", "--rbind" if "rbind" in m.options else "--bind", m.source, str(target))
        if "ro" in m.options:
            _run("mount", "-o", "remount,bind,ro", str(target))
        return
    opts = [o for o in m.options if o not in ("rw",)]
    _run("mount", "-t", m.type, m.source, "-o", ",".join(opts), str(target))


def umount(target: Path) -> None:
    r = subprocess.run(["umount", str(target)], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@contextmanager
def mounted(mounts: Sequence[Mount], target: Path) -> Iterator[Path]:
    """Perform ``mounts`` on ``target`` (stacked in order) and undo them on exit."""
    target.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        for m in mounts:
            _mount_one(m, target)
            done += 1
        yield target
    finally:
        for _ in range(done):
            umount(target)
