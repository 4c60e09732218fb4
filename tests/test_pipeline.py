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


def _pngan_modules_used(module: str) -> set[Path]:
    code = (
        "import sys, importlib; importlib.import_module(sys.argv[1]);"
        "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items())"
        " if (n == 'pngan' or n.startswith('pngan.')) and getattr(m, '__file__', None)))"
    )
    proc = subprocess.run([sys.executable, "-c", code, module], cwd=REPO, capture_output=True, text=True, check=True)
    return {Path(p).resolve() for p in proc.stdout.split()}


def test_each_stage_declares_the_code_it_runs():
    """A stage whose code changed must rerun: its deps cover every pngan module that its stage module
    imports (stage modules import at the top; registries load lazily, so their whole folder is a dep)."""
    for name, stage in _stages().items():
        deps = [(REPO / d).resolve() for d in stage.get("deps", []) if "${" not in d]
        used = _pngan_modules_used(f"pngan.stages.{name}")
        uncovered = sorted(
            str(p.relative_to(REPO)) for p in used
            if p.name != "__init__.py" and not any(p == d or d in p.parents for d in deps)
        )
        assert not uncovered, f"stage {name}: add to its deps in dvc.yaml: {uncovered}"


TABLE = re.compile(r"<!-- BEGIN (\S+) -->\n(.*?)<!-- END \1 -->", re.S)


def test_readme_tables_equal_the_generated_ones():
    readme = (REPO / "README.md").read_text()
    blocks = TABLE.findall(readme)
    assert blocks, "README.md has no generated-table blocks"
    for source, text in blocks:
        generated = (REPO / source).read_text()
        assert text.strip() == generated.strip(), f"README.md block {source} differs from the file; run `make repro`"
