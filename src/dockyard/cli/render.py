"""Output formatting shared by the commands, matching the docker CLI byte for byte.

* ``TabWriter``: Go's ``text/tabwriter`` (docker's fork): tab-terminated cells, column
  blocks, minimum width, padding; docker's tables use ``minwidth=10, padding=3``.
* ``human_duration`` / ``human_size`` / ``bytes_size``: go-units (``"About a minute"``,
  ``"4.33MB"``, ``"1.2kB"``, ``"7.64GiB"``).
* ``ellipsis``: truncation with ``…`` by display width; ``go_quote``: ``strconv.Quote``.
* ``Formatter``: the ``--format`` machinery (``table``/``json``/custom templates, header
  row, tabwriter) over per-row context objects (``ContainerContext``, ``ImageContext``...).
"""

from __future__ import annotations

import time

from dockyard.util.humanize import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from dockyard.cli._types import TextWriter

__all__ = [
    "ContainerContext",
    "Formatter",
    "HistoryContext",
    "ImageContext",
    "TabWriter",
    "bytes_size",
    "displayable_ports",
    "ellipsis",
    "go_quote",
    "go_time_string",
    "human_duration",
    "human_size",
    "human_size_precision",
    "image_rows",
    "short_id",
    "display_width",
]


# -- units -----------------------------------------------------------------------------------

def _now() -> float:
    return time.time()


def since(ts: float, now: float | None = None) -> str:
    """``"3 seconds ago"`` for a unix timestamp."""
    now = _now() if now is None else now
    return human_duration(now - ts) + " ago"


_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.Ng`` (same as C's, which Python's ``%g`` follows)."""
    return "%.*g" % (precision, value)


def _scale(size: float, base: float, units: Sequence[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size_precision(size: float, precision: int) -> str:
    v, unit = _scale(float(size), 1000.0, _DECIMAL)
    return _go_g(v, precision) + unit


def human_size(size: float) -> str:
    """go-units ``HumanSize`` (4 significant digits)."""
    return human_size_precision(size, 4)


def bytes_size(size: float) -> str:
    """go-units ``BytesSize`` (binary units)."""
    v, unit = _scale(float(size), 1024.0, _BINARY)
    return _go_g(v, 4) + unit


# -- strings ---------------------------------------------------------------------------------

def _char_width(ch: str) -> int:
    o = ord(ch)
    if o < 0x1100:
        return 1
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    if s.isascii():
        return len(s)
    return sum(_char_width(c) for c in s)


def ellipsis(s: str, max_width: int) -> str:
    """docker's ``formatter.Ellipsis``: cut to ``max_width`` display columns with ``…``."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    widths = []
    total = 0
    for c in s:
        total += _char_width(c)
        widths.append(total)
    if total <= max_width:
        return s
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return s[: i + 1] + "…"
    return s


_QUOTE_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
              "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: double quotes, Go escapes, printable Unicode kept."""
    out = ['"']
    for c in s:
        e = _QUOTE_ESC.get(c)
        if e is not None:
            out.append(e)
            continue
        o = ord(c)
        if 0x20 <= o < 0x7F:
            out.append(c)
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif c.isprintable():
            out.append(c)
        elif o == 0xFFFD:
            out.append(c)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def short_id(ident: str) -> str:
    """``stringid.TruncateID``: drop an ``algo:`` prefix, keep 12 characters."""
    i = ident.find(":")
    if i >= 0:
        ident = ident[i + 1:]
    return ident[:12]


def go_time_string(ts: float) -> str:
    """Go's ``time.Unix(ts, 0).String()`` in local time: ``2026-11-28 04:23:34 +0000 UTC``."""
    lt = time.localtime(ts)
    off = lt.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    zone = lt.tm_zone or ""
    return (time.strftime("%Y-%m-%d %H:%M:%S", lt)
            + f" {sign}{off // 3600:02d}{(off % 3600) // 60:02d} {zone}").rstrip()


def rfc3339(ts: float) -> str:
    """Go's ``time.RFC3339`` in local time (``2006-01-02T15:04:05Z07:00``)."""
    lt = time.localtime(ts)
    off = lt.tm_gmtoff or 0
    if off == 0:
        tz = "Z"
    else:
        sign = "+" if off > 0 else "-"
        tz = f"{sign}{abs(off) // 3600:02d}:{(abs(off) % 3600) // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + tz


# -- tabwriter -------------------------------------------------------------------------------

class TabWriter:
    """Go's ``text/tabwriter`` with flags 0 (left-aligned, no Debug/escapes).

    Text is split into cells at ``\\t``; a cell is part of a column only when terminated by
    a tab (the last cell of a line is not). A column's width is ``max(cell)+padding`` (at
    least ``minwidth``) over each run of consecutive lines that have that column. A line
    with a single cell flushes what was buffered before it.
    """

    def __init__(self, out: TextWriter, minwidth: int = 10, tabwidth: int = 1, padding: int = 3,
                 padchar: str = " ") -> None:
        self.out = out
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self._lines: list[list[str]] = [[]]
        self._cell = ""

    def write(self, text: str) -> None:
        start = 0
        for i, ch in enumerate(text):
            if ch == "\t" or ch == "\n":
                self._cell += text[start:i]
                start = i + 1
                line = self._lines[-1]
                line.append(self._cell)
                self._cell = ""
                if ch == "\n":
                    ncells = len(line)
                    self._lines.append([])
                    if ncells == 1:
                        self._flush()
        self._cell += text[start:]

    def flush(self) -> None:
        if self._cell:
            self._lines[-1].append(self._cell)
            self._cell = ""
        self._flush()

    def _flush(self) -> None:
        out: list[str] = []
        self._format(out, self._lines, 0, len(self._lines), [])
        self.out.write("".join(out))
        self._lines = [[]]

    def _write_lines(self, out: list[str], lines: list[list[str]], line0: int, line1: int,
                     widths: list[int]) -> None:
        pad = self.padchar
        for i in range(line0, line1):
            for j, cell in enumerate(lines[i]):
                out.append(cell)
                if j < len(widths):
                    out.append(pad * (widths[j] - display_width(cell)))
            if i + 1 < len(lines):
                out.append("\n")

    def _format(self, out: list[str], lines: list[list[str]], line0: int, line1: int,
                widths: list[int]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            line = lines[this]
            if column >= len(line) - 1:
                this += 1
                continue
            self._write_lines(out, lines, line0, this, widths)
            line0 = this
            width = self.minwidth
            while this < line1:
                line = lines[this]
                if column >= len(line) - 1:
                    break
                w = display_width(line[column]) + self.padding
                if w > width:
                    width = w
                this += 1
            widths.append(width)
            self._format(out, lines, line0, this, widths)
            widths.pop()
            line0 = this
        self._write_lines(out, lines, line0, line1, widths)


# -- ports -----------------------------------------------------------------------------------

def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def displayable_ports(ports: Iterable[Mapping[str, Any]] | None) -> str:
    """docker's ``DisplayablePorts``: ``0.0.0.0:8080->80/tcp, 443/tcp``."""
    if not ports:
        return ""
    plist = sorted(ports, key=lambda p: (p.get("PrivatePort", 0) or 0, p.get("IP", "") or "",
                                         p.get("PublicPort", 0) or 0, p.get("Type", "") or ""))
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []

    def form(key: str, start: int, last: int) -> str:
        parts = key.split("/")
        gtype = parts[0]
        ip = ""
        if len(parts) > 1:
            ip = parts[0]
            gtype = parts[1]
        group = str(start) if start == last else f"{start}-{last}"
        if ip:
            group = f"{_join_host_port(ip, group)}->{group}"
        return f"{group}/{gtype}"

    for p in plist:
        current = int(p.get("PrivatePort", 0) or 0)
        key = p.get("Type", "") or ""
        ip = p.get("IP", "") or ""
        public = int(p.get("PublicPort", 0) or 0)
        if ip:
            if public != current:
                host_mappings.append(
                    f"{_join_host_port(ip, str(public))}->{current}/{p.get('Type', '')}")
                continue
            key = f"{ip}/{key}"
        g = groups.get(key)
        if g is None:
            groups[key] = [current, current]
            order.append(key)
            continue
        if current == g[1] + 1:
            g[1] = current
            continue
        result.append(form(key, g[0], g[1]))
        groups[key] = [current, current]
    for key in order:
        g = groups[key]
        result.append(form(key, g[0], g[1]))
    result.extend(host_mappings)
    return ", ".join(result)


# -- references (fast path; the full parser is imported only when needed) -----------------

def familiar_image(image: str) -> str:
    """The ps IMAGE column: a reference shown as the docker CLI shows it (no digest)."""
    if "docker.io/" not in image and not image.startswith("library/") and "@" not in image:
        return image
    try:
        from dockyard.oci.reference import parse_normalized

        ref = parse_normalized(image)
    except Exception:  # noqa: BLE001 - not a reference: show as is
        return image
    s = ref.familiar_name
    if ref.tag:
        s += ":" + ref.tag
    return s


# -- format contexts -------------------------------------------------------------------------

class _Ctx:
    """Base of the per-row template contexts; ``to_json`` mirrors docker's MarshalJSON
    (every exported zero-argument method, keys sorted)."""

    _fields: tuple[str, ...] = ()
    used: set[str]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name)() for name in sorted(self._fields)}


class ContainerContext(_Ctx):
    _fields = ("Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
               "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State",
               "Status")
    HEADER = {
        "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
        "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
        "Platform": "PLATFORM",
    }

    def __init__(self, c: Mapping[str, Any], trunc: bool = True, now: float | None = None) -> None:
        self.c = c
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:  # noqa: N802 - Go template field names
        i = self.c.get("Id", "") or ""
        return short_id(i) if self.trunc else i

    def Names(self) -> str:  # noqa: N802
        names = [n[1:] for n in (self.c.get("Names") or [])]
        if self.trunc:
            for n in names:
                if len(n.split("/")) == 1:
                    names = [n]
                    break
        return ",".join(names)

    def Image(self) -> str:  # noqa: N802
        image = self.c.get("Image", "") or ""
        if not image:
            return "<no image>"
        if self.trunc:
            image_id = self.c.get("ImageID", "") or ""
            if short_id(image_id) == short_id(image):
                return short_id(image)
            return familiar_image(image)
        return image

    def Command(self) -> str:  # noqa: N802
        cmd = self.c.get("Command", "") or ""
        if self.trunc:
            cmd = ellipsis(cmd, 20)
        return go_quote(cmd)

    def CreatedAt(self) -> str:  # noqa: N802
        return go_time_string(int(self.c.get("Created", 0) or 0))

    def RunningFor(self) -> str:  # noqa: N802
        return since(int(self.c.get("Created", 0) or 0), self.now)

    def Ports(self) -> str:  # noqa: N802
        return displayable_ports(self.c.get("Ports"))

    def State(self) -> str:  # noqa: N802
        return str(self.c.get("State", "") or "")

    def Status(self) -> str:  # noqa: N802
        return str(self.c.get("Status", "") or "")

    def Size(self) -> str:  # noqa: N802
        srw = human_size_precision(float(self.c.get("SizeRw", 0) or 0), 3)
        rootfs = float(self.c.get("SizeRootFs", 0) or 0)
        if rootfs > 0:
            return f"{srw} (virtual {human_size_precision(rootfs, 3)})"
        return srw

    def Labels(self) -> str:  # noqa: N802
        labels = self.c.get("Labels")
        if not labels:
            return ""
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))

    def Label(self, name: str) -> str:  # noqa: N802
        labels = self.c.get("Labels") or {}
        return str(labels.get(name, ""))

    def Mounts(self) -> str:  # noqa: N802
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "") or ""
            if self.trunc:
                name = ellipsis(name, 15)
            names.append(name)
        return ",".join(names)

    def LocalVolumes(self) -> str:  # noqa: N802
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Networks(self) -> str:  # noqa: N802
        ns = self.c.get("NetworkSettings") or {}
        return ",".join((ns.get("Networks") or {}).keys())

    def Platform(self) -> Any:  # noqa: N802
        desc = self.c.get("ImageManifestDescriptor") or {}
        return desc.get("platform") if isinstance(desc, dict) else None


class ImageContext(_Ctx):
    _fields = ("Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
               "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize")
    HEADER = {
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
    }

    def __init__(self, i: Mapping[str, Any], repo: str, tag: str, digest: str,
                 trunc: bool = True, now: float | None = None) -> None:
        self.i = i
        self.repo = repo
        self.tag = tag
        self.digest = digest
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:  # noqa: N802
        i = self.i.get("Id", "") or ""
        return short_id(i) if self.trunc else i

    def Repository(self) -> str:  # noqa: N802
        return self.repo

    def Tag(self) -> str:  # noqa: N802
        return self.tag

    def Digest(self) -> str:  # noqa: N802
        return self.digest

    def CreatedSince(self) -> str:  # noqa: N802
        return since(int(self.i.get("Created", 0) or 0), self.now)

    def CreatedAt(self) -> str:  # noqa: N802
        return go_time_string(int(self.i.get("Created", 0) or 0))

    def Size(self) -> str:  # noqa: N802
        return human_size_precision(float(self.i.get("Size", 0) or 0), 3)

    def Containers(self) -> str:  # noqa: N802
        n = self.i.get("Containers", -1)
        return "N/A" if n in (-1, None) else str(n)

    def VirtualSize(self) -> str:  # noqa: N802
        return human_size(float(self.i.get("Size", 0) or 0))

    def SharedSize(self) -> str:  # noqa: N802
        n = self.i.get("SharedSize", -1)
        return "N/A" if n in (-1, None) else human_size(float(n))

    def UniqueSize(self) -> str:  # noqa: N802
        size = self.i.get("Size", -1)
        shared = self.i.get("SharedSize", -1)
        if size in (-1, None) or shared in (-1, None):
            return "N/A"
        return human_size(float(size - shared))


def _split_ref(s: str) -> tuple[str, str, str]:
    """``repo:tag`` / ``repo@digest`` → familiar repo, tag, digest."""
    try:
        from dockyard.oci.reference import parse_normalized

        ref = parse_normalized(s)
        return ref.familiar_name, ref.tag, ref.digest
    except Exception:  # noqa: BLE001
        name, _, digest = s.partition("@")
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            return name[:colon], name[colon + 1:], digest
        return name, "", digest


def _is_dangling(img: Mapping[str, Any]) -> bool:
    tags = img.get("RepoTags") or []
    digests = img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def image_rows(images: Iterable[Mapping[str, Any]], *, trunc: bool, digest: bool,
               need_digest: bool, now: float | None = None) -> list[ImageContext]:
    """docker's ``imageFormat``: one row per repo:tag (and digest when asked)."""
    rows: list[ImageContext] = []
    for img in images:
        if _is_dangling(img):
            rows.append(ImageContext(img, "<none>", "<none>", "<none>", trunc, now))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for s in img.get("RepoTags") or []:
            repo, tag, _ = _split_ref(s)
            if tag:
                repo_tags.setdefault(repo, []).append(tag)
        for s in img.get("RepoDigests") or []:
            repo, _, dg = _split_ref(s)
            if dg:
                repo_digests.setdefault(repo, []).append(dg)
        # Go iterates a map here (random order); sorting by repository is deterministic
        for repo, tags in sorted(repo_tags.items()):
            digests = repo_digests.pop(repo, [])
            if not need_digest:
                digests = []
            for tag in tags:
                if not digests:
                    rows.append(ImageContext(img, repo, tag, "<none>", trunc, now))
                    continue
                for dg in digests:
                    rows.append(ImageContext(img, repo, tag, dg, trunc, now))
        for repo, digests in sorted(repo_digests.items()):
            if digest:
                for dg in digests:
                    rows.append(ImageContext(img, repo, "<none>", dg, trunc, now))
            else:
                rows.append(ImageContext(img, repo, "<none>", "", trunc, now))
    return rows


class HistoryContext(_Ctx):
    _fields = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")
    HEADER = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
              "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
    _EPOCH = 946684800  # 2000-01-01T00:00:00Z

    def __init__(self, h: Mapping[str, Any], trunc: bool = True, human: bool = True,
                 now: float | None = None) -> None:
        self.h = h
        self.trunc = trunc
        self.human = human
        self.now = now

    def ID(self) -> str:  # noqa: N802
        i = str(self.h.get("Id", "") or "")
        return short_id(i) if self.trunc else i

    def CreatedAt(self) -> str:  # noqa: N802
        return rfc3339(int(self.h.get("Created", 0) or 0))

    def CreatedSince(self) -> str:  # noqa: N802
        if not self.human:
            return self.CreatedAt()
        created = int(self.h.get("Created", 0) or 0)
        if created <= self._EPOCH:
            return "N/A"
        return since(created, self.now)

    def CreatedBy(self) -> str:  # noqa: N802
        s = str(self.h.get("CreatedBy", "") or "").replace("\t", " ")
        return ellipsis(s, 45) if self.trunc else s

    def Size(self) -> str:  # noqa: N802
        size = int(self.h.get("Size", 0) or 0)
        return human_size_precision(size, 3) if self.human else str(size)

    def Comment(self) -> str:  # noqa: N802
        return str(self.h.get("Comment", "") or "")


class _HeaderLabels(dict[str, str]):
    """The header row's context: field name → column title (``.Label "x"`` → ``x``)."""

    def Label(self, name: str) -> str:  # noqa: N802
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")


class Formatter:
    """docker's ``formatter.Context``: ``table``/``json``/template output of row contexts."""

    def __init__(self, fmt: str, header: Mapping[str, str]) -> None:
        self.raw = fmt
        self.is_table = fmt.startswith("table")
        if self.is_table:
            body = fmt[len("table"):]
        elif fmt == "json":
            body = "{{json .}}"
        else:
            body = fmt
        body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.body = body
        self.header = _HeaderLabels(header)
        from dockyard.cli.gotemplate import parse_template

        self.template = parse_template(body)

    def uses(self, field: str) -> bool:
        return field in self.template.fields_used()

    def render(self, rows: Iterable[Any], out: TextWriter) -> None:
        from dockyard.cli.gotemplate import HEADER_FUNCS

        buf: list[str] = []
        for row in rows:
            buf.append(self.template.execute(row))
            buf.append("\n")
        if self.is_table:
            tw = TabWriter(out, 10, 1, 3)
            tw.write(self.template.execute(self.header, funcs=HEADER_FUNCS))
            tw.write("\n")
            tw.write("".join(buf))
            tw.flush()
        else:
            out.write("".join(buf))
