"""Pulling an image with progress output (``pull``, and ``run``/``create`` on a missing image)."""

from __future__ import annotations

from dockyard.cli.app import Cli

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.cli._types import TextWriter

__all__ = ["pull_image", "show_progress"]


def show_progress(cli: Cli, resp: object, to_stderr: bool = False, quiet: bool = False,
                  aux: object = None) -> None:
    """Render a JSON progress response on stdout (or stderr); raises JSONMessageError."""
    from dockyard.cli.progress import display_stream
    from dockyard.client.streams import iter_json_messages

    which = "stderr" if to_stderr else "stdout"
    out: TextWriter = cli.err if to_stderr else cli.out
    if quiet:
        import io

        out = io.StringIO()
    is_term = (not quiet) and cli.streams.is_terminal(which)
    width = 200
    if is_term:
        from dockyard.cli.term import get_size

        width = get_size(cli.streams.fd(which))[1] or 200
    try:
        display_stream(iter_json_messages(resp.iter_raw()), out, is_term, width,  # type: ignore[attr-defined]
                       aux)  # type: ignore[arg-type]
    finally:
        resp.close()  # type: ignore[attr-defined]


def pull_image(cli: Cli, image: str, *, platform: str = "", quiet: bool = False,
               to_stderr: bool = False, all_tags: bool = False) -> str:
    """Pull ``image``; returns the reference pulled (``docker.io/library/busybox:latest``)."""
    from dockyard.oci.reference import parse_normalized

    ref = parse_normalized(image)
    if ref.digest:
        tag = ref.digest
    elif ref.tag:
        tag = ref.tag
    else:
        tag = "" if all_tags else "latest"
    resp = cli.client.image_create(ref.name, tag, platform=platform,
                                   registry_auth=cli.registry_auth(ref.domain))
    show_progress(cli, resp, to_stderr=to_stderr, quiet=quiet)
    if all_tags:
        return ref.name
    return f"{ref.name}@{ref.digest}" if ref.digest else f"{ref.name}:{tag}"
