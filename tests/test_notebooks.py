"""Every notebook runs through the runner with its own smoke-size parameters into a temporary
folder (nbval runs them a second time, as a user opening them would)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from pngan import nb

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_smoke_parameters(notebook, tmp_path):
    out = nb.run(notebook, tmp_path / "executed" / notebook.name, {})
    book = nbformat.read(out, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "a cell did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(o.get("output_type") in ("execute_result", "display_data") for c in code for o in c.get("outputs", [])), \
        "the notebook shows nothing"
