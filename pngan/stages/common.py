"""What every stage shares: its arguments from a notebook, output folders, metrics files.

A stage module (`pngan.stages.<stage>`, run by notebooks/<stage>.ipynb) declares the params.yaml
sections it takes (`SECTIONS`, merged in order: the pipeline's `--section` flags), its `run`, and,
when `run` takes `**settings`, the dataclass of those settings (`CONFIG`), declared once in the
package beside the code they configure.

Committed outputs hold only what a rerun reproduces. What differs between machines and runs
(wall-clock seconds, the platform, library versions) goes to an untracked run-info file beside
the pipeline's outputs, `reports/run_info/...` (see `write_json`), so `git status` after a
reproduction is empty exactly when the science reproduced.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import pandas as pd

from pngan.paths import scratch_dir
from pngan.runtime import MACHINE_KEYS, atomic_write_text, split_machine_facts
from pngan.stages import smoke

METRICS_DIR, RUN_INFO_DIR = Path("reports/metrics"), Path("reports/run_info")


def accepted(stage: ModuleType) -> list[str]:
    """Every name a stage's `run` takes: its arguments and, for `**settings`, its CONFIG's fields."""
    names = [name for name, p in inspect.signature(stage.run).parameters.items() if p.kind != p.VAR_KEYWORD]
    config = getattr(stage, "CONFIG", None)
    return names + [f.name for f in dataclasses.fields(config) if f.name not in names] if config else names


def stage_arguments(stage: ModuleType, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `stage.run` from a notebook's namespace: its parameters and what the
    pipeline injected. A setting the notebook was not given takes its smoke-size value
    (`pngan.stages.smoke`): a notebook run by hand or under nbval runs in seconds."""
    given = {name: namespace[name] for name in accepted(stage) if name in namespace}
    return {**smoke.settings(*stage.SECTIONS), **given}


def copy_logs(run_dir: Path, plots_dir: str | Path | None, names: tuple[str, ...]) -> None:
    """Copy a run's CSV logs to the committed plots folder that `dvc plots` reads, without their
    wall-clock columns (the run folder keeps them)."""
    if plots_dir is None:
        return
    for name in names:
        if (run_dir / name).is_file():
            log = pd.read_csv(run_dir / name, dtype=str, keep_default_na=False)
            kept = log[[c for c in log.columns if not MACHINE_KEYS.search(c)]]
            atomic_write_text(Path(plots_dir) / name, kept.to_csv(index=False, lineterminator="\n"))


def out_dir(path: str | Path | None, stage: str) -> Path:
    """The stage's output folder; None (a notebook run by hand or under nbval) means scratch."""
    folder = Path(path) if path is not None else scratch_dir(stage)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _round(value: Any, digits: int = 6) -> Any:
    """Round floats to `digits` significant digits so committed metrics diff cleanly."""
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) for v in value]
    return value


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a stage's metrics without machine facts; those go to `run_info_path(path)`."""
    kept, machine = split_machine_facts(_round(data))
    if machine:
        atomic_write_text(run_info_path(path), json.dumps(machine, indent=2, sort_keys=True) + "\n")
    return atomic_write_text(path, json.dumps(kept, indent=2, sort_keys=True) + "\n")


def run_info_path(metrics_file: str | Path) -> Path:
    """reports/metrics/x/y.json -> reports/run_info/x/y.json (untracked); elsewhere a sibling y.run.json."""
    path = Path(metrics_file)
    try:
        return RUN_INFO_DIR / path.relative_to(METRICS_DIR)
    except ValueError:
        return path.with_suffix(".run.json")


def read_json(path: str | Path, what: str = "metrics") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found (run its pipeline stage first)")
    return json.loads(path.read_text())
