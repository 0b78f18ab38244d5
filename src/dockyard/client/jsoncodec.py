"""``loads``/``dumps`` for the client's requests and replies, without importing ``json``.

Every CLI command that talks to the daemon decodes JSON, and importing the ``json``
package costs 2 ms here on its own, about 10 ms when it is the first to import ``re``
(which it does at import time) with ``enum``, ``functools`` and ``collections``. The
parsing and encoding themselves are done in C by ``_json``, which ``json`` wraps; this
module wraps it the same way, for the common case only:

* ``loads`` takes ``bytes`` (UTF-8) or ``str`` and returns what ``json.loads`` returns.
  Anything unusual (not UTF-8, a BOM, malformed or trailing data) is handed to
  ``json.loads`` itself, so errors are exactly ``json``'s (``json.JSONDecodeError``).
* ``dumps`` is ``json.dumps`` with ``ensure_ascii=True``, ``check_circular=True``,
  ``allow_nan=True`` and no indent; ``compact=True`` means ``separators=(",", ":")``.
  An unserialisable object raises ``TypeError`` with ``json``'s message.

Output indented for people (``inspect``, ``config.json``) still uses ``json``.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "loads"]

_WS = " \t\n\r"  # JSON's whitespace, what json.decoder's WHITESPACE matches


class _DecoderSettings:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_DecoderSettings())  # type: ignore[arg-type]  # duck-typed context


def _with_json(data: str | bytes | bytearray) -> Any:
    import json

    return json.loads(data)


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``."""
    if isinstance(data, str):
        s = data
    else:
        try:
            s = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return _with_json(data)
    i = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, i)
    except StopIteration:
        return _with_json(data)  # no value at i: json raises the error
    if end != len(s) and s[end:].strip(_WS):
        return _with_json(data)  # trailing data: json raises the error
    return obj


def _default(o: object) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: Any, *, compact: bool = False) -> str:
    """``json.dumps(obj)``, or with ``separators=(",", ":")`` when ``compact``."""
    if isinstance(obj, str):
        return str(_json.encode_basestring_ascii(obj))
    item_sep, key_sep = (",", ":") if compact else (", ", ": ")
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    # skipkeys, allow_nan), as json.JSONEncoder.iterencode passes them; the markers dict
    # (circular reference check) is new for each call, as in json
    encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None,
                                key_sep, item_sep, False, False, True)
    return "".join(encode(obj, 0))
