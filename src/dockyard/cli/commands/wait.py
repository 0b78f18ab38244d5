"""``dockyard wait``: block until containers stop, print their exit codes."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases, error_text
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "wait CONTAINER [CONTAINER...]",
                   "Block until one or more containers stop, then print their exit codes",
                   args=("min", 1), aliases=aliases("container wait", "wait"))


def run(cli: Cli, opts: Parsed) -> int:
    errs = []
    for ref in opts.args:
        try:
            result = cli.client.container_wait(ref).result()
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            errs.append(error_text(exc))
            continue
        cli.print(int(result.get("StatusCode", 0) or 0))
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0
