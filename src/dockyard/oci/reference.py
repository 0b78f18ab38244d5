"""Image references as docker normalises them (distribution/reference's rules).

``busybox`` → ``docker.io/library/busybox:latest``; ``user/app`` → ``docker.io/user/app``;
``localhost:5000/x`` and ``foo.com/bar`` keep their registry host. The first path component
is a host if it contains ``.`` or ``:``, is ``localhost``, or has an upper-case letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

__all__ = ["DEFAULT_DOMAIN", "Reference", "is_valid_tag", "parse", "parse_normalized"]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_ID_RE = re.compile(r"^[a-f0-9]{64}$")
MAX_NAME = 255


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``domain`` and ``path`` are always set once normalised."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``docker.io/library/busybox``: the repository, fully qualified."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """``busybox``, ``user/app``, ``localhost:5000/x``: as the docker CLI shows it."""
        if self.domain == DEFAULT_DOMAIN:
            p = self.path
            return p[len(OFFICIAL_PREFIX) :] if p.startswith(OFFICIAL_PREFIX) else p
        return self.name

    def with_default_tag(self) -> "Reference":
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG, "")

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    @property
    def repo_and_tag(self) -> str:
        """Fully qualified ``name:tag`` (no digest)."""
        return f"{self.name}:{self.tag}" if self.tag else self.name


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1:
        return DEFAULT_DOMAIN, name
    first = name[:i]
    if "." in first or ":" in first or first == "localhost" or first != first.lower():
        domain, rest = first, name[i + 1 :]
    else:
        domain, rest = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    return domain, rest


def parse_normalized(s: str) -> Reference:
    """Parse a user-typed reference into its fully qualified form (no default tag added).

    Raises InvalidArgument with docker's wording for a malformed reference.
    """
    if not s:
        raise InvalidArgument("invalid reference format")
    if _ID_RE.match(s):
        raise InvalidArgument(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    rest, digest = s, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidArgument("invalid reference format")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidArgument("invalid reference format")
    domain, path = _split_domain(rest)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if not _DOMAIN_RE.match(domain):
        raise InvalidArgument("invalid reference format")
    if not _PATH_RE.match(path):
        if path.lower() != path:
            raise InvalidArgument(
                "invalid reference format: repository name (%s) must be lowercase" % path
            )
        raise InvalidArgument("invalid reference format")
    if len(f"{domain}/{path}") > MAX_NAME:
        raise InvalidArgument(
            "invalid reference format: repository name must not be more than 255 characters"
        )
    return Reference(domain, path, tag, digest)


def parse(s: str) -> Reference:
    """``parse_normalized`` plus the default ``:latest`` tag when there is no tag nor digest."""
    return parse_normalized(s).with_default_tag()
