"""The docker CLI's client configuration file (``config.json``) and registry credentials.

Location: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``. Credentials live
in ``auths`` as ``{"<server>": {"auth": base64("user:password")}}`` (plus ``identitytoken``
when the registry issued one); Docker Hub's key is ``https://index.docker.io/v1/``. Keys
this module does not know (``credsStore``, ``psFormat``, ``proxies``...) are kept as they are.

``encode_auth`` builds the ``X-Registry-Auth`` header value: base64url of the JSON auth
config (``{}`` → ``e30=`` when anonymous), as the Go client's ``EncodeAuthConfig`` does.
"""

from __future__ import annotations

import os

from dockyard.client.jsoncodec import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "INDEX_SERVER",
    "ConfigFile",
    "auth_key_for_domain",
    "config_dir",
    "convert_to_hostname",
    "encode_auth",
    "encode_registry_config",
]

INDEX_SERVER = "https://index.docker.io/v1/"


def config_dir(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    d = env.get("DOCKER_CONFIG", "")
    if d:
        return d
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".docker")


def auth_key_for_domain(domain: str) -> str:
    """The ``auths`` key for a registry domain (Docker Hub has a legacy URL key)."""
    if domain in ("docker.io", "index.docker.io"):
        return INDEX_SERVER
    return domain


def convert_to_hostname(maybe_url: str) -> str:
    """``https://host:5000/v2/`` → ``host:5000``; ``host/path`` → ``host``."""
    s = maybe_url
    if "://" in s:
        s = s.split("://", 1)[1]
    return s.split("/", 1)[0]


def encode_auth(auth: Mapping[str, str] | None) -> str:
    """The ``X-Registry-Auth`` value for an auth config (empty fields omitted)."""
    import base64

    fields = ("username", "password", "auth", "email", "serveraddress", "identitytoken",
              "registrytoken")
    obj = {k: auth[k] for k in fields if auth and auth.get(k)}
    raw = dumps(obj, compact=True).encode()
    return base64.urlsafe_b64encode(raw).decode()


def encode_registry_config(auths: Mapping[str, Mapping[str, str]]) -> str:
    """The ``X-Registry-Config`` value (build): base64url JSON map server → auth config."""
    import base64

    raw = dumps({k: dict(v) for k, v in auths.items()}, compact=True).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_auth(auth: str) -> tuple[str, str]:
    import base64

    if not auth:
        return "", ""
    try:
        raw = base64.b64decode(auth).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    user, sep, password = raw.partition(":")
    if not sep:
        return "", ""
    return user, password.strip("\x00")


class ConfigFile:
    """A loaded ``config.json``; ``save`` writes it back atomically with mode 0600."""

    def __init__(self, path: str, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data if data is not None else {}

    @classmethod
    def load(cls, directory: str | None = None) -> ConfigFile:
        d = directory or config_dir()
        path = os.path.join(d, "config.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return cls(path)
        except OSError:
            return cls(path)
        try:
            data = loads(raw) if raw.strip() else {}
        except ValueError as exc:
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(f"loading config file: {path}: {exc}") from exc
        return cls(path, data if isinstance(data, dict) else {})

    # -- simple settings -----------------------------------------------------------
    @property
    def detach_keys(self) -> str:
        return str(self.data.get("detachKeys", "") or "")

    @property
    def ps_format(self) -> str:
        return str(self.data.get("psFormat", "") or "")

    @property
    def images_format(self) -> str:
        return str(self.data.get("imagesFormat", "") or "")

    # -- credentials ---------------------------------------------------------------
    def _auths(self) -> dict[str, Any]:
        auths = self.data.get("auths")
        if not isinstance(auths, dict):
            auths = {}
            self.data["auths"] = auths
        return auths

    def all_auths(self) -> dict[str, dict[str, str]]:
        """Every stored credential, decoded, with its ``serveraddress``."""
        out: dict[str, dict[str, str]] = {}
        for key in list(self.data.get("auths", {}) or {}):
            out[key] = self.get_auth(key)
        return out

    def get_auth(self, server: str) -> dict[str, str]:
        """The decoded auth config for ``server`` (a key or its host name), or ``{}``-like."""
        auths = self.data.get("auths") or {}
        entry = auths.get(server)
        key = server
        if entry is None:
            for k, v in auths.items():
                if convert_to_hostname(k) == server:
                    entry, key = v, k
                    break
        if not isinstance(entry, dict):
            return {}
        user, password = _decode_auth(str(entry.get("auth", "")))
        out = {
            "username": user or str(entry.get("username", "") or ""),
            "password": password or str(entry.get("password", "") or ""),
            "serveraddress": key,
        }
        if entry.get("identitytoken"):
            out["identitytoken"] = str(entry["identitytoken"])
        if entry.get("email"):
            out["email"] = str(entry["email"])
        return {k: v for k, v in out.items() if v}

    def store_auth(self, server: str, username: str, password: str,
                   identitytoken: str = "") -> bool:
        """Record credentials; returns False when the same ones were stored already."""
        import base64

        entry: dict[str, str] = {}
        if username or password:
            entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
        if identitytoken:
            entry["identitytoken"] = identitytoken
        auths = self._auths()
        if auths.get(server) == entry:
            return False
        auths[server] = entry
        self.save()
        return True

    def erase_auth(self, server: str) -> bool:
        auths = self.data.get("auths") or {}
        if server not in auths:
            return False
        del auths[server]
        self.save()
        return True

    def save(self) -> None:
        import json

        from dockyard.util.atomicfile import write_atomic

        d = os.path.dirname(self.path)
        os.makedirs(d, mode=0o700, exist_ok=True)
        text = json.dumps(self.data, indent="\t", ensure_ascii=False)
        write_atomic(self.path, text.encode(), mode=0o600)
