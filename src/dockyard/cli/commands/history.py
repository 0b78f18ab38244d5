"""``dockyard history``: the layers of an image."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import FORMAT_HELP, aliases
from dockyard.cli.flags import Command, Flag, Parsed

DEFAULT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def command(path: str, variant: str = "") -> Command:
    return Command(path, "history [OPTIONS] IMAGE", "Show the history of an image", [
        Flag("format", "", "string", usage=FORMAT_HELP),
        Flag("human", "H", "bool", True, usage="Print sizes and dates in human readable format"),
        Flag("no-trunc", "", "bool", usage="Don't truncate output"),
        Flag("platform", "", "string", usage='Show history for the given platform. Formatted as '
             '"os[/arch[/variant]]" (e.g., "linux/amd64")'),
        Flag("quiet", "q", "bool", usage="Only show image IDs"),
    ], args=("exact", 1), aliases=aliases("image history", "history"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.gotemplate import TemplateError
    from dockyard.cli.render import Formatter, HistoryContext

    history = cli.client.image_history(opts.args[0], platform=opts.platform or None)
    fmt = opts.format or "table"
    if fmt == "table":
        fmt = "{{.ID}}" if opts.quiet else (DEFAULT if opts.human else NON_HUMAN)
    try:
        formatter = Formatter(fmt, HistoryContext.HEADER)
        formatter.render([HistoryContext(h, trunc=not opts.no_trunc, human=opts.human)
                          for h in history], cli.out)
    except TemplateError as exc:
        raise StatusError(1, f"template parsing error: {exc}") from None
    return 0
