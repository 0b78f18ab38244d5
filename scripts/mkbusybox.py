#!/usr/bin/env python3
"""Build a busybox root filesystem tar without internet, from Debian's packages.

/bin/busybox (busybox-static, every applet linked under its usual path), /bin/bash
(bash-static), /etc/passwd, /etc/group, /tmp (1777) and the usual empty directories.
The tar is deterministic (fixed mtimes, sorted entries): the same packages give the same
bytes, so the image id is stable across runs. Tests and the demo import it as busybox:latest.

    scripts/mkbusybox.py -o build/busybox-rootfs.tar
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"
BASH = "/bin/bash-static"
MTIME = 1_700_000_000

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:mail
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""
DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755,
    "var/www": 0o755,
}


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def build(out: str) -> None:
    for path, pkg in ((BUSYBOX, "busybox-static"), (BASH, "bash-static")):
        if not os.path.exists(path):
            sys.exit(f"mkbusybox: {path} is missing: apt-get install {pkg}")
    applets = subprocess.run(
        [BUSYBOX, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    for d, mode in DIRS.items():
        entries[d] = (_info(d, tarfile.DIRTYPE, mode), None)
    for src, dst in ((BUSYBOX, "bin/busybox"), (BASH, "bin/bash")):
        with open(src, "rb") as f:
            data = f.read()
        ti = _info(dst, tarfile.REGTYPE, 0o755)
        ti.size = len(data)
        entries[dst] = (ti, data)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP),
                       ("etc/hostname", "busybox\n"), ("etc/shells", "/bin/sh\n/bin/bash\n")):
        ti = _info(name, tarfile.REGTYPE, 0o644)
        ti.size = len(text.encode())
        entries[name] = (ti, text.encode())
    for applet in applets:
        rel = applet.lstrip("/")
        if rel in entries or rel == "bin/busybox":
            continue
        parent = os.path.dirname(rel)
        if not parent:  # 'linuxrc': an init for initramfs, not wanted in an image
            continue
        if parent not in entries:
            entries[parent] = (_info(parent, tarfile.DIRTYPE, 0o755), None)
        ti = _info(rel, tarfile.SYMTYPE, 0o777)
        ti.linkname = "/bin/busybox"
        entries[rel] = (ti, None)
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            ti, data = entries[name]
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    os.replace(tmp, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    build(ap.parse_args().output)


if __name__ == "__main__":
    main()
