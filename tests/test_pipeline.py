"""The pipeline as committed: dvc.yaml parses, dvc.lock is not stale, notebooks carry no outputs,
each stage declares every pngan module it runs, and the README shows the generated tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DVC = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _stages() -> dict:
    """Stage name -> definition; a foreach stage's template (`do`) stands for all its instances."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _dvc(*args: str) -> subprocess.CompletedProcess:
    if DVC is None:
        pytest.skip("dvc is not installed")
    return subprocess.run([DVC, *args], cwd=REPO, capture_output=True, text=True, timeout=240)


def test_dvc_yaml_parses_and_lists_every_stage():
    proc = _dvc("stage", "list")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0].split("@")[0] for line in proc.stdout.splitlines() if line.strip()}
    assert listed == set(_stages())


def test_committed_lock_is_not_stale():
    """No stage has changed code, command or parameters since dvc.lock was written.

    Missing files are fine: a fresh clone has no DVC cache, so stage outputs, and the deps that
    are other stages' outputs, are absent ("deleted"). A dependency that is "modified" or "new",
    or a changed parameter or command, means the committed metrics no longer match the code.
    """
    proc = _dvc("status", "--json", "dvc.yaml")
    assert proc.returncode == 0, proc.stderr
    stale = {}
    for stage, changes in json.loads(proc.stdout or "{}").items():
        for change in changes:
            if not isinstance(change, dict):
                stale.setdefault(stage, []).append(change)  # e.g. "changed command"
                continue
            deps = {path: state for path, state in change.get("changed deps", {}).items() if state != "deleted"}
            if deps:
                stale.setdefault(stage, []).append({"changed deps": deps})
            if change.get("changed params"):
                stale.setdefault(stage, []).append({"changed params": change["changed params"]})
    assert not stale, f"dvc.lock is stale; run `make repro` and commit dvc.lock + metrics: {stale}"


def test_notebooks_have_no_outputs_and_a_parameters_cell():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{path.name}: committed with outputs (strip them)"
        assert not any(c.get("execution_count") for c in code), f"{path.name}: committed with execution counts"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"


def _stage_notebook(cmd: str) -> tuple[Path, list[str], dict[str, str]]:
    words = cmd.split()
    i = words.index("pngan.nb")
    sections = [words[j + 1] for j, w in enumerate(words) if w == "--section"]
    sets = dict(words[j + 1].split("=", 1) for j, w in enumerate(words) if w in ("--set", "--from"))
    return REPO / words[i + 1], sections, sets


def test_each_stage_injects_only_known_parameters():
    """Every params.yaml key of a stage's sections, and every --set, is a notebook parameter."""
    from pngan.nb import notebook_parameters

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in _stages().items():
        notebook, sections, sets = _stage_notebook(stage["cmd"])
        known = notebook_parameters(notebook)
        given = set(sets)
        for section in sections:
            given |= set(params[section])
            declared = stage.get("params", [])
            assert section in declared or any(isinstance(d, str) and d.startswith(f"{section}.") for d in declared), (
                f"stage {name}: injects section '{section}' but does not declare it under params"
            )
        assert given <= known, f"stage {name}: {sorted(given - known)} are not parameters of {notebook.name}"


def test_each_stage_injects_the_sections_its_module_declares():
    """dvc.yaml's --section flags of a stage are its module's SECTIONS, in order (a training stage:
    runtime, then its own section, whose keys win), the order the smoke values and the settings
    check merge them in."""
    import importlib

    for name, stage in _stages().items():
        _, sections, _ = _stage_notebook(stage["cmd"])
        assert tuple(sections) == importlib.import_module(f"pngan.stages.{name}").SECTIONS, name


def test_every_smoke_value_is_a_setting_the_pipeline_sets():
    """A smoke value names a setting its stage takes and the pipeline injects (a key of one of its
    params.yaml sections, or a --set), so the pipeline never runs with a smoke value."""
    import importlib

    from pngan.stages import smoke
    from pngan.stages.common import accepted

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(smoke.SETTINGS) <= set(params), f"smoke settings of no params.yaml section: {set(smoke.SETTINGS) - set(params)}"
    for name, stage in _stages().items():
        module = importlib.import_module(f"pngan.stages.{name}")
        _, sections, sets = _stage_notebook(stage["cmd"])
        injected = {key for section in sections for key in params[section]} | set(sets)
        values = smoke.settings(*module.SECTIONS)
        assert set(values) <= injected, f"stage {name}: smoke values the pipeline does not set: {set(values) - injected}"
        assert set(values) <= set(accepted(module)), f"stage {name}: smoke values it does not take: {set(values) - set(accepted(module))}"


def _pngan_modules_used(stage: str, notebook: Path) -> set[Path]:
    """The source files of every pngan module a stage loads, read statically (tests/import_graph.py):
    the closure of its module pngan/stages/<stage>.py and of its notebook's imports, following
    imports inside functions, the registries' lazy "pngan.x:Class" strings and parent packages."""
    from import_graph import build_graph, closure, module_files, notebook_imports

    files = module_files()
    starts = [f"pngan.stages.{stage}"] + [edge.target for edge in notebook_imports(notebook, files)]
    return {files[module] for module in closure(starts, build_graph())}


def _is_empty_init(path: Path) -> bool:
    return path.name == "__init__.py" and not path.read_text().strip()


def _files_of(dep: Path) -> set[Path]:
    """What a code dep stands for: the file, or a folder's .py files and notebooks."""
    if dep.is_dir():
        return {p for pattern in ("*.py", "*.ipynb") for p in dep.rglob(pattern) if "__pycache__" not in p.parts}
    return {dep} if dep.exists() else set()


def _shortest_deps(needed: set[Path]) -> list[str]:
    """`needed` as deps: the topmost folder whose every file (empty __init__.py files aside) is
    needed, else the file itself."""
    deps = set()
    for path in needed:
        best = path
        for folder in path.parents:
            if folder == REPO or REPO not in folder.parents:
                break
            if all(p in needed or _is_empty_init(p) for p in _files_of(folder)):
                best = folder
        deps.add(str(best.relative_to(REPO)))
    return sorted(deps)


def test_each_stage_declares_the_code_it_runs():
    """A stage's deps under pngan/ and notebooks/ equal the code it runs: its notebook and every pngan
    module it loads (a folder dep = all its .py files). A missing one leaves the stage stale when that
    code changes; an extra one (a module it never loads) reruns it for nothing."""
    problems = []
    for name, stage in _stages().items():
        notebook, _, _ = _stage_notebook(stage["cmd"])
        loaded = _pngan_modules_used(name, notebook)
        needed = {p for p in loaded if not _is_empty_init(p)} | {notebook}
        code = [d for d in stage.get("deps", []) if d.split("/")[0] in ("pngan", "notebooks") and "${" not in d]
        covered = {p: d for d in code for p in _files_of(REPO / d)}
        absent = [d for d in code if not (REPO / d).exists()]
        uncovered = sorted(str(p.relative_to(REPO)) for p in needed - set(covered))
        unused = sorted(f"{p.relative_to(REPO)} (dep {d})" for p, d in covered.items()
                        if p not in loaded and p != notebook and not _is_empty_init(p))
        if absent or uncovered or unused:
            problems.append(
                f"stage {name}:" + (f"\n  deps that do not exist: {absent}" if absent else "")
                + (f"\n  loaded but not a dep: {uncovered}" if uncovered else "")
                + (f"\n  a dep but never loaded: {unused}" if unused else "")
                + f"\n  its pngan/notebooks deps should be: {_shortest_deps(needed)}"
            )
    assert not problems, "dvc.yaml deps differ from the code each stage runs:\n" + "\n".join(problems)


TABLE = re.compile(r"<!-- BEGIN (\S+) -->\n(.*?)<!-- END \1 -->", re.S)


def test_readme_tables_equal_the_generated_ones():
    readme = (REPO / "README.md").read_text()
    blocks = TABLE.findall(readme)
    assert blocks, "README.md has no generated-table blocks"
    for source, text in blocks:
        generated = (REPO / source).read_text()
        assert text.strip() == generated.strip(), f"README.md block {source} differs from the file; run `make repro`"
