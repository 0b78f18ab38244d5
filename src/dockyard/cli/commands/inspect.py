"""``dockyard inspect`` / ``container inspect`` / ``image inspect``: low-level JSON.

Without ``--format`` the daemon's JSON is printed as an indented array, byte for byte as
the daemon spelled it (docker's ``json.Indent``); ``--format json`` prints it compact; any
other ``--format`` is a Go template run on each object.
"""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import INSPECT_FORMAT_HELP, error_text
from dockyard.cli.flags import Command, Flag, Parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

ALL_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service",
             "task", "volume")


def command(path: str, variant: str = "") -> Command:
    fmt = Flag("format", "f", "string", usage=INSPECT_FORMAT_HELP)
    if variant == "container":
        return Command(path, "inspect [OPTIONS] CONTAINER [CONTAINER...]",
                       "Display detailed information on one or more containers",
                       [fmt, Flag("size", "s", "bool", usage="Display total file sizes")],
                       args=("min", 1))
    if variant == "image":
        return Command(path, "inspect [OPTIONS] IMAGE [IMAGE...]",
                       "Display detailed information on one or more images",
                       [fmt, Flag("platform", "", "string", usage=(
                           "Inspect a specific platform of the multi-platform image.\n"
                           "If the image or the server is not multi-platform capable, the "
                           "command will error out if the platform does not match.\n"
                           "'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)"))],
                       args=("min", 1))
    return Command(path, "inspect [OPTIONS] NAME|ID [NAME|ID...]",
                   "Return low-level information on Docker objects", [
                       fmt,
                       Flag("size", "s", "bool",
                            usage="Display total file sizes if the type is container"),
                       Flag("type", "", "string", usage="Only inspect objects of the given type"),
                   ], args=("min", 1))


def _skippable(exc: BaseException) -> bool:
    from dockyard.errors import NotFound

    msg = str(exc)
    return isinstance(exc, NotFound) or "not supported" in msg or "invalid reference format" in msg


def _getter(cli: Cli, opts: Parsed) -> Callable[[str], tuple[Any, bytes]]:
    c = cli.client
    variant = opts.variant
    size = bool(getattr(opts, "size", False))
    if variant == "container":
        return lambda ref: c.container_inspect(ref, size=size)
    if variant == "image":
        return c.image_inspect
    typ = opts.type
    if "type" in opts.changed and not typ:
        raise StatusError(1, 'type is empty: must be one of "' + '", "'.join(ALL_TYPES) + '"')
    if typ and typ not in ALL_TYPES:
        raise StatusError(1, f'unknown type: "{typ}": must be one of "'
                          + '", "'.join(ALL_TYPES) + '"')
    order: list[tuple[str, Callable[[str], tuple[Any, bytes]]]] = [
        ("container", lambda ref: c.container_inspect(ref, size=size)),
        ("image", c.image_inspect),
        ("network", c.network_inspect),
        ("volume", c.volume_inspect),
    ]

    def get(ref: str) -> tuple[Any, bytes]:
        for kind, fn in order:
            if typ and kind != typ:
                continue
            try:
                obj = fn(ref)
            except Exception as exc:
                if not typ and _skippable(exc):
                    continue
                raise
            if size and kind != "container":
                cli.err.write(f"WARNING: --size ignored for {kind}\n")
            return obj
        raise LookupError(f"Error: No such object: {ref}")

    return get


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.gotemplate import TemplateError, parse_template

    fmt = opts.format
    tmpl = None
    if fmt and fmt != "json":
        try:
            tmpl = parse_template(fmt)
        except TemplateError as exc:
            raise StatusError(64, f"template parsing error: {exc}") from None
    get = _getter(cli, opts)
    errs: list[str] = []
    raws: list[str] = []
    out: list[str] = []
    for ref in opts.args:
        try:
            obj, raw = get(ref)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            errs.append(error_text(exc))
            continue
        if tmpl is not None:
            try:
                out.append(tmpl.execute(obj) + "\n")
            except TemplateError as exc:
                errs.append(f"template parsing error: {exc}")
        else:
            raws.append(raw.decode("utf-8", "replace").strip())
    if tmpl is not None:
        cli.out.write("".join(out) if out else "\n")
    else:
        from dockyard.cli.jsonfmt import compact, indent

        if not raws:
            cli.out.write("[]\n")
        else:
            joined = "[" + ",".join(raws) + "]"
            cli.out.write((compact(joined) if fmt == "json" else indent(joined)) + "\n")
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0
