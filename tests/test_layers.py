"""The layer rules of docs/architecture.md, checked on the source: every `tb_gradflow` import,
at module level or inside a function, goes down the layers (or stays in its own layer), and no
chain of imports comes back to where it started. Beside test_cli.py's check that the CLI runs
without importing TensorFlow, this is what keeps the viewer side free of the capture side.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tb_gradflow"

# (layer, rank, module prefixes), as in docs/architecture.md. A module may import a module of a
# lower rank, or of its own layer; layers of the same rank never import each other.
LAYERS = [
    ("base", 0, ["tb_gradflow.vocabulary", "tb_gradflow.json_values", "tb_gradflow.proto",
              "tb_gradflow.install_hint", "tb_gradflow.layer_norms"]),
    ("records", 1, ["tb_gradflow.report"]),
    ("format", 2, ["tb_gradflow.format"]),
    ("capture", 3, ["tb_gradflow.capture", "tb_gradflow.summary", "tb_gradflow.keras", "tb_gradflow.torch"]),
    ("reading", 3, ["tb_gradflow.reading", "tb_gradflow.logcheck"]),
    (
        "telling",
        4,
        [
            "tb_gradflow.story",
            "tb_gradflow.timeline",
            "tb_gradflow.diagnosis",
            "tb_gradflow.terminal_text",
            "tb_gradflow.route_json",
        ],
    ),
    ("plugin", 5, ["tb_gradflow.plugin"]),
    ("export", 5, ["tb_gradflow.export"]),
    (
        "entry",
        6,
        ["tb_gradflow.cli", "tb_gradflow.__main__", "tb_gradflow.presenting", "tb_gradflow"],
    ),
]


def layer_of(module: str) -> tuple[str, int]:
    """The layer of `module`: the one with the longest prefix that names it or a parent (the
    package itself, "tb_gradflow", names only its `__init__`)."""
    best: tuple[int, str, int] | None = None
    for name, rank, prefixes in LAYERS:
        for prefix in prefixes:
            under = module.startswith(prefix + ".") and prefix != "tb_gradflow"
            if (module == prefix or under) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name, rank)
    if best is None:
        raise AssertionError(f"{module} is in no layer of docs/architecture.md")
    return best[1], best[2]


def imports_of(sources: dict[str, str]) -> dict[str, set[str]]:
    """For each module (dotted name -> source), the package modules it imports anywhere in it."""
    edges: dict[str, set[str]] = {}
    for module, source in sources.items():
        found: set[str] = set()
        package = module if _is_package(module, sources) else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in sources else base)
        edges[module] = {m for m in found if m in sources and m != module}
    return edges


def _is_package(module: str, sources: dict[str, str]) -> bool:
    return any(m.startswith(module + ".") for m in sources)


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Imports against the layer rules, as "a -> b (layer a -> layer b)"."""
    out = []
    for module, targets in sorted(edges.items()):
        layer, rank = layer_of(module)
        for target in sorted(targets):
            other, other_rank = layer_of(target)
            if other != layer and other_rank >= rank:
                out.append(f"{module} -> {target} ({layer} -> {other})")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def package_sources() -> dict[str, str]:
    sources = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


# Imports against the rules that are known and to be removed: OpRecord.source_path (from main's
# "open in editor") reaches capture.sources.absolute_source, which is free of TensorFlow but lives
# in the capture layer; moving it (and the table capture fills) to a base module lifts this.
_KNOWN: list[str] = ["tb_gradflow.report -> tb_gradflow.capture.sources (records -> capture)"]


def test_every_import_goes_down_the_layers():
    assert violations(imports_of(package_sources())) == _KNOWN


def test_no_import_cycle():
    assert cycles(imports_of(package_sources())) == []


def test_every_module_is_in_a_layer():
    for module in package_sources():
        layer_of(module)


# The checks themselves, on made-up packages: they must catch what they are for.
_FAKE = {
    "tb_gradflow": "",
    "tb_gradflow.report": "def f():\n    from tb_gradflow.story import story\n",
    "tb_gradflow.story": "from tb_gradflow import report\n",
    "tb_gradflow.plugin": "",
    "tb_gradflow.plugin.views": "from ..export import bundle\n",
    "tb_gradflow.export": "",
    "tb_gradflow.export.bundle": "import tb_gradflow.vocabulary\n",
    "tb_gradflow.vocabulary": "",
}


def test_an_import_inside_a_function_against_the_layers_is_caught():
    found = violations(imports_of(_FAKE))
    assert "tb_gradflow.report -> tb_gradflow.story (records -> telling)" in found
    assert "tb_gradflow.plugin.views -> tb_gradflow.export.bundle (plugin -> export)" in found
    assert len(found) == 2


def test_a_cycle_closed_inside_a_function_is_caught():
    assert cycles(imports_of(_FAKE)) == [["tb_gradflow.report", "tb_gradflow.story"]]


@pytest.mark.parametrize("module", ["tb_gradflow.nowhere", "other.report"])
def test_a_module_in_no_layer_is_refused(module):
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of(module)
