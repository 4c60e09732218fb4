"""Validate every section of params.yaml before anything runs (`python -m pngan.params check`).

DVC removes a stage's outputs before it runs the stage, so a typo found inside the stage has
already cost those outputs: every check a stage would make on its settings is made here first,
with the same functions the stages use, on the settings each stage gets (its SECTIONS merged in
order: `runtime`, then its own, for a training stage).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from pngan import noise
from pngan import params as P
from pngan.data.prepared import check_source
from pngan.noise_models import AT_LEVEL, REFERENCE, REFERENCE_KINDS
from pngan.registry import check_arguments
from pngan.stages.common import accepted
from pngan.train.config import RuntimeConfig



def stage_module(name: str) -> ModuleType | None:
    """The stage module pngan.stages.<name> (it declares SECTIONS), or None: not a stage."""
    if importlib.util.find_spec(f"pngan.stages.{name}") is None:
        return None
    module = importlib.import_module(f"pngan.stages.{name}")
    return module if hasattr(module, "SECTIONS") else None


def check_params(params: dict[str, Any], path: str | Path = P.DEFAULT_FILE) -> list[str]:
    """Raise a one-line error at the first invalid setting; return the sections checked: unknown
    keys (a stage's sections may hold only what its `run` accepts), types, ranges, registry names."""
    for name, values in params.items():
        where = f"{path} [{name}]"
        if not isinstance(values, dict):
            raise P.ParamsError(f"{where}: a section must be a mapping, got {type(values).__name__}")
        if name == "runtime":
            RuntimeConfig.from_dict(values, where)
        module = stage_module(name)
        if module is not None:
            _check_stage(module, params, path)
        CHECKS.get(name, lambda v, w, p: None)(values, where, params)
    return list(params)


def _check_stage(module: ModuleType, params: dict[str, Any], path: str | Path) -> None:
    """A stage's sections hold only names its `run` takes; merged, they make a valid CONFIG."""
    known = set(accepted(module))
    merged: dict[str, Any] = {}
    for section in module.SECTIONS:
        P.check_known(params.get(section, {}), known, f"{path} [{section}]")
        merged.update(params.get(section, {}))
    config = getattr(module, "CONFIG", None)
    if config is not None and issubclass(config, RuntimeConfig):  # a training config checks its values
        fields = {f.name for f in dataclasses.fields(config)}
        config.from_dict({k: v for k, v in merged.items() if k in fields}, f"{path} [{', '.join(module.SECTIONS)}]")


def _prepare(values: dict[str, Any], where: str, params: dict[str, Any]) -> None:
    check_source(values.get("source", "simulated"), values.get("root"), values.get("clean_dirs") or [], values.get("profiles", "all"))


def _noise_models(values: dict[str, Any], where: str, params: dict[str, Any], by_reference: bool = True) -> None:
    for name in values.get("models") or []:
        kind, _, key = str(name).partition("@")
        if kind not in noise.REGISTRY:
            noise.REGISTRY.resolve(kind)  # raises, naming the known models
        if key == AT_LEVEL.partition("@")[2]:
            raise P.ParamsError(f"{where}: {name}: the Gaussian at the noise-aware generator's level is scored with that generator "
                                "(stage noise_models, when train_pngan_aware runs); it is not listed")
        if key == REFERENCE and not (by_reference and kind in REFERENCE_KINDS):
            allowed = ", ".join(f"{k}@{REFERENCE}" for k in REFERENCE_KINDS)
            raise P.ParamsError(f"{where}: {name}: a reference level sets only {allowed}, and only the noise_models stage scores them")
    for kind, options in (values.get("model_options") or {}).items():
        if not isinstance(options, dict):
            raise P.ParamsError(f"{where}: model_options.{kind} must be a mapping of arguments, got {options!r}")
        check_arguments(noise.REGISTRY.resolve(kind), options, f"{where}: noise model '{kind}'")
    if values.get("samples", 1) < 1:
        raise P.ParamsError(f"{where}: samples must be >= 1, got {values['samples']}")


def _finetune(values: dict[str, Any], where: str, params: dict[str, Any]) -> None:
    for label, start in (values.get("starts") or {}).items():
        if not (start is None or isinstance(start, str) or isinstance(start, dict)):
            raise P.ParamsError(f"{where}: starts.{label} must be a denoiser file or {{arch, arch_kwargs, weights}}, got {start!r}")


def _ablation(values: dict[str, Any], where: str, params: dict[str, Any]) -> None:
    ratios = values.get("fake_ratios") or []
    bad = [r for r in ratios if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1]
    if not ratios or bad:
        raise P.ParamsError(f"{where}: fake_ratios must be a non-empty list of numbers in [0, 1], got {ratios!r}")


def _tables(values: dict[str, Any], where: str, params: dict[str, Any]) -> None:
    ratios = (params.get("ablation") or {}).get("fake_ratios") or []
    headline = values.get("headline_fake_ratio")
    if headline not in ratios:
        raise P.ParamsError(f"{where}: headline_fake_ratio {headline} is not one of ablation.fake_ratios {ratios}")


CHECKS: dict[str, Callable[[dict[str, Any], str, dict[str, Any]], None]] = {
    "prepare": _prepare, "noise_models": _noise_models, "pgap": lambda v, w, p: _noise_models(v, w, p, by_reference=False), "finetune": _finetune,
    "ablation": _ablation, "tables": _tables,
}
