"""Which URLs serve a registry name: Docker Hub, mirrors, and the http/https rule.

A reference's ``domain`` (``docker.io``, ``127.0.0.1:5000``, ``registry.example.com``) names
a registry; an :class:`Endpoint` is one base URL that serves it. Docker's rules, as the
daemon applies them:

* ``docker.io`` is served by ``https://registry-1.docker.io``. Pulls try every
  ``--registry-mirror`` first, in order; pushes never go to a mirror.
* A registry is *insecure* when its host is loopback (``127.0.0.0/8``, ``::1``,
  ``localhost``) or is listed with ``--insecure-registry`` (``host``, ``host:port`` or a
  CIDR). A secure registry is reached over https only, with certificate checks. An insecure
  one is tried over https without certificate checks first, then over plain http, which is
  what dockerd does (the https attempt against a plain-http server fails at the TLS
  handshake, in about a millisecond on loopback).

Nothing here resolves a host name: a name is insecure only if listed, or ``localhost``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

from dockyard.errors import InvalidArgument

__all__ = [
    "DOCKER_HUB_API_URL",
    "DOCKER_HUB_DOMAIN",
    "INDEX_SERVER",
    "Endpoint",
    "RegistryHosts",
    "is_loopback_host",
    "normalize_registry",
    "split_host_port",
]

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_API_URL = "https://registry-1.docker.io"
#: the key docker's config.json and ``docker login`` use for Docker Hub
INDEX_SERVER = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                          "registry.hub.docker.com"})


@dataclass(frozen=True)
class Endpoint:
    """One base URL (no path) that serves a registry."""

    url: URL
    mirror: bool = False
    tls_verify: bool = True

    @property
    def host(self) -> str:
        """``host[:port]`` as it appears in URLs (the origin requests are authorised for)."""
        return str(self.url.raw_authority)

    def __str__(self) -> str:
        return str(self.url)


def split_host_port(hostport: str) -> tuple[str, int | None]:
    """``127.0.0.1:5000`` → ``("127.0.0.1", 5000)``; ``[::1]:5000`` → ``("::1", 5000)``."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            raise InvalidArgument(f"invalid registry host: {hostport!r}")
        host, rest = hostport[1:end], hostport[end + 1:]
        if rest.startswith(":") and rest[1:].isdigit():
            return host, int(rest[1:])
        return host, None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        if port.isdigit():
            return host, int(port)
    return hostport, None


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1`` (a host without its port)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_registry(server_address: str) -> str:
    """What ``docker login SERVER`` names, as a reference domain.

    ``https://index.docker.io/v1/``, ``index.docker.io`` and ``""`` → ``docker.io``;
    ``http://127.0.0.1:5000/`` → ``127.0.0.1:5000``.
    """
    s = server_address.strip()
    if "://" in s:
        s = s.split("://", 1)[1]
    s = s.split("/", 1)[0]
    if not s or s.lower() in _HUB_ALIASES:
        return DOCKER_HUB_DOMAIN
    return s


class RegistryHosts:
    """The daemon's registry options: mirrors (for docker.io) and insecure registries.

    ``hub_url`` replaces ``https://registry-1.docker.io`` as Docker Hub's endpoint; tests
    point it at a loopback server so that nothing leaves the machine.
    """

    def __init__(self, mirrors: Iterable[str] = (), insecure: Iterable[str] = (), *,
                 hub_url: str = DOCKER_HUB_API_URL) -> None:
        self.mirrors: tuple[URL, ...] = tuple(self._mirror_url(m) for m in mirrors)
        self._insecure_hosts: set[str] = set()
        self._insecure_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in insecure:
            e = entry.strip()
            if "://" in e:
                e = e.split("://", 1)[1]
            e = e.rstrip("/")
            if not e:
                continue
            if "/" in e:
                try:
                    self._insecure_nets.append(ipaddress.ip_network(e, strict=False))
                    continue
                except ValueError:
                    raise InvalidArgument(f"invalid insecure registry: {entry!r}") from None
            self._insecure_hosts.add(e.lower())
        self.hub_url = URL(hub_url.rstrip("/"))

    @staticmethod
    def _mirror_url(m: str) -> URL:
        u = URL(m.strip())
        if u.scheme not in ("http", "https") or not u.host:
            raise InvalidArgument(f"invalid mirror: {m!r} is not an http(s) URL")
        if u.path not in ("", "/") or u.query_string or u.fragment:
            raise InvalidArgument(
                f"invalid mirror: path, query, or fragment at end of the URI {m!r}")
        return u.with_path("")

    def is_insecure(self, hostport: str) -> bool:
        hp = hostport.lower()
        host, _ = split_host_port(hp)
        if is_loopback_host(host) or hp in self._insecure_hosts or host in self._insecure_hosts:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self._insecure_nets)

    def endpoints(self, domain: str, *, push: bool = False) -> list[Endpoint]:
        """Where to send requests for ``domain``, in the order to try them."""
        out: list[Endpoint] = []
        if domain == DOCKER_HUB_DOMAIN:
            if not push:
                for m in self.mirrors:
                    out.append(Endpoint(m, mirror=True,
                                        tls_verify=not self.is_insecure(str(m.raw_authority))))
            out += self._for_url(self.hub_url)
            return out
        host = domain
        if self.is_insecure(host):
            return [Endpoint(URL(f"https://{host}"), tls_verify=False),
                    Endpoint(URL(f"http://{host}"), tls_verify=False)]
        return [Endpoint(URL(f"https://{host}"))]

    def _for_url(self, url: URL) -> list[Endpoint]:
        hostport = str(url.raw_authority)
        if url.scheme == "http":
            return [Endpoint(url, tls_verify=False)]
        if self.is_insecure(hostport):
            return [Endpoint(url, tls_verify=False),
                    Endpoint(url.with_scheme("http"), tls_verify=False)]
        return [Endpoint(url)]

    def ssl_for(self, url: URL) -> bool:
        """The ``ssl`` argument for a request to ``url`` (False: no certificate check)."""
        if url.scheme != "https":
            return True
        return not self.is_insecure(str(url.raw_authority))

