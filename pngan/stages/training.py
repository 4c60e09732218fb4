"""What the training stages share: one training run on a prepared data set, recorded the same way
(`train_and_record`), and the smoke-size denoiser and generators that a notebook run by hand uses
when it is given none (`denoiser_file`, `generator_file`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn
from torch.utils.data import Dataset

from pngan.data.patches import training_sets
from pngan.data.prepared import given_or_smoke
from pngan.models.files import load_network_file
from pngan.paths import made_once
from pngan.stages import smoke
from pngan.stages.common import copy_logs, write_json
from pngan.stages.common import out_dir as stage_out_dir
from pngan.train.aware import train_pngan_aware
from pngan.train.config import AwareGanConfig, DenoiserConfig, GanConfig, RuntimeConfig
from pngan.train.denoiser import DENOISER_FILE, train_denoiser
from pngan.train.gan import GENERATOR_FILE, train_pngan
from pngan.train.loop import TRAIN_LOG, VAL_LOG

Train = Callable[[Dataset, Dataset | None, Path], dict[str, Any]]


def train_and_record(train: Train, cfg: RuntimeConfig, data: Path, out: Path, plots_dir: str | None = None,
                     metrics_file: str | None = None) -> dict[str, Any]:
    """`train(training set, validation set, out)` on the prepared data set's random training crops
    and whole validation blocks; the CSV logs copied for `dvc plots`, the summary written."""
    train_set, val = training_sets(data, cfg.crop, cfg.seed)
    summary = train(train_set, val, out)
    copy_logs(out, plots_dir, (TRAIN_LOG, VAL_LOG))
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def train_real_denoiser(cfg: DenoiserConfig, data: Path, out: Path, **record: Any) -> dict[str, Any]:
    """D_d: a denoiser trained on the real training pairs (stage `denoiser_real`)."""
    return train_and_record(lambda train, val, folder: train_denoiser(cfg, train, val, folder), cfg, data, out, **record)


def train_generator(cfg: GanConfig, denoiser: nn.Module, data: Path, out: Path, **record: Any) -> dict[str, Any]:
    """PNGAN's generator, aligned through the frozen `denoiser` (stage `train_pngan`)."""
    return train_and_record(lambda train, val, folder: train_pngan(cfg, train, val, denoiser, folder), cfg, data, out, **record)


def train_aware_generator(cfg: AwareGanConfig, denoiser: nn.Module, data: Path, out: Path, **record: Any) -> dict[str, Any]:
    """The noise-aware generator, aligned through the same frozen `denoiser` (stage `train_pngan_aware`)."""
    return train_and_record(lambda train, val, folder: train_pngan_aware(cfg, train, val, denoiser, folder), cfg, data, out, **record)


def denoiser_file(path: str | Path | None) -> Path:
    """`path`, or the denoiser file of a smoke-size D_d trained once in scratch."""
    if path is not None:
        return Path(path)
    cfg = DenoiserConfig.from_dict(smoke.settings("runtime", "denoiser_real"), "smoke denoiser_real")
    data = given_or_smoke(None, smoke.settings("prepare"))
    return made_once("denoiser_real-smoke", DENOISER_FILE, lambda out: train_real_denoiser(cfg, data, out)) / DENOISER_FILE


GENERATORS = {  # stage: (settings, training function)
    "train_pngan": (GanConfig, train_generator),
    "train_pngan_aware": (AwareGanConfig, train_aware_generator),
}


def generator_file(path: str | Path | None, stage: str = "train_pngan") -> Path:
    """`path`, or the generator file of a smoke-size generator of `stage` (train_pngan or
    train_pngan_aware) trained once in scratch (on the smoke D_d)."""
    if path is not None:
        return Path(path)
    config, train_with = GENERATORS[stage]
    cfg = config.from_dict(smoke.settings("runtime", stage), f"smoke {stage}")
    data = given_or_smoke(None, smoke.settings("prepare"))

    def train(out: Path) -> None:
        denoiser, _ = load_network_file(denoiser_file(None), "denoiser")
        train_with(cfg, denoiser, data, out)

    return made_once(f"{stage}-smoke", GENERATOR_FILE, train) / GENERATOR_FILE


def run_generator_stage(stage: str, settings: dict[str, Any], data_dir: str | None, denoiser_checkpoint: str | None,
                        out_dir: str | None, **record: Any) -> dict[str, Any]:
    """A generator stage's run: its settings checked, D_d loaded (a smoke one when none is given),
    the generator trained on the prepared data set and recorded."""
    config, train_with = GENERATORS[stage]
    cfg = config.from_dict(settings, stage)
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    denoiser, _ = load_network_file(denoiser_file(denoiser_checkpoint), "denoiser")
    return train_with(cfg, denoiser, data, stage_out_dir(out_dir, stage), **record)
