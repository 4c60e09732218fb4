"""Strict layers: a pngan module imports only its own layer or lower ones, and no import cycles.

The graph is read from the source (tests/import_graph.py): module-level imports, imports inside
functions and methods, and the registries' lazy "pngan.x:Class" strings all count.
"""

from __future__ import annotations

import pytest

from import_graph import REPO, Edge, build_graph, cycles, imports_in_source, layer_of, layer_violations, module_files

# Bottom to top. A key "a.b" is exactly the module a.b; "a.b.*" is package a.b and everything
# below it; the longest matching key wins. A module that matches no key fails the test: place it.
LAYERS: dict[str, int] = {
    # 0 base
    "pngan.errors": 0,
    "pngan.images": 0,
    "pngan.params": 0,  # the package __init__ only
    "pngan.runtime": 0,
    "pngan.paths": 0,
    "pngan.registry": 0,
    "pngan.paper": 0,
    # 1 domain
    "pngan.isp": 1,
    "pngan.data.*": 1,
    "pngan.noise.*": 1,
    "pngan.models.*": 1,
    "pngan.metrics": 1,
    "pngan.stats": 1,
    "pngan.plots.*": 1,
    # 2 training
    "pngan.losses": 2,
    "pngan.train.*": 2,
    # 3 API
    "pngan.generate": 3,
    "pngan.noise_models": 3,
    "pngan.denoise": 3,
    # 4 stages
    "pngan.stages.*": 4,
    # 5 entry points
    "pngan.cli": 5,
    "pngan.nb": 5,
    "pngan.__main__": 5,
    "pngan.params.__main__": 5,
    "pngan": 5,  # the package __init__
}


def test_pngan_imports_only_downward_and_without_cycles():
    graph = build_graph()
    assert len(graph) > 30, f"found only {len(graph)} pngan modules"
    problems = layer_violations(graph, LAYERS)
    assert not problems, "pngan's layers are broken:\n" + "\n".join(problems)


def test_no_stage_imports_another_stage():
    """A stage orchestrates: what two stages share lives lower in the package (or in the stages'
    helpers: common, smoke, training, settings), so changing one stage never reruns another."""
    import yaml

    stages = {f"pngan.stages.{name}" for name in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]}
    graph = build_graph()
    assert stages <= set(graph), f"dvc.yaml names stages without a module: {sorted(stages - set(graph))}"
    crossing = [f"{edge.where} imports {edge.target}" for stage in sorted(stages) for edge in graph[stage]
                if edge.target in stages]
    assert not crossing, "stages import other stages:\n" + "\n".join(crossing)


def test_layer_table_names_only_existing_modules():
    """A stale entry (a module that moved or was removed) would silently place nothing."""
    modules = set(module_files())
    stale = [key for key in LAYERS if key.removesuffix(".*") not in modules]
    assert not stale, f"the layer table names modules that do not exist: {stale}"


# --- the checker itself ----------------------------------------------------------------------

MODULES = {"pngan", "pngan.images", "pngan.models", "pngan.models.blocks", "pngan.models.smnet",
           "pngan.train", "pngan.train.gan", "pngan.stages", "pngan.stages.a", "pngan.stages.b"}


def _edges(module: str, source: str) -> list[Edge]:
    return imports_in_source(source, module, MODULES, is_package=module in {"pngan", "pngan.models"},
                             filename=module.replace(".", "/") + ".py")


def test_checker_sees_every_kind_of_import():
    source = '''
import os
import pngan.images
from pngan import models
from pngan.models import smnet, build
from . import smnet

def lazy():
    from pngan.train.gan import train_pngan
    import importlib
    return importlib.import_module("pngan.stages.a")

class C:
    def method(self):
        import pngan.stages.b as b
        from pngan.models import blocks  # the module itself: no edge

REGISTRY = {"gen": "pngan.models.smnet:SMNet", "prose": "see pngan.train: loops"}
'''
    edges = _edges("pngan.models.blocks", source)
    found = sorted((e.target, int(e.where.rsplit(":", 1)[1])) for e in edges)
    assert found == sorted([
        ("pngan.images", 3), ("pngan.models", 4), ("pngan.models.smnet", 5), ("pngan.models", 5),
        ("pngan.models.smnet", 6), ("pngan.train.gan", 9), ("pngan.stages.a", 11), ("pngan.stages.b", 15),
        ("pngan.models.smnet", 18),
    ]), found
    assert all(e.source == "pngan.models.blocks" and e.where.startswith("pngan/models/blocks.py:") for e in edges)


def test_checker_fails_on_an_upward_edge_and_a_cycle():
    graph = {m: [] for m in MODULES}
    graph["pngan.models.blocks"] = _edges("pngan.models.blocks", "def f():\n    from pngan.train import gan\n")
    graph["pngan.stages.a"] = _edges("pngan.stages.a", "from pngan.stages import b\n")
    graph["pngan.stages.b"] = _edges("pngan.stages.b", "import pngan.images\n\ndef g():\n    import pngan.stages.a\n")
    layers = {"pngan": 5, "pngan.images": 0, "pngan.models.*": 1, "pngan.train.*": 2, "pngan.stages.*": 4}
    problems = layer_violations(graph, layers)
    assert "pngan/models/blocks.py:2 imports pngan.train.gan (layer 1 -> 2)" in problems, problems
    assert cycles(graph) == [["pngan.stages.a", "pngan.stages.b"]]
    assert any(p.startswith("import cycle pngan.stages.a <-> pngan.stages.b") and "pngan/stages/b.py:4" in p
               for p in problems), problems
    assert len(problems) == 2, problems


def test_checker_fails_on_an_unplaced_module():
    graph = {m: [] for m in MODULES}
    problems = layer_violations(graph, {"pngan.*": 0, "pngan": 5, "pngan.stages.*": 4})
    assert problems == []  # "pngan.*" places everything
    problems = layer_violations(graph, {"pngan": 5, "pngan.models.*": 1})
    assert "pngan.images is in no layer: add it to the layer table" in problems


@pytest.mark.parametrize("module, layer", [
    ("pngan", 5), ("pngan.params", 0), ("pngan.params.__main__", 5), ("pngan.params.schema", None),
    ("pngan.models", 1), ("pngan.models.smnet", 1), ("pngan.modelsx", None), ("pngan.plots", 1),
    ("pngan.plots.curves", 1), ("pngan.stages.settings", 4), ("pngan.unknown", None),
])
def test_layer_of_takes_the_longest_matching_key(module, layer):
    assert layer_of(module, LAYERS) == layer
