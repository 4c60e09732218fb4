"""One place per setting: the `runtime` section every training stage shares (a stage's own section
overrides it), one runtime dataclass under both training configs, and the smoke values a notebook
run by hand takes for what it is not given."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import yaml

from pngan import nb
from pngan.stages import common, denoiser_real, pgap, smoke
from pngan.train.config import DenoiserConfig, GanConfig, RuntimeConfig

RUNTIME = {f.name for f in dataclasses.fields(RuntimeConfig)}


def test_runtime_fields_are_declared_once_for_both_loops():
    for config in (GanConfig, DenoiserConfig):
        assert issubclass(config, RuntimeConfig)
        own = set(config.__annotations__)  # the fields the class itself declares
        assert not own & RUNTIME, f"{config.__name__} declares runtime fields again: {own & RUNTIME}"


def test_a_stage_section_overrides_runtime_for_that_stage_only(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "runtime": {"seed": 3, "val_every": 100, "precision": "auto"},
        "pgap": {"steps": 5, "val_every": 0},
        "denoiser_real": {"steps": 7},
    }))
    assert nb.injected_values(["runtime", "pgap"], [], params) == {"seed": 3, "val_every": 0, "precision": "auto", "steps": 5}
    assert nb.injected_values(["runtime", "denoiser_real"], [], params)["val_every"] == 100
    # the command line merges them the same way
    from pngan.cli import _settings

    args = SimpleNamespace(params=params, section="pgap", set=["precision=fp32"])
    values, where = _settings(args)
    assert values == {"seed": 3, "val_every": 0, "precision": "fp32", "steps": 5}
    assert where == f"{params} [runtime, pgap]"


def test_committed_params_give_every_training_stage_its_old_cadence():
    """params.yaml's overrides: validation off where no validation split is used, checkpoints
    every 50 steps for the short runs."""
    params = yaml.safe_load(open("params.yaml"))
    merged = {name: {**params["runtime"], **params[name]} for name in ("denoiser_real", "train_pngan", "pgap", "finetune")}
    assert {n: (m["val_every"], m["ckpt_every"], m["log_every"]) for n, m in merged.items()} == {
        "denoiser_real": (100, 100, 25), "train_pngan": (100, 50, 25), "pgap": (0, 100, 25), "finetune": (0, 50, 25)}


def test_identity_hash_ignores_resume_safe_runtime_keys_only():
    base = DenoiserConfig(arch="dncnn", arch_kwargs={"depth": 3, "width": 4})
    safe = dataclasses.replace(base, precision="fp32", device="cpu", num_workers=2, compile=True, channels_last=True,
                               deterministic=True, val_every=7, ckpt_every=7, log_every=7, nan_patience=3, steps=99)
    assert safe.identity_hash() == base.identity_hash()
    assert dataclasses.replace(base, seed=1).identity_hash() != base.identity_hash()


def test_a_notebook_by_hand_takes_smoke_values_for_what_it_is_not_given():
    by_hand = common.stage_arguments(denoiser_real, {"out_dir": None, "steps": 2, "unrelated": 1, "__name__": "x"})
    assert by_hand == {**smoke.settings("runtime", "denoiser_real"), "out_dir": None, "steps": 2}
    # runtime's smoke values first, then the stage's own (pgap validates never, as in params.yaml)
    assert common.stage_arguments(pgap, {})["val_every"] == 0
    assert smoke.settings("runtime")["val_every"] == 3


def test_a_stage_notebook_takes_every_setting_of_its_stage():
    names = nb.notebook_parameters(Path("notebooks/denoiser_real.ipynb"))
    assert {f.name for f in dataclasses.fields(DenoiserConfig)} | {"data_dir", "figures_dir"} <= names
