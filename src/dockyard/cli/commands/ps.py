"""``dockyard ps`` / ``container ls``: list containers."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import FORMAT_HELP, aliases
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import filters_to_map, validate_filter

DEFAULT_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
                 "{{.Ports}}\t{{.Names}}")


def command(path: str, variant: str = "") -> Command:
    use = "ls [OPTIONS]" if variant == "ls" else "ps [OPTIONS]"
    return Command(path, use, "List containers", [
        Flag("all", "a", "bool", usage="Show all containers (default shows just running)"),
        Flag("filter", "f", "filter", usage="Filter output based on conditions provided",
             validate=validate_filter),
        Flag("format", "", "string", usage=FORMAT_HELP),
        Flag("last", "n", "int", -1, usage="Show n last created containers (includes all states)"),
        Flag("latest", "l", "bool",
             usage="Show the latest created container (includes all states)"),
        Flag("no-trunc", "", "bool", usage="Don't truncate output"),
        Flag("quiet", "q", "bool", usage="Only display container IDs"),
        Flag("size", "s", "bool", usage="Display total file sizes"),
    ], args=("none",), aliases=aliases("container ls", "container list", "container ps", "ps"))


def container_format(source: str, quiet: bool, size: bool) -> str:
    """docker's ``NewContainerFormat``."""
    if source in ("", "table"):
        if quiet:
            return "{{.ID}}"
        return DEFAULT_TABLE + ("\t{{.Size}}" if size else "")
    if source == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        f = ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n"
             "created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n"
             "status: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\n"
             "ports: {{- pad .Ports 1 0}}\n")
        return f + ("size: {{.Size}}\\n" if size else "")
    if quiet:
        return "{{.ID}}"
    return source


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.gotemplate import TemplateError
    from dockyard.cli.render import ContainerContext, Formatter

    fmt = opts.format
    if not fmt:
        fmt = cli.config.ps_format
    elif opts.quiet:
        cli.err.write("WARNING: Ignoring custom format, because both --format and --quiet are "
                      "set.\n")
    size = opts.size
    limit = opts.last
    if opts.latest and limit == -1:
        limit = 1
    if fmt and fmt not in ("table", "raw", "json"):
        # docker runs the template once on an empty row first: bad fields fail early, and a
        # template that shows .Size asks the daemon for sizes
        from dockyard.cli.gotemplate import parse_template

        try:
            probe = parse_template(fmt)
        except TemplateError as exc:
            raise StatusError(1, f"failed to parse template: {exc}") from None
        try:
            probe.execute(ContainerContext({}))
        except TemplateError as exc:
            raise StatusError(1, f"failed to execute template: {exc}") from None
        if not opts.quiet and not size and "size" not in opts.changed \
                and "Size" in probe.fields_used():
            size = True
    try:
        formatter = Formatter(container_format(fmt, opts.quiet, size), ContainerContext.HEADER)
    except TemplateError as exc:
        raise StatusError(1, f"failed to parse template: {exc}") from None
    containers = cli.client.containers(all=opts.all, limit=limit, size=size,
                                       filters=filters_to_map(opts.filter))
    rows = [ContainerContext(c, trunc=not opts.no_trunc) for c in containers]
    try:
        formatter.render(rows, cli.out)
    except TemplateError as exc:
        raise StatusError(1, f"template parsing error: {exc}") from None
    return 0
