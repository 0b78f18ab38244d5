"""The import graph is one-way (STYLE.md §2.2, DESIGN.md §3): this test parses every module
and fails on an edge the graph does not allow, including lazy imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dockyard"

# top-level part -> the parts it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "ids": {"errors"},
    "oci": {"errors"},
    "util": {"errors", "oci"},
    "linux": {"errors", "oci"},
    "store": {"errors", "util"},
    "content": {"errors", "oci", "util"},
    "snapshot": {"errors", "ids", "linux", "oci", "store", "util"},
    "distribution": {"content", "errors", "oci", "util"},
    "image": {
        "content",
        "distribution",
        "errors",
        "ids",
        "linux",
        "oci",
        "snapshot",
        "store",
        "util",
    },
    "runtime": {"errors", "ids", "linux", "oci", "util"},
    "network": {"errors", "ids", "linux", "oci", "store", "util"},
    "build": {"errors", "oci", "util"},
    "engine": {
        "build",
        "content",
        "distribution",
        "errors",
        "ids",
        "image",
        "linux",
        "network",
        "oci",
        "runtime",
        "snapshot",
        "store",
        "util",
    },
    "daemon": {"engine", "errors", "ids", "oci", "util"},
    "client": {"errors", "oci", "util"},
    "cli": {"client", "errors", "ids", "oci", "util"},
    "registry": {"oci", "util"},
    "__init__": set(),
}

# third-party packages and the only parts that may import them
THIRD_PARTY: dict[str, set[str]] = {
    "aiohttp": {"daemon", "registry", "distribution", "engine"},
    "bcrypt": {"registry"},
}


def _part(module_file: Path) -> str:
    rel = module_file.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(tree: ast.AST, module_file: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pkg = list(module_file.relative_to(SRC.parent).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "dockyard":  # from dockyard import errors → dockyard.errors
                # __version__ lives in the package itself, which everyone may import
                out += [
                    (node.lineno, "dockyard" if a.name.startswith("__") else f"dockyard.{a.name}")
                    for a in node.names
                ]
            else:
                out.append((node.lineno, name))
    return out


def test_import_graph_is_one_way() -> None:
    bad: list[str] = []
    for f in sorted(SRC.rglob("*.py")):
        part = _part(f)
        allowed = ALLOWED.get(part)
        assert allowed is not None, f"{f}: top-level part {part!r} is not in the layering table"
        for lineno, name in _imports(ast.parse(f.read_text(), str(f)), f):
            top = name.split(".")[0]
            if top == "dockyard":
                parts = name.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                if target not in (part, "__init__") and target not in allowed:
                    bad.append(f"{f.relative_to(SRC)}:{lineno}: {part} -> {target} ({name})")
            elif top in THIRD_PARTY and part not in THIRD_PARTY[top]:
                bad.append(f"{f.relative_to(SRC)}:{lineno}: {part} may not import {top}")
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_checker_catches_a_forbidden_edge(tmp_path: Path) -> None:
    """The checker itself must see an upward import (guards against a vacuous pass)."""
    f = SRC / "runtime" / "x.py"
    tree = ast.parse("def f():\n    from dockyard.engine import engine\n")
    names = [n for _, n in _imports(tree, f)]
    assert names == ["dockyard.engine"]
    tree = ast.parse("from dockyard import engine, errors\n")
    assert [n for _, n in _imports(tree, f)] == ["dockyard.engine", "dockyard.errors"]
    assert "engine" not in ALLOWED["runtime"]
