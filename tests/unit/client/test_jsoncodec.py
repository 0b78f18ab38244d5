"""dockyard.client.jsoncodec agrees with json, errors included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.client.jsoncodec import dumps, loads

GOOD = [
    '{"a": [1, 2.5, -3e10, true, false, null, "x\\u00e9\\ud83d\\ude00"]}',
    " [] ",
    '\n{"k": {"n": NaN, "i": Infinity, "m": -Infinity}}\r\n',
    '"s"',
    "12",
    "{}",
    '{"Id":"abc","Warnings":[]}\n',
    '{"big": 123456789012345678901234567890, "f": 1e400}',
]

BAD: list[Any] = ["", " ", "{", "[1,]", '{"a":1} x', "\ufeff{}", b"\xff", "nul", "[1] [2]",
                  '{"a": "\x01"}', b'\xef\xbb\xbf{"a": 1}', bytearray(b"[1]")]


@pytest.mark.parametrize("text", GOOD)
def test_loads_matches_json(text: str) -> None:
    for data in (text, text.encode()):
        assert repr(loads(data)) == repr(json.loads(data))


def _outcome(fn: Any, data: Any) -> tuple[str, str]:
    try:
        return "ok", repr(fn(data))
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("data", BAD)
def test_loads_errors_are_jsons(data: Any) -> None:
    assert _outcome(loads, data) == _outcome(json.loads, data)


OBJS: list[Any] = [
    {"Image": "busybox", "Cmd": ["true"], "Env": ["A=é", "B=\u2028"], "n": 1.5,
     "i": 10**20, "b": True, "z": None, "t": (1, 2)},
    [], {}, 'x"y\\', 3, float("nan"), [float("inf"), -0.0],
    {1: 2, 2.5: "a", None: 1, False: 0},
]


@pytest.mark.parametrize("obj", OBJS)
def test_dumps_matches_json(obj: Any) -> None:
    assert dumps(obj) == json.dumps(obj)
    assert dumps(obj, compact=True) == json.dumps(obj, separators=(",", ":"))


def test_dumps_errors() -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        dumps({"a": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        dumps(loop)
    # a failed call leaves nothing behind that a later call could trip over
    shared = [1]
    with pytest.raises(TypeError):
        dumps([shared, object()])
    assert dumps([shared, shared]) == "[[1], [1]]"
