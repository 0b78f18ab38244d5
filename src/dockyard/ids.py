"""Identifiers: 64-hex ids, short ids, container names, unique-prefix resolution."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable

from dockyard.errors import InvalidArgument, NotFound

__all__ = [
    "NAME_RE",
    "generate_id",
    "is_full_id",
    "random_name",
    "resolve_prefix",
    "short_id",
    "validate_name",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: docker's container name rule (``restrictedNamePattern``), leading ``/`` optional
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def generate_id() -> str:
    """A random 64-hex id whose 12-char short form is not all digits (docker avoids those,
    since a numeric short id would be read as a number by some tools)."""
    while True:
        ident = os.urandom(32).hex()
        if not ident[:12].isdigit():
            return ident


def short_id(ident: str) -> str:
    """The 12-character form; a ``sha256:`` prefix is dropped first."""
    if ident.startswith("sha256:"):
        ident = ident[7:]
    return ident[:12]


def is_full_id(s: str) -> bool:
    return bool(_HEX64.match(s))


def validate_name(name: str) -> str:
    """Return the name with its leading ``/``, or raise InvalidArgument with docker's text."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name.lstrip('/')}), "
            "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name if name.startswith("/") else "/" + name


def resolve_prefix(prefix: str, ids: Iterable[str], kind: str = "container") -> str:
    """Resolve a unique id prefix among ``ids``; NotFound if none, InvalidArgument if several."""
    if not prefix or not re.fullmatch(r"[0-9a-f]+", prefix):
        raise NotFound(f"No such {kind}: {prefix}")
    found = [i for i in ids if i.startswith(prefix)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(f"No such {kind}: {prefix}")
    raise InvalidArgument(f"multiple IDs found with provided prefix: {prefix}")


# Our own word lists (not docker's): harbour and shipping words, and notable engineers and
# scientists. Names look like docker's ("adjective_surname") without copying its lists.
_LEFT = (
    "agile",
    "amber",
    "ancient",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "careful",
    "cheerful",
    "clever",
    "coastal",
    "cosmic",
    "crisp",
    "curious",
    "daring",
    "dazzling",
    "eager",
    "earnest",
    "electric",
    "elegant",
    "epic",
    "fearless",
    "fervent",
    "festive",
    "fluent",
    "focused",
    "frosty",
    "gallant",
    "gentle",
    "gleaming",
    "golden",
    "graceful",
    "happy",
    "hardy",
    "hearty",
    "humble",
    "jolly",
    "keen",
    "kind",
    "lively",
    "loyal",
    "lucid",
    "lucky",
    "mellow",
    "merry",
    "mighty",
    "modest",
    "nautical",
    "nimble",
    "noble",
    "patient",
    "placid",
    "plucky",
    "polished",
    "quick",
    "quiet",
    "radiant",
    "rapid",
    "relaxed",
    "resolute",
    "rustic",
    "salty",
    "serene",
    "sharp",
    "shiny",
    "silent",
    "smooth",
    "snug",
    "sober",
    "solid",
    "sparkling",
    "spirited",
    "stable",
    "steady",
    "stoic",
    "sturdy",
    "sunny",
    "swift",
    "tidal",
    "tidy",
    "tranquil",
    "trusty",
    "upbeat",
    "valiant",
    "vibrant",
    "vigilant",
    "vivid",
    "warm",
    "wavy",
    "wise",
    "witty",
    "zealous",
)
_RIGHT = (
    "agnesi",
    "babbage",
    "backus",
    "bartik",
    "bell",
    "berners",
    "borg",
    "boole",
    "cerf",
    "clarke",
    "codd",
    "conway",
    "cray",
    "curie",
    "dijkstra",
    "easley",
    "engelbart",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "floyd",
    "franklin",
    "gauss",
    "goldberg",
    "hamilton",
    "hamming",
    "hawking",
    "hertz",
    "hopper",
    "hypatia",
    "jackson",
    "johnson",
    "kahan",
    "kay",
    "kepler",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leavitt",
    "liskov",
    "lovelace",
    "maxwell",
    "mcclintock",
    "meitner",
    "minsky",
    "mirzakhani",
    "morse",
    "napier",
    "newton",
    "noether",
    "noyce",
    "pascal",
    "perlman",
    "pike",
    "planck",
    "ramanujan",
    "ritchie",
    "sammet",
    "shannon",
    "shockley",
    "somerville",
    "stallman",
    "swartz",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wilkes",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
)


def random_name(
    taken: set[str] | frozenset[str] = frozenset(), rng: random.Random | None = None
) -> str:
    """A free ``adjective_surname`` name (without the leading ``/``)."""
    r = rng or random.SystemRandom()
    for attempt in range(100):
        name = f"{r.choice(_LEFT)}_{r.choice(_RIGHT)}"
        if attempt >= 10:
            name += str(r.randint(0, 9))
        if name not in taken and "/" + name not in taken:
            return name
    raise NotFound("could not find a free container name")  # pragma: no cover
