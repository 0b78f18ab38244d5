"""Helpers shared by the command modules (help texts, multi-object loops, references)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    T = TypeVar("T")

__all__ = [
    "FORMAT_HELP",
    "INSPECT_FORMAT_HELP",
    "aliases",
    "error_text",
    "for_each",
    "parallel",
]

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting "
    "output with templates"
)

INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting "
    "output with templates"
)



def aliases(*paths: str) -> str:
    return ", ".join(f"dockyard {p}" for p in paths)


def error_text(exc: BaseException) -> str:
    """An error as docker prints it (daemon errors get their prefix)."""
    msg = str(exc)
    if getattr(exc, "from_daemon", False):
        return f"Error response from daemon: {msg}"
    return msg


def parallel(items: Sequence[str], op: Callable[[str], T]) -> list[tuple[str, T | None,
                                                                           BaseException | None]]:
    """Run ``op`` on every item concurrently (docker's ``parallelOperation``, at most 50 at a
    time); results come back in the order of ``items``."""
    import threading

    results: list[tuple[str, T | None, BaseException | None]] = [(i, None, None) for i in items]
    sem = threading.Semaphore(50)

    def work(idx: int, item: str) -> None:
        with sem:
            try:
                results[idx] = (item, op(item), None)
            except BaseException as exc:  # noqa: BLE001
                results[idx] = (item, None, exc)

    if len(items) == 1:
        work(0, items[0])
        return results
    threads = [threading.Thread(target=work, args=(i, it), daemon=True)
               for i, it in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def for_each(cli: Cli, items: Sequence[str], op: Callable[[str], object],
             concurrent: bool = True) -> None:
    """Apply ``op`` to each item; print the item on success; join the errors (exit 1)."""
    errs: list[str] = []
    if concurrent:
        results = parallel(items, op)
    else:
        results = []
        for it in items:
            try:
                results.append((it, op(it), None))
            except Exception as exc:  # noqa: BLE001
                results.append((it, None, exc))
    for item, _, failure in results:
        if failure is not None:
            if isinstance(failure, KeyboardInterrupt):
                raise failure
            errs.append(error_text(failure))
            continue
        cli.print(item)
    if errs:
        raise StatusError(1, "\n".join(errs))
