"""The dockyard-registry command line (the server itself runs in tests/integration/registry)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dockyard.registry import __main__ as cli
from dockyard.registry.auth import BasicAuth, NoAuth, TokenAuth
from dockyard.registry.storage.filesystem import FilesystemDriver

from .util import Harness, push_blob, push_image


def _args(*argv: str) -> argparse.Namespace:
    return cli._serve_parser("dockyard-registry").parse_args(list(argv))


def test_serve_options(tmp_path: Path) -> None:
    a = _args()
    assert a.listen == ("127.0.0.1", 5000) and a.root == "/var/lib/dockyard-registry"
    assert _args("--listen", "127.0.0.1:0").listen == ("127.0.0.1", 0)
    with pytest.raises(SystemExit):
        _args("--listen", "nope")
    pw = tmp_path / "pw"
    pw.write_text("")
    assert isinstance(cli._build_auth(_args()), NoAuth)
    assert isinstance(cli._build_auth(_args("--htpasswd", str(pw))), BasicAuth)
    tok = cli._build_auth(_args("--htpasswd", str(pw), "--auth", "token", "--root",
                                str(tmp_path / "root")))
    assert isinstance(tok, TokenAuth)
    assert (tmp_path / "root" / "token.key").exists()
    with pytest.raises(SystemExit, match="needs --htpasswd"):
        cli._build_auth(_args("--auth", "basic"))
    with pytest.raises(SystemExit, match="needs --htpasswd"):
        cli._build_auth(_args("--auth", "token"))


async def test_garbage_collect_and_verify_commands(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    reg = Harness(FilesystemDriver(root))
    async with reg.client() as c:
        await push_image(c, "a", "1")
        await push_blob(c, "a", b"stray")
    assert cli.main(["verify", "--root", str(root)]) == 0
    assert cli.main(["garbage-collect", "--root", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 1 blobs" in out
    assert cli.main(["garbage-collect", "--root", str(root)]) == 0
    assert "deleted 1 blobs" in capsys.readouterr().out
    assert cli.main(["garbage-collect", "--root", str(root)]) == 0
    assert "deleted 0 blobs" in capsys.readouterr().out
    # damage shows in verify's exit code
    data = next(p for p in (root / "blobs").rglob("data") if p.stat().st_size > 20)
    data.chmod(0o644)
    data.write_bytes(b"x")
    assert cli.main(["verify", "--root", str(root)]) == 1


def test_layout_version(tmp_path: Path) -> None:
    from dockyard.registry.storage.repo import LayoutVersionError, ensure_layout

    driver = FilesystemDriver(tmp_path / "root")
    ensure_layout(driver)
    assert (tmp_path / "root" / "layout-version").read_text() == "1\n"
    ensure_layout(driver)  # same version: fine
    (tmp_path / "root" / "layout-version").write_text("2\n")
    with pytest.raises(LayoutVersionError):
        ensure_layout(driver)
    with pytest.raises(SystemExit, match="layout version 2"):
        cli.main(["verify", "--root", str(tmp_path / "root")])
