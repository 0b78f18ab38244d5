"""``dockyard images`` / ``image ls``: list images."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import FORMAT_HELP, aliases
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import filters_to_map, validate_filter

DEFAULT = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
           "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
DEFAULT_DIGEST = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                  "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
_HINT_WORDS = {"build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull",
               "push", "rm", "save", "tag"}


def command(path: str, variant: str = "") -> Command:
    use = ("ls" if variant == "ls" else "images") + " [OPTIONS] [REPOSITORY[:TAG]]"
    return Command(path, use, "List images", [
        Flag("all", "a", "bool", usage="Show all images (default hides intermediate images)"),
        Flag("digests", "", "bool", usage="Show digests"),
        Flag("filter", "f", "filter", usage="Filter output based on conditions provided",
             validate=validate_filter),
        Flag("format", "", "string", usage=FORMAT_HELP),
        Flag("no-trunc", "", "bool", usage="Don't truncate output"),
        Flag("quiet", "q", "bool", usage="Only show image IDs"),
    ], args=("max", 1), aliases=aliases("image ls", "image list", "images"))


def image_format(source: str, quiet: bool, digest: bool) -> str:
    """docker's ``NewImageFormat``."""
    if source == "table":
        if quiet:
            return "{{.ID}}"
        return DEFAULT_DIGEST if digest else DEFAULT
    if source == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        if digest:
            return ("repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\n"
                    "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\n"
                "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
    if source.startswith("table") and digest and "{{.Digest}}" not in source:
        source += "\t{{.Digest}}"
    return source


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.gotemplate import TemplateError
    from dockyard.cli.render import Formatter, ImageContext, image_rows

    filters = filters_to_map(opts.filter)
    match = opts.args[0] if opts.args else ""
    if match:
        filters.setdefault("reference", []).append(match)
    images = cli.client.images(all=opts.all, filters=filters)
    fmt = opts.format
    if not fmt:
        fmt = cli.config.images_format if (cli.config.images_format and not opts.quiet) \
            else "table"
    try:
        formatter = Formatter(image_format(fmt, opts.quiet, opts.digests), ImageContext.HEADER)
    except TemplateError as exc:
        raise StatusError(1, f"template parsing error: {exc}") from None
    rows = image_rows(images, trunc=not opts.no_trunc, digest=opts.digests,
                      need_digest=opts.digests or "{{.Digest}}" in formatter.raw)
    try:
        formatter.render(rows, cli.out)
    except TemplateError as exc:
        raise StatusError(1, f"template parsing error: {exc}") from None
    if match and not images and opts.variant == "images" and match in _HINT_WORDS:
        cli.err.write(f'\nNo images found matching "{match}": did you mean '
                      f'"docker image {match}"?\n')
    return 0
