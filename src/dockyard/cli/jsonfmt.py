"""JSON re-layout that keeps the daemon's bytes: Go's ``json.Indent`` and ``json.Compact``.

``docker inspect`` prints the raw response re-indented (key order, number spelling and
string escapes stay exactly as the daemon wrote them), so these work on the text rather
than on decoded values.
"""

from __future__ import annotations

__all__ = ["compact", "indent"]


def _scan(src: str, emit_ws: bool, prefix: str, unit: str) -> str:
    out: list[str] = []
    depth = 0
    i, n = 0, len(src)
    need_indent = False  # after an opening bracket: newline+indent before the next value
    while i < n:
        c = src[i]
        if c == '"':
            j = i + 1
            while j < n:
                if src[j] == "\\":
                    j += 2
                    continue
                if src[j] == '"':
                    break
                j += 1
            if need_indent:
                out.append("\n" + prefix + unit * depth)
                need_indent = False
            out.append(src[i:j + 1])
            i = j + 1
            continue
        if c in " \t\r\n":
            i += 1
            continue
        if not emit_ws:
            out.append(c)
            i += 1
            continue
        if c in "{[":
            if need_indent:
                out.append("\n" + prefix + unit * depth)
            out.append(c)
            depth += 1
            need_indent = True
        elif c in "}]":
            depth -= 1
            if need_indent:  # empty object or array stays compact
                need_indent = False
            else:
                out.append("\n" + prefix + unit * depth)
            out.append(c)
        elif c == ",":
            out.append(",")
            need_indent = True
        elif c == ":":
            out.append(": ")
        else:
            if need_indent:
                out.append("\n" + prefix + unit * depth)
                need_indent = False
            out.append(c)
        i += 1
    return "".join(out)


def indent(src: str, prefix: str = "", unit: str = "    ") -> str:
    return _scan(src, True, prefix, unit)


def compact(src: str) -> str:
    return _scan(src, False, "", "")
