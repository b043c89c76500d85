"""The package import graph of chunkssl points only down: read with ``ast`` from the sources, no import.

A *unit* is a top-level subpackage or module of ``chunkssl`` (``asr``, ``fileio``, ...). Every import in a
module, lazy (inside a function) ones included, is an edge from its unit to the imported unit. The graph
must have no edge into ``bin`` from outside it, no cycle between units, no private name (leading
underscore) imported from another unit, and no edge from a lower layer of :data:`LAYERS` to a higher one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chunkssl"

# bottom to top; a unit may import units of its own layer (no cycles) and of the layers below it
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"fileio", "audio", "audio_scp", "features", "datadir", "checkpoint", "saved_config", "metrics",
                     "corpora", "synth"}),
    ("models", {"cada", "chunking", "masking", "losses", "encoder", "frontend", "fsq", "espnet_glue"}),
    ("search", {"search"}),
    ("tasks", {"asr", "ssl"}),
    ("streaming", {"streaming"}),
    ("applications", {"st", "codec"}),
    ("deployment", {"deploy"}),
    ("entry points", {"bin"}),
]
LAYER_OF = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


class Edge:
    """One import of ``target`` (names ``names``) by the module ``source`` at ``line``."""

    def __init__(self, source: str, line: int, module: str, names: list[str]):
        self.source, self.line, self.module, self.names = source, line, module, names
        self.src_unit = unit_of(source)
        self.dst_unit = module.split(".")[1] if module.count(".") else (names[0] if names else "")
        if module == "chunkssl" and names:
            self.dst_unit = names[0]

    def __str__(self) -> str:
        what = f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"
        return f"{self.source}:{self.line}: {what}"


def unit_of(module: str) -> str:
    """The top-level unit of a dotted module name under chunkssl (``chunkssl.asr.io`` -> ``asr``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    """Dotted name of a source file under the package (``__init__`` names its package)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, text: str, is_package: bool = False) -> list[Edge]:
    """Every import of a chunkssl module in the code ``text`` of module ``source`` (absolute and relative,
    at any depth: lazy imports inside functions count)."""
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out += [Edge(source, node.lineno, alias.name, []) for alias in node.names
                    if alias.name == "chunkssl" or alias.name.startswith("chunkssl.")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                base = source.split(".") if is_package else source.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            if module == "chunkssl" or module.startswith("chunkssl."):
                names = [alias.name for alias in node.names]
                if module == "chunkssl":  # from chunkssl import fileio, asr: one edge per unit
                    out += [Edge(source, node.lineno, module, [name]) for name in names]
                else:
                    out.append(Edge(source, node.lineno, module, names))
    return out


def edges() -> list[Edge]:
    """Every import of a chunkssl module by a module under chunkssl/."""
    return [e for path in sorted(PACKAGE.rglob("*.py"))
            for e in imports_of(module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")]


def cross_unit(all_edges: list[Edge]) -> list[Edge]:
    """The edges between two different units (the package root ``chunkssl`` itself left out)."""
    return [e for e in all_edges if e.src_unit and e.dst_unit and e.src_unit != e.dst_unit]


def cycles(all_edges: list[Edge]) -> list[list[str]]:
    """The strongly connected groups of more than one unit (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in cross_unit(all_edges):
        graph[e.src_unit].add(e.dst_unit)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _report(findings: list[str]) -> str:
    return "\n".join(["", *findings])


def test_nothing_outside_bin_imports_bin():
    """``chunkssl.bin`` holds entry points only: no library module imports it, nor one entry point another."""
    found = [str(e) for e in edges() if e.dst_unit == "bin"]
    assert not found, _report(found)


def shortest_cycle(all_edges: list[Edge], start: str, members: set[str]) -> list[Edge]:
    """The edges (one per step) of a shortest way from ``start`` back to itself inside ``members``."""
    step: dict[tuple[str, str], Edge] = {}
    for e in cross_unit(all_edges):
        if e.src_unit in members and e.dst_unit in members:
            step.setdefault((e.src_unit, e.dst_unit), e)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for u in frontier:
            for (a, b) in sorted(step):
                if a != u or b in came_from:
                    continue
                came_from[b] = u
                if b == start:
                    path, v = [], start
                    while True:
                        path.append(step[(came_from[v], v)])
                        v = came_from[v]
                        if v == start:
                            return path[::-1]
                nxt.append(b)
        frontier = nxt
    return []


def test_no_cycle_between_packages():
    """No two units import each other, directly or through others."""
    all_edges = edges()
    found, seen = [], set()
    for group in cycles(all_edges):
        for unit in group:
            path = shortest_cycle(all_edges, unit, set(group))
            key = frozenset((e.src_unit, e.dst_unit) for e in path)
            if path and key not in seen:
                seen.add(key)
                found.append("cycle " + " -> ".join([e.src_unit for e in path] + [unit]) + ":")
                found += [f"  {e}" for e in path]
    assert not found, _report(found)


def test_no_private_name_across_packages():
    """A name with a leading underscore (or a private module) is used only inside its own unit."""
    found = [str(e) for e in cross_unit(edges())
             if any(_is_private(n) for n in e.names) or any(_is_private(p) for p in e.module.split("."))]
    assert not found, _report(found)


def test_imports_point_down_the_layers():
    """Every unit is in :data:`LAYERS` and imports only its own layer and those below."""
    all_edges = edges()
    units = {e.src_unit for e in all_edges} | {e.dst_unit for e in all_edges}
    units |= {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    found = [f"{u}: not in the layer table" for u in sorted(units - set(LAYER_OF) - {""})]
    for e in cross_unit(all_edges):
        src, dst = LAYER_OF.get(e.src_unit), LAYER_OF.get(e.dst_unit)
        if src is not None and dst is not None and dst > src:
            found.append(f"{e}  ({e.src_unit}: {LAYERS[src][0]} -> {e.dst_unit}: {LAYERS[dst][0]})")
    assert not found, _report(found)


def test_the_graph_reader_sees_every_kind_of_import():
    """The reader finds absolute, package-root, lazy and relative imports (a self-check of this test)."""
    text = ("import chunkssl.audio\nfrom . import io\nfrom ..fileio import DataError\n"
            "from chunkssl import features, cada\n\ndef f():\n    from chunkssl.fsq.quantizer import _product\n")
    found = [(e.dst_unit, e.names) for e in imports_of("chunkssl.asr.decode", text)]
    assert found == [("audio", []), ("asr", ["io"]), ("fileio", ["DataError"]), ("features", ["features"]),
                     ("cada", ["cada"]), ("fsq", ["_product"])]
    assert [e.dst_unit for e in imports_of("chunkssl.asr", "from .model import x\n", is_package=True)] == ["asr"]
    assert any(e.source == "chunkssl.asr.model" and e.module == "chunkssl.checkpoint" for e in edges()), \
        "the lazy import of chunkssl.checkpoint inside asr.model.load_asr was not seen"
