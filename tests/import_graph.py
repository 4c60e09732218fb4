"""pngan's import graph, read statically from the source with `ast` (nothing is imported).

An edge is any way a module makes Python load another pngan module: `import x` and
`from x import y` at module level or inside functions and methods, a literal
`importlib.import_module("pngan.x")` / `__import__("pngan.x")`, and a lazy
"pngan.x:Class" string such as the registries in pngan/models/__init__.py and
pngan/noise/__init__.py hold. Loading a module also runs its packages' __init__.py files
(`import pngan.models.smnet` runs pngan/__init__.py and pngan/models/__init__.py); those are
not edges of the graph (the source does not name them) but `closure` includes them.

Used by tests/test_layers.py (layers and cycles) and tests/test_pipeline.py (stage deps).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pngan"

# "pngan.models.smnet:SMNet": a module imported on first use (Registry, trusted settings).
LAZY_PATH = re.compile(r"(pngan(?:\.\w+)*):\w+(?:\.\w+)*")
IMPORT_CALLS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. "pngan.stages.prepare"
    target: str  # imported pngan module, e.g. "pngan.data.readers"
    where: str  # "pngan/stages/prepare.py:12"


def module_files(root: Path = REPO, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> source file of every .py file under root/package (a package is its __init__.py)."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """The pngan module a dotted name loads: itself, else its longest prefix that is a module
    (`pngan.models.build` -> pngan.models); None outside pngan."""
    modules = set(modules)
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_in_source(source: str, module: str, modules: Iterable[str], is_package: bool = False,
                      filename: str = "<source>", line_offset: int = 0) -> list[Edge]:
    """Every pngan module that `source` (the text of `module`) makes Python load."""
    modules = set(modules)
    tree = ast.parse(source, filename=filename)
    edges: list[Edge] = []

    def add(name: str | None, node: ast.AST) -> None:
        target = _resolve(name, modules) if name else None
        if target is not None and target != module:
            edges.append(Edge(module, target, f"{filename}:{node.lineno + line_offset}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importing module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node)  # `from pngan import noise` -> pngan.noise
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in IMPORT_CALLS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                add(node.args[0].value, node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            lazy = LAZY_PATH.fullmatch(node.value.strip())
            if lazy:
                add(lazy.group(1), node)
    return edges


def build_graph(root: Path = REPO, package: str = PACKAGE) -> dict[str, list[Edge]]:
    """Module name -> its edges, for every module under root/package."""
    files = module_files(root, package)
    return {
        name: imports_in_source(path.read_text(), name, files, is_package=path.name == "__init__.py",
                                filename=str(path.relative_to(root)))
        for name, path in files.items()
    }


def notebook_imports(path: Path, modules: Iterable[str], root: Path = REPO) -> list[Edge]:
    """The pngan modules that the code cells of a notebook import (IPython magics skipped)."""
    import nbformat

    book = nbformat.read(path, as_version=4)
    edges = []
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    for i, cell in enumerate(book.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        edges += imports_in_source(source, f"<{name}>", modules, filename=f"{name}[cell {i}]")
    return edges


def ancestors(module: str) -> list[str]:
    """The packages Python runs before a module: pngan.models.smnet -> pngan, pngan.models."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(starts: Iterable[str], graph: Mapping[str, list[Edge]]) -> set[str]:
    """Every module loaded once `starts` are: the edges' targets and their parent packages, transitively."""
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        todo += ancestors(module)
        todo += [edge.target for edge in graph[module]]
    return seen


# --- layers and cycles -----------------------------------------------------------------------

def layer_of(module: str, layers: Mapping[str, int]) -> int | None:
    """The layer of a module: the longest matching key of `layers`. A key "a.b" names exactly
    the module a.b; a key "a.b.*" names package a.b and everything below it. None: unplaced."""
    best, layer = -1, None
    for key, value in layers.items():
        if key.endswith(".*"):
            package = key[:-2]
            matches = module == package or module.startswith(package + ".")
        else:
            matches = module == key
        if matches and len(key) > best:
            best, layer = len(key), value
    return layer


def cycles(graph: Mapping[str, Iterable[Edge]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    succ = {m: sorted({e.target for e in edges if e.target in graph}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(succ[node])):
                nxt = succ[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


def layer_violations(graph: Mapping[str, list[Edge]], layers: Mapping[str, int]) -> list[str]:
    """Problems, one line each: modules no layer names, upward edges, import cycles."""
    problems = []
    for module in sorted(graph):
        if layer_of(module, layers) is None:
            problems.append(f"{module} is in no layer: add it to the layer table")
    for module in sorted(graph):
        here = layer_of(module, layers)
        for edge in graph[module]:
            there = layer_of(edge.target, layers)
            if here is not None and there is not None and there > here:
                problems.append(f"{edge.where} imports {edge.target} (layer {here} -> {there})")
    for component in cycles(graph):
        inner = [f"{e.where} imports {e.target}" for m in component for e in graph[m] if e.target in component]
        problems.append(f"import cycle {' <-> '.join(component)}: {'; '.join(inner)}")
    return problems
