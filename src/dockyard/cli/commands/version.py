"""``dockyard version``: client and server versions, laid out like docker's."""

from __future__ import annotations

import os
import sys

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import INSPECT_FORMAT_HELP
from dockyard.cli.flags import Command, Flag, Parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le":
         "ppc64le", "s390x": "s390x"}


def command(path: str, variant: str = "") -> Command:
    return Command(path, "version [OPTIONS]", "Show the Docker version information",
                   [Flag("format", "f", "string", usage=INSPECT_FORMAT_HELP)], args=("none",))


def reformat_date(build_time: str) -> str:
    """RFC 3339 → Go's ANSIC layout (``Thu May  7 21:09:36 2026``), else unchanged."""
    s = build_time.strip()
    if not s:
        return build_time
    import datetime as dt  # only when the daemon sent a build time

    head = s
    frac = ""
    if "." in s:
        head, _, rest = s.partition(".")
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, head = rest[:i], head + rest[i:]
    if head.endswith("Z"):
        head = head[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(head)
    except ValueError:
        return build_time
    del frac
    return f"{t.strftime('%a %b')} {t.day:2d} {t.strftime('%H:%M:%S %Y')}"


def client_info(cli: Cli, api_version: str) -> dict[str, Any]:
    from dockyard import __version__
    from dockyard.client.api import MAX_API_VERSION

    machine = os.uname().machine
    return {
        "Platform": {"Name": ""},
        "Version": __version__,
        "ApiVersion": api_version,
        "DefaultAPIVersion": MAX_API_VERSION,
        "GitCommit": "unknown",
        "GoVersion": "python" + ".".join(str(x) for x in sys.version_info[:3]),
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": _ARCH.get(machine, machine),
        "BuildTime": "unknown",
        "Context": "default",
    }


def _text(info: dict[str, Any]) -> str:
    c = info["Client"]
    lines = ["Client:" + (f" {c['Platform']['Name']}" if c.get("Platform", {}).get("Name") else "")]
    api = c["ApiVersion"]
    if api != c["DefaultAPIVersion"]:
        api += f" (downgraded from {c['DefaultAPIVersion']})"
    lines += [
        f" Version:\t{c['Version']}",
        f" API version:\t{api}",
        f" Go version:\t{c['GoVersion']}",
        f" Git commit:\t{c['GitCommit']}",
        f" Built:\t{c['BuildTime']}",
        f" OS/Arch:\t{c['Os']}/{c['Arch']}",
        f" Context:\t{c['Context']}",
    ]
    s = info.get("Server")
    if s is not None:
        name = (s.get("Platform") or {}).get("Name") or ""
        lines += ["", "Server:" + (f" {name}" if name else "")]
        for comp in s.get("Components") or []:
            d = comp.get("Details") or {}
            lines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                lines += [
                    f"  Version:\t{comp.get('Version', '')}",
                    f"  API version:\t{d.get('ApiVersion', '')} (minimum version "
                    f"{d.get('MinAPIVersion', '')})",
                    f"  Go version:\t{d.get('GoVersion', '')}",
                    f"  Git commit:\t{d.get('GitCommit', '')}",
                    f"  Built:\t{d.get('BuildTime', '')}",
                    f"  OS/Arch:\t{d.get('Os', '')}/{d.get('Arch', '')}",
                    f"  Experimental:\t{d.get('Experimental', '')}",
                ]
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                for key in sorted(d):
                    lines.append(f"  {key}:\t{d[key]}")
    return "\n".join(lines)


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.render import TabWriter
    from dockyard.client.api import MAX_API_VERSION

    tmpl = None
    if opts.format:
        from dockyard.cli.gotemplate import TemplateError, parse_template

        fmt = "{{json .}}" if opts.format == "json" else opts.format
        try:
            tmpl = parse_template(fmt, name="version")
        except TemplateError as exc:
            raise StatusError(64, f"template parsing error: {exc}") from None
    server: dict[str, Any] | None = None
    error: BaseException | None = None
    api_version = MAX_API_VERSION
    try:
        server = cli.client.version()
        api_version = cli.client.api_version
    except Exception as exc:  # noqa: BLE001 - the client part is printed anyway
        error = exc
    if server is not None:
        comps = server.setdefault("Components", []) or []
        server["Components"] = comps
        found = False
        for comp in comps:
            if comp.get("Name") == "Engine":
                found = True
                det = comp.setdefault("Details", {}) or {}
                if "BuildTime" in det:
                    det["BuildTime"] = reformat_date(str(det["BuildTime"]))
        if not found:
            comps.append({"Name": "Engine", "Version": server.get("Version", ""), "Details": {
                "ApiVersion": server.get("ApiVersion", ""),
                "MinAPIVersion": server.get("MinAPIVersion", ""),
                "GitCommit": server.get("GitCommit", ""),
                "GoVersion": server.get("GoVersion", ""),
                "Os": server.get("Os", ""), "Arch": server.get("Arch", ""),
                "BuildTime": reformat_date(str(server.get("BuildTime", ""))),
                "Experimental": "true" if server.get("Experimental") else "false",
            }})
    info = {"Client": client_info(cli, api_version), "Server": server}
    if tmpl is not None:
        try:
            cli.out.write(tmpl.execute(info) + "\n")
        except TemplateError as exc:  # imported above: tmpl is set only there
            if error is None:
                raise StatusError(1, str(exc)) from None
    else:
        tw = TabWriter(cli.out, 20, 1, 1)
        tw.write(_text(info))
        tw.write("\n")
        tw.flush()
    if error is not None:
        raise error
    return 0
