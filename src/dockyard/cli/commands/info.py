"""``dockyard info``: system-wide information, laid out like docker's."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import INSPECT_FORMAT_HELP, aliases, error_text
from dockyard.cli.flags import Command, Flag, Parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def command(path: str, variant: str = "") -> Command:
    return Command(path, "info [OPTIONS]", "Display system-wide information", [
        Flag("format", "f", "string", usage=INSPECT_FORMAT_HELP),
    ], args=("none",), aliases=aliases("system info", "info"))


def _server_lines(i: dict[str, Any]) -> list[str]:
    from dockyard.cli.render import bytes_size

    def b(v: Any) -> str:
        return "true" if v else "false"

    out = [
        f" Containers: {i.get('Containers', 0)}",
        f"  Running: {i.get('ContainersRunning', 0)}",
        f"  Paused: {i.get('ContainersPaused', 0)}",
        f"  Stopped: {i.get('ContainersStopped', 0)}",
        f" Images: {i.get('Images', 0)}",
    ]

    def nonempty(label: str, v: Any) -> None:
        if v:
            out.append(f" {label} {v}")

    nonempty("Server Version:", i.get("ServerVersion"))
    nonempty("Storage Driver:", i.get("Driver"))
    for pair in i.get("DriverStatus") or []:
        if len(pair) >= 2:
            out.append(f"  {pair[0]}: {pair[1]}")
    for pair in i.get("SystemStatus") or []:
        if len(pair) >= 2:
            out.append(f" {pair[0]}: {pair[1]}")
    nonempty("Logging Driver:", i.get("LoggingDriver"))
    nonempty("Cgroup Driver:", i.get("CgroupDriver"))
    nonempty("Cgroup Version:", i.get("CgroupVersion"))
    plugins = i.get("Plugins") or {}
    out.append(" Plugins:")
    out.append("  Volume: " + " ".join(plugins.get("Volume") or []))
    out.append("  Network: " + " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        out.append("  Authorization: " + " ".join(plugins["Authorization"]))
    out.append("  Log: " + " ".join(plugins.get("Log") or []))
    swarm = i.get("Swarm") or {}
    out.append(f" Swarm: {swarm.get('LocalNodeState', 'inactive')}")
    runtimes = i.get("Runtimes") or {}
    if runtimes:
        out.append(" Runtimes: " + " ".join(runtimes))
        out.append(f" Default Runtime: {i.get('DefaultRuntime', '')}")
    if i.get("OSType") == "linux":
        out.append(f" Init Binary: {i.get('InitBinary', '')}")
        out.append(f" containerd version: {(i.get('ContainerdCommit') or {}).get('ID', '')}")
        out.append(f" runc version: {(i.get('RuncCommit') or {}).get('ID', '')}")
        out.append(f" init version: {(i.get('InitCommit') or {}).get('ID', '')}")
        sec = i.get("SecurityOptions") or []
        if sec:
            out.append(" Security Options:")
            for so in sec:
                kv = dict(p.split("=", 1) for p in so.split(",") if "=" in p)
                out.append("  " + kv.get("name", so))
                if "profile" in kv:
                    out.append(f"   Profile: {kv['profile']}")
    nonempty("Kernel Version:", i.get("KernelVersion"))
    nonempty("Operating System:", i.get("OperatingSystem"))
    nonempty("OSType:", i.get("OSType"))
    nonempty("Architecture:", i.get("Architecture"))
    out.append(f" CPUs: {i.get('NCPU', 0)}")
    out.append(f" Total Memory: {bytes_size(float(i.get('MemTotal', 0) or 0))}")
    nonempty("Name:", i.get("Name"))
    nonempty("ID:", i.get("ID"))
    out.append(f" Docker Root Dir: {i.get('DockerRootDir', '')}")
    out.append(f" Debug Mode: {b(i.get('Debug'))}")
    nonempty("HTTP Proxy:", i.get("HttpProxy"))
    nonempty("HTTPS Proxy:", i.get("HttpsProxy"))
    nonempty("No Proxy:", i.get("NoProxy"))
    labels = i.get("Labels") or []
    if labels:
        out.append(" Labels:")
        out += [f"  {lbl}" for lbl in labels]
    out.append(f" Experimental: {b(i.get('ExperimentalBuild'))}")
    reg = i.get("RegistryConfig") or {}
    cidrs = reg.get("InsecureRegistryCIDRs") or []
    idx = reg.get("IndexConfigs") or {}
    if cidrs or idx:
        out.append(" Insecure Registries:")
        for cfg in idx.values():
            if not cfg.get("Secure", True):
                out.append(f"  {cfg.get('Name', '')}")
        out += [f"  {c}" for c in cidrs]
    mirrors = reg.get("Mirrors") or []
    if mirrors:
        out.append(" Registry Mirrors:")
        out += [f"  {m}" for m in mirrors]
    out.append(f" Live Restore Enabled: {b(i.get('LiveRestoreEnabled'))}")
    return out


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard import __version__

    info: dict[str, Any] | None = None
    server_err: BaseException | None = None
    try:
        info = cli.client.info()
    except Exception as exc:  # noqa: BLE001
        server_err = exc
    client = {"Version": __version__, "Context": "default", "Debug": cli.debug, "Plugins": [],
              "Warnings": None}
    if opts.format:
        from dockyard.cli.gotemplate import TemplateError, parse_template

        fmt = "{{json .}}" if opts.format == "json" else opts.format
        data = dict(info or {})
        data["ClientInfo"] = client
        data["ClientErrors"] = None
        data["ServerErrors"] = [error_text(server_err)] if server_err else None
        try:
            cli.out.write(parse_template(fmt).execute(data) + "\n")
        except TemplateError as exc:
            raise StatusError(64 if "parse" in str(exc) else 1, f"template parsing error: {exc}") \
                from None
        if server_err is not None:
            raise StatusError(1, "errors pretty printing info")
        return 0
    lines = ["Client:", f" Version:    {__version__}", " Context:    default",
             f" Debug Mode: {'true' if cli.debug else 'false'}", "", "Server:"]
    if info is not None:
        lines += _server_lines(info)
        lines.append("")
    cli.out.write("\n".join(lines) + "\n")
    if info is not None:
        for w in info.get("Warnings") or []:
            cli.err.write(w + "\n")
    if server_err is not None:
        cli.err.write(f"ERROR: {error_text(server_err)}\n")
        raise StatusError(1, "errors pretty printing info")
    return 0
