"""Run a stage notebook with papermill, its parameters taken from params.yaml.

    python -m pngan.nb notebooks/train_pngan.ipynb reports/notebooks/train_pngan.ipynb --section runtime \
        --section train_pngan [--set out_dir=artifacts/train_pngan ...] [--params params.yaml]

Sections are merged in order (a later section's value wins: a stage's own section overrides
`runtime`), then `--from name=section.key` (one value of another section, e.g.
`--from fake_ratios=ablation.fake_ratios`), then `--set key=value` (YAML-typed) on top. Every name
must be a parameter of the notebook (see `notebook_parameters`), otherwise the run stops before
the kernel starts. Values keep their YAML types (papermill's own `-p` flag would turn booleans into
strings). The output folder is created, the kernel is pinned to `python3` and the notebook runs
from the current directory, so relative paths are those of the repository root.

A user error raised inside the notebook (a `pngan.errors` type, a bad value, a missing file) is
printed as one line, `error: <message>`, instead of papermill's traceback, and the run exits
with code 2; the executed notebook keeps the full traceback. With $PNGAN_ERROR_FILE set, that
line is also written there (`make repro` prints it again after DVC's own summary).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pngan import params as P
from pngan.errors import KitError, one_line, report_user_errors, user_error_names

KERNEL = "python3"


def notebook_parameters(notebook: Path) -> set[str]:
    """The names a notebook takes: those assigned at the top level of its cell tagged `parameters`
    and, for a stage's notebook (notebooks/<stage>.ipynb), every name `pngan.stages.<stage>.run`
    accepts (its settings: the notebook passes on what it is given, see `stage_arguments`)."""
    import ast

    import nbformat

    from pngan.stages.common import accepted  # imports torch: only when a notebook runs
    from pngan.stages.settings import stage_module

    book = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in book.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise P.ParamsError(f"{notebook}: no cell tagged 'parameters'")
    names: set[str] = set()
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    stage = stage_module(Path(notebook).stem)
    return names | set(accepted(stage)) if stage is not None else names


def injected_values(sections: list[str], overrides: list[str], params_file: Path, links: list[str] = ()) -> dict[str, Any]:
    """The named params.yaml sections merged in order, then `--from name=section.key` values of
    other sections (e.g. another stage's sweep), then the `--set key=value` overrides."""
    values: dict[str, Any] = {}
    if sections or links:
        params = P.load(params_file)
        for name in sections:
            values.update(P.section(params, name, params_file))
        for item in links:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise P.ParamsError(f"--from expects name=section.key, got '{item}'")
            values[name] = P.lookup(params, path, params_file)
    values.update(P.parse_overrides(overrides))
    return values


class StageError(KitError):
    """A user error raised inside a stage notebook (its message, without the traceback)."""


def run(notebook: str | Path, output: str | Path, values: dict[str, Any], where: str = "parameters") -> Path:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook}: notebook not found")
    P.check_known(values, notebook_parameters(notebook), f"{where} -> {notebook}")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=values,
            kernel_name=KERNEL,
            language="python",
            cwd=os.getcwd(),
            progress_bar=False,
            log_output=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
        )
    except PapermillExecutionError as err:
        if err.ename not in user_error_names():
            raise  # a bug: keep papermill's traceback
        raise StageError(f"stage {notebook.stem}: {one_line(err.evalue)} (traceback in {output})") from None
    return output


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pngan.nb", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--section", action="append", default=[], help="params.yaml section to inject (repeatable)")
    ap.add_argument("--from", dest="links", action="append", default=[], metavar="NAME=SECTION.KEY",
                    help="inject another section's value (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra parameter, YAML-typed")
    ap.add_argument("--params", type=Path, default=P.DEFAULT_FILE, help="parameters file (default params.yaml)")
    args = ap.parse_args(argv)
    error_file = os.environ.get("PNGAN_ERROR_FILE")

    def execute() -> int:
        values = injected_values(args.section, args.set, args.params, args.links)
        where = f"{args.params} [{', '.join(args.section)}]" if args.section else "--set"
        run(args.notebook, args.output, values, where)
        return 0

    return report_user_errors(execute, copy_to=error_file)


if __name__ == "__main__":
    sys.exit(main())
