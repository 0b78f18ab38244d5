# ruff: noqa: E501 - expected outputs are docker's own, verbatim
"""Renderers: go-units, truncation, tabwriter, the ps/images/history tables, JSON re-indent."""

from __future__ import annotations

import io

import pytest

from dockyard.cli.commands.images import DEFAULT as IMAGES_TABLE
from dockyard.cli.commands.ps import DEFAULT_TABLE as PS_TABLE
from dockyard.cli.commands.ps import container_format
from dockyard.cli.jsonfmt import compact, indent
from dockyard.cli.render import (
    ContainerContext,
    Formatter,
    HistoryContext,
    ImageContext,
    TabWriter,
    bytes_size,
    displayable_ports,
    ellipsis,
    go_quote,
    human_duration,
    human_size,
    human_size_precision,
    image_rows,
    short_id,
)


@pytest.mark.parametrize("secs, want", [
    (0, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"), (2, "2 seconds"),
    (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (3599, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
    (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
    (60 * 86400, "2 months"), (730 * 86400, "2 years"),
])
def test_human_duration(secs: float, want: str) -> None:
    assert human_duration(secs) == want


@pytest.mark.parametrize("size, want3, want4", [
    (0, "0B", "0B"), (999, "999B", "999B"), (1000, "1kB", "1kB"), (1234, "1.23kB", "1.234kB"),
    (4326768, "4.33MB", "4.327MB"), (214_000_000, "214MB", "214MB"),
    (999_999, "1e+03kB", "1000kB"), (1_500_000_000, "1.5GB", "1.5GB"),
])
def test_human_size(size: int, want3: str, want4: str) -> None:
    assert human_size_precision(size, 3) == want3
    assert human_size(size) == want4


def test_bytes_size() -> None:
    assert bytes_size(8203476992) == "7.64GiB"
    assert bytes_size(1024) == "1KiB"


@pytest.mark.parametrize("s, n, want", [
    ("/bin/sh -c 'echo Successfully'", 20, "/bin/sh -c 'echo Su…"),
    ("short", 20, "short"),
    ("exactly-twenty-chars", 20, "exactly-twenty-chars"),
    ("日本語のテキストです", 9, "日本語の…"),
    ("abc", 1, "a"),
    ("abc", 0, ""),
])
def test_ellipsis(s: str, n: int, want: str) -> None:
    assert ellipsis(s, n) == want


@pytest.mark.parametrize("s, want", [
    ("echo hi", '"echo hi"'), ('sh -c "x"', '"sh -c \\"x\\""'), ("a\tb\n", '"a\\tb\\n"'),
    ("\x01", '"\\x01"'), ("é…", '"é…"'), ("back\\slash", '"back\\\\slash"'),
])
def test_go_quote(s: str, want: str) -> None:
    assert go_quote(s) == want


def test_short_id() -> None:
    assert short_id("sha256:" + "ab" * 32) == "abababababab"
    assert short_id("0123456789abcdef") == "0123456789ab"


def test_tabwriter_columns_and_minwidth() -> None:
    out = io.StringIO()
    tw = TabWriter(out, 10, 1, 3)
    tw.write("A\tLONGER HEADER\tC\n1\t2\t3\n")
    tw.flush()
    assert out.getvalue() == "A         LONGER HEADER   C\n1         2               3\n"


def test_tabwriter_single_cell_lines_flush_blocks() -> None:
    out = io.StringIO()
    tw = TabWriter(out, 20, 1, 1)
    tw.write("Client:\n Version:\t1\n API version:\t1.47\n\nServer:\n Engine:\n  Version:\t2\n")
    tw.flush()
    assert out.getvalue() == ("Client:\n Version:           1\n API version:       1.47\n\n"
                              "Server:\n Engine:\n  Version:          2\n")


@pytest.mark.parametrize("ports, want", [
    ([], ""),
    ([{"PrivatePort": 80, "Type": "tcp"}], "80/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
     "0.0.0.0:8080->80/tcp"),
    ([{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 81, "Type": "tcp"},
      {"PrivatePort": 443, "Type": "tcp"}], "80-81/tcp, 443/tcp"),
    ([{"IP": "::", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"}], "[::]:80->80/tcp"),
])
def test_displayable_ports(ports: list[dict[str, object]], want: str) -> None:
    assert displayable_ports(ports) == want


# A subset of shared/traces/ps-a.txt: the daemon's answer and what docker 28.2.2 printed.
NOW = 1795839814.5
PS_JSON = [
    {"Id": "2801b83e4d997ab5a126c802eb182885e75a324e93382606f160396df0118464",
     "Names": ["/tender_bhabha"], "Image": "alpine:3.10",
     "ImageID": "sha256:b40553062f399b24c816cd696fa48df53c926693392c49789ec9b0cf268c0fc4",
     "Command": "true", "Created": 1795839814, "Ports": [], "Labels": {}, "State": "created",
     "Status": "Created"},
    {"Id": "4cbe2660410d928a3876abeeffce6f9ecafaffb9d85a4944d2350746e6ee6d05",
     "Names": ["/fervent_murdock"],
     "Image": "sha256:9aec847ee29dd017dcaee2df46981eae2a5407ba0898122977002a7639db3922",
     "ImageID": "sha256:9aec847ee29dd017dcaee2df46981eae2a5407ba0898122977002a7639db3922",
     "Command": "/bin/sh -c 'echo Successfully built abcd1234'", "Created": 1795839749,
     "Ports": [], "Labels": {}, "State": "exited", "Status": "Exited (0) About a minute ago"},
    {"Id": "8c2fde314bf6aaaa", "Names": ["/nifty_morse"], "Image": "b40553062f39",
     "ImageID": "sha256:b40553062f399b24c816cd696fa48df53c926693392c49789ec9b0cf268c0fc4",
     "Command": "/bin/sh -c 'sh -c \"echo\"'", "Created": 1795839554, "Ports": [],
     "State": "exited", "Status": "Exited (0) 4 minutes ago"},
    {"Id": "ccf00ae431d3bbbb", "Names": ["/silly_bartik"], "Image": "",
     "ImageID": "", "Command": "/bin/sh -c '#(nop) CMD'", "Created": 1795839554,
     "Ports": [], "State": "created", "Status": "Created"},
]
PS_OUT = """\
CONTAINER ID   IMAGE          COMMAND                   CREATED                  STATUS                          PORTS     NAMES
2801b83e4d99   alpine:3.10    "true"                    Less than a second ago   Created                                   tender_bhabha
4cbe2660410d   9aec847ee29d   "/bin/sh -c 'echo Su…"    About a minute ago       Exited (0) About a minute ago             fervent_murdock
8c2fde314bf6   b40553062f39   "/bin/sh -c 'sh -c \\"…"   4 minutes ago            Exited (0) 4 minutes ago                  nifty_morse
ccf00ae431d3   <no image>     "/bin/sh -c '#(nop) …"    4 minutes ago            Created                                   silly_bartik
"""


def _render(fmt: str, header: dict[str, str], rows: list[object]) -> str:
    out = io.StringIO()
    Formatter(fmt, header).render(rows, out)
    return out.getvalue()


def test_ps_table_matches_docker() -> None:
    rows = [ContainerContext(c, now=NOW) for c in PS_JSON]
    assert _render(PS_TABLE, ContainerContext.HEADER, rows) == PS_OUT


def test_ps_empty_table_is_the_header_only() -> None:
    assert _render(PS_TABLE, ContainerContext.HEADER, []) == \
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"


def test_ps_formats() -> None:
    rows = [ContainerContext(c, now=NOW) for c in PS_JSON[:2]]
    assert _render(container_format("", True, False), ContainerContext.HEADER, rows) == \
        "2801b83e4d99\n4cbe2660410d\n"
    assert _render("table {{.Names}}\t{{.State}}", ContainerContext.HEADER, rows) == (
        "NAMES             STATE\ntender_bhabha     created\nfervent_murdock   exited\n")
    assert _render("{{.Names}}: {{.Status}}", ContainerContext.HEADER, rows) == (
        "tender_bhabha: Created\nfervent_murdock: Exited (0) About a minute ago\n")
    notrunc = ContainerContext(PS_JSON[1], trunc=False, now=NOW)
    assert notrunc.ID() == PS_JSON[1]["Id"]
    assert notrunc.Command() == "\"/bin/sh -c 'echo Successfully built abcd1234'\""
    assert _render("json", ContainerContext.HEADER, rows[:1]).startswith('{"Command":"\\"true\\""')


def test_ps_size_column() -> None:
    c = dict(PS_JSON[0], SizeRw=1200, SizeRootFs=4326768)
    row = ContainerContext(c, now=NOW)
    assert row.Size() == "1.2kB (virtual 4.33MB)"
    assert ContainerContext(dict(PS_JSON[0], SizeRw=0)).Size() == "0B"
    out = _render(container_format("table", False, True), ContainerContext.HEADER, [row])
    assert out.splitlines()[0].endswith("NAMES           SIZE")


def test_ps_image_column_is_familiar() -> None:
    c = dict(PS_JSON[0], Image="docker.io/library/busybox:latest")
    assert ContainerContext(c).Image() == "busybox:latest"
    c = dict(PS_JSON[0], Image="localhost:5000/x")
    assert ContainerContext(c).Image() == "localhost:5000/x"


# shared/traces/images.txt (subset)
IMAGES_NOW = 1795839844.5
IMAGES_JSON = [
    {"Containers": -1, "Created": 1795839837, "Id": "sha256:a755804a040264eeabfd4439bcfc1e53dec8b25f2eded6e054c969a9b9368c2c",
     "Labels": {}, "ParentId": "", "RepoDigests": ["127.0.0.1:5000/busybox-notes@sha256:2f57b7e556ca95216df6c9cdd21383879a7d89649a7463279acd8fb9e85d4d86"],
     "RepoTags": ["127.0.0.1:5000/busybox-notes:1"], "SharedSize": -1, "Size": 4326768},
    {"Containers": -1, "Created": 1795839694, "Id": "sha256:fb68f852bae839a6b3f6cc48f3129b7259a4e0e4e911694c3aef34ef4f35d239",
     "Labels": {}, "ParentId": "", "RepoDigests": ["<none>@<none>"], "RepoTags": ["<none>:<none>"],
     "SharedSize": -1, "Size": 4326774},
    {"Containers": -1, "Created": 1795839670, "Id": "sha256:4c891ab3ffd7de979ab06728a2bb1d52b93102e118c8a50408df6bda22a697d4",
     "RepoTags": ["bigimg:latest"], "RepoDigests": None, "Size": 214000000, "SharedSize": -1},
    {"Containers": -1, "Created": 1795839480, "Id": "sha256:b40553062f399b24c816cd696fa48df53c926693392c49789ec9b0cf268c0fc4",
     "RepoTags": ["dockerpy-baseline/keep:busybox", "alpine:3.10", "alpine:latest", "busybox:1.35"],
     "RepoDigests": None, "Size": 4326768, "SharedSize": -1},
]
IMAGES_OUT = """\
REPOSITORY                     TAG       IMAGE ID       CREATED         SIZE
127.0.0.1:5000/busybox-notes   1         a755804a0402   7 seconds ago   4.33MB
<none>                         <none>    fb68f852bae8   2 minutes ago   4.33MB
bigimg                         latest    4c891ab3ffd7   2 minutes ago   214MB
alpine                         3.10      b40553062f39   6 minutes ago   4.33MB
alpine                         latest    b40553062f39   6 minutes ago   4.33MB
busybox                        1.35      b40553062f39   6 minutes ago   4.33MB
dockerpy-baseline/keep         busybox   b40553062f39   6 minutes ago   4.33MB
"""


def test_images_table_matches_docker() -> None:
    rows = image_rows(IMAGES_JSON, trunc=True, digest=False, need_digest=False, now=IMAGES_NOW)
    assert _render(IMAGES_TABLE, ImageContext.HEADER, rows) == IMAGES_OUT


def test_images_digests_and_quiet() -> None:
    from dockyard.cli.commands.images import image_format

    rows = image_rows(IMAGES_JSON[:1], trunc=True, digest=True, need_digest=True, now=IMAGES_NOW)
    out = _render(image_format("table", False, True), ImageContext.HEADER, rows)
    assert out.splitlines()[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID",
                                           "CREATED", "SIZE"]
    assert "sha256:2f57b7e556ca95216df6c9cdd21383879a7d89649a7463279acd8fb9e85d4d86" in out
    rows = image_rows(IMAGES_JSON, trunc=False, digest=False, need_digest=False)
    assert _render(image_format("table", True, False), ImageContext.HEADER, rows).splitlines()[0] \
        == IMAGES_JSON[0]["Id"]


def test_history_rows() -> None:
    h = {"Id": "<missing>", "Created": 1000, "CreatedBy": "/bin/sh -c #(nop)\tADD file:abc in /",
         "Size": 4326768, "Comment": ""}
    row = HistoryContext(h, now=2000)
    assert row.ID() == "<missing>" and row.CreatedSince() == "N/A" and row.Size() == "4.33MB"
    assert row.CreatedBy() == "/bin/sh -c #(nop) ADD file:abc in /"
    assert HistoryContext(h, human=False).Size() == "4326768"


def test_indent_keeps_the_daemons_bytes() -> None:
    raw = '[{"Id":"x","Args":["300"],"E":[],"O":{},"S":{"c":"\\u003e","n":1.0e5,"z":null}}]'
    assert indent(raw) == (
        '[\n    {\n        "Id": "x",\n        "Args": [\n            "300"\n        ],\n'
        '        "E": [],\n        "O": {},\n        "S": {\n            "c": "\\u003e",\n'
        '            "n": 1.0e5,\n            "z": null\n        }\n    }\n]')
    assert compact('[ {"a" : [1, 2] } ]') == '[{"a":[1,2]}]'
