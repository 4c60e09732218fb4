"""The notebook runner: YAML types survive, unknown names stop the run, folders are created."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from pngan import nb
from pngan.params import ParamsError


@pytest.fixture()
def tiny_notebook(tmp_path):
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("flag = False\nsteps = 1\nname = 'x'\nsizes = [1]\nout = None")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "pathlib.Path(out).write_text(json.dumps({'flag': flag, 'flag_type': type(flag).__name__,"
        " 'steps': steps, 'name': name, 'sizes': sizes}))"
    )
    book.cells = [params, body]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(book, path)
    return path


def _params_file(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_sections_inject_yaml_types(tmp_path, tiny_notebook):
    params = _params_file(tmp_path, "a:\n  flag: true\n  steps: 3\nb:\n  steps: 7\n  sizes: [2, 3]\n")
    out_json = tmp_path / "result.json"
    values = nb.injected_values(["a", "b"], [f"out={out_json}", "name=yes"], params)
    nb.run(tiny_notebook, tmp_path / "deep" / "folder" / "ran.ipynb", values)
    result = json.loads(out_json.read_text())
    # later sections win; booleans stay booleans; --set values are YAML-typed ("yes" is a YAML 1.1 bool)
    assert result == {"flag": True, "flag_type": "bool", "steps": 7, "name": True, "sizes": [2, 3]}
    assert (tmp_path / "deep" / "folder" / "ran.ipynb").is_file()


def test_unknown_parameter_stops_before_running(tmp_path, tiny_notebook):
    with pytest.raises(ParamsError, match=r"unknown parameter 'stepz' \(did you mean 'steps'\?\)"):
        nb.run(tiny_notebook, tmp_path / "never.ipynb", {"stepz": 2})
    assert not (tmp_path / "never.ipynb").exists()


def test_missing_section_and_bad_set(tmp_path):
    params = _params_file(tmp_path, "a:\n  steps: 1\n")
    with pytest.raises(ParamsError, match="no section 'train'"):
        nb.injected_values(["train"], [], params)
    with pytest.raises(ParamsError, match="--set expects key=value"):
        nb.injected_values([], ["novalue"], params)


def test_cli_reports_unknown_key_with_exit_code_2(tmp_path, tiny_notebook):
    params = _params_file(tmp_path, "a:\n  stepz: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pngan.nb", str(tiny_notebook), str(tmp_path / "o.ipynb"), "--section", "a", "--params", str(params)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "unknown parameter 'stepz'" in proc.stderr and str(params) in proc.stderr


def test_from_injects_a_value_of_another_section(tmp_path):
    params = _params_file(tmp_path, "finetune:\n  sweep: [0, 0.5, 1]\ntables:\n  steps: 2\n")
    values = nb.injected_values(["tables"], [], params, ["sizes=finetune.sweep"])
    assert values == {"steps": 2, "sizes": [0, 0.5, 1]}
    with pytest.raises(ParamsError, match="no key 'finetune.sweeps'"):
        nb.injected_values([], [], params, ["sizes=finetune.sweeps"])
    with pytest.raises(ParamsError, match="--from expects name=section.key"):
        nb.injected_values([], [], params, ["finetune.sweep"])


def test_overlay_flags_walk_to_leaves_and_reject_unknown_keys(tmp_path):
    from pngan.params import overlay_flags

    base = {"train": {"kw": {"width": 24, "z": True}, "steps": 500, "sizes": [1, 2]}}
    flags = overlay_flags({"train": {"kw": {"width": 64}, "steps": 100000, "sizes": [3]}}, base, "paper.yaml")
    assert flags == ["train.kw.width=64", "train.steps=100000", "train.sizes=[3]"]
    with pytest.raises(ParamsError, match="paper.yaml: 'train.stepz' is not a parameter"):
        overlay_flags({"train": {"stepz": 1}}, base, "paper.yaml")
