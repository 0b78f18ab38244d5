"""What the local content store adds to the contract: its layout, read-only blobs and the
crash story (a half-written ingest is invisible and cleaned when the store opens)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from dockyard.content import LocalContentStore, write_blob


def test_layout_and_read_only_blobs(tmp_path: Path) -> None:
    s = LocalContentStore(tmp_path)
    _, digest = write_blob(s, "r", b"data")
    p = tmp_path / "blobs" / "sha256" / hashlib.sha256(b"data").hexdigest()
    assert p.read_bytes() == b"data"
    assert stat.S_IMODE(p.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "ingest") == []


def test_half_written_ingest_is_invisible_and_cleaned(tmp_path: Path) -> None:
    s = LocalContentStore(tmp_path)
    # what a process killed in the middle of a write leaves behind
    d = tmp_path / "ingest" / "0123456789abcdef0123456789abcdef"
    d.mkdir()
    (d / "data").write_bytes(b"half of a blob")
    (d / "ref").write_text("crashing")
    assert list(s.walk()) == []
    s2 = LocalContentStore(tmp_path)      # the daemon starts again
    assert list(s2.walk()) == []
    assert os.listdir(tmp_path / "ingest") == []


def test_clean_ingests_spares_live_writers(tmp_path: Path) -> None:
    s = LocalContentStore(tmp_path)
    (tmp_path / "ingest" / "stale").mkdir()
    w = s.writer("live")
    w.write(b"x")
    assert s.clean_ingests() == 1
    info = w.commit()
    assert s.info(info.digest).size == 1


def test_stray_files_in_blob_dir_are_ignored(tmp_path: Path) -> None:
    s = LocalContentStore(tmp_path)
    (tmp_path / "blobs" / "sha256" / "not-a-digest").write_text("x")
    assert list(s.walk()) == []
