"""The registry client: pull images into the content store, push them back, log in.

The image service calls (all coroutines; see each docstring)::

    dist = Distribution(mirrors=[...], insecure=[...])      # one per daemon
    res = await dist.pull("127.0.0.1:5000/x:1", store=store, progress=emit, auth=auth_dict)
    out = await dist.push("127.0.0.1:5000/x:1", store=store, config=cfg_desc,
                          layers=layer_descs, progress=emit, auth=auth_dict)
    ok = await login("127.0.0.1:5000", "user", "pass")     # {"Status": "Login Succeeded", ...}
    await dist.close()

Modules: ``hosts`` (which URL serves a registry; mirrors, insecure), ``auth`` (challenges,
tokens, login), ``transport`` (the aiohttp session, error mapping), ``client`` (the API of
one registry), ``manifest`` (descriptors, platform selection, building manifests),
``transfer`` (pull and push), ``progress`` (docker's JSON progress messages).
"""

from .auth import Credentials, TokenCache, decode_registry_auth, login, parse_www_authenticate
from .client import RegistryClient
from .hosts import RegistryHosts, normalize_registry
from .manifest import (
    Descriptor,
    Platform,
    build_manifest,
    build_schema2_manifest,
    select_platform,
)
from .progress import short_id
from .transfer import (
    DigestMismatch,
    Distribution,
    PulledLayer,
    PullResult,
    PushResult,
    pull,
    pull_all_tags,
    push,
)
from .transport import Transport

__all__ = [
    "Credentials",
    "Descriptor",
    "DigestMismatch",
    "Distribution",
    "Platform",
    "PullResult",
    "PulledLayer",
    "PushResult",
    "RegistryClient",
    "RegistryHosts",
    "TokenCache",
    "Transport",
    "build_manifest",
    "build_schema2_manifest",
    "decode_registry_auth",
    "login",
    "normalize_registry",
    "parse_www_authenticate",
    "pull",
    "pull_all_tags",
    "push",
    "select_platform",
    "short_id",
]
