"""The synthetic input y_s that a PNGAN generator turns into realistic noise (docs/METHOD.md §1).

A spec is a plain dict stored in every generator file, so generation feeds a generator the input
it was trained on:  {"setting": 1 | 2, "noise": registry name, "noise_kwargs": {...}}.
Setting 1: AWGN with sigma = input_sigma. Setting 2: the camera pipeline with the published
random ranges ('camera_random'), never a simulated data set's own camera profiles.
"""

from __future__ import annotations

from typing import Any

from pngan import noise
from pngan.noise.base import NoiseModel


def input_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """The spec of a training config (`setting`, `input_sigma`, `input_noise`, `input_noise_kwargs`)."""
    name = cfg["input_noise"]
    if name == "auto":
        name = "awgn" if cfg["setting"] == 1 else "camera_random"
    kwargs = {"sigma": cfg["input_sigma"]} if name == "awgn" else {}
    return {"setting": cfg["setting"], "noise": name, "noise_kwargs": {**kwargs, **cfg["input_noise_kwargs"]}}


def spec_for_setting(trained: dict[str, Any], setting: int | None) -> dict[str, Any]:
    """The spec to feed a generator trained on `trained`: that one, or another `setting`'s."""
    if setting is None or setting == trained["setting"]:
        return trained
    sigma = trained["noise_kwargs"].get("sigma", 50 / 255)
    return input_spec({"setting": setting, "input_sigma": sigma, "input_noise": "auto", "input_noise_kwargs": {}})


def build_input_noise(spec: dict[str, Any], trusted: bool = False) -> NoiseModel:
    """The noise model of a spec. A spec read from a file names registry entries only; a
    'module:Class' path is accepted from the user's own settings (`trusted`)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("noise_kwargs", {}), dict):
        raise noise.RegistryError(f"synthetic-input spec must be a mapping with 'noise' and 'noise_kwargs', got {spec!r}")
    return noise.REGISTRY.build(spec.get("noise"), spec.get("noise_kwargs", {}), trusted)
