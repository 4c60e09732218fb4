"""Noise-aware PNGAN: a generator that is told the noise level, beside the paper's, which is not.

    s   = level map: the noise std per pixel and channel that the pair's camera setting's noise
          level function (fitted on the training split, pngan.noise.level) gives its clean image
    z   ~ N(0, 1), from a generator keyed by (seed, step, rank) as the paper's input noise
    u   = G([z, x, s]);  y_f = x + s * g * u / rms(u)        (pngan.models.aware)
    D   judges [y, s] per pixel: is this realistic noise *for this level*
and the paper's three losses, D_d and schedule unchanged (the shared `AdversarialTask`). At step
0, G's zero tail makes y_f the classical draw x + s * z / rms(z); `hold_level` keeps the D_d
alignment from pulling the level down (docs/METHOD.md §6.6), so those losses shape the noise,
not its level. The optional colour gain g (a function of the clean pixel's colour and level) is
the one part that moves the level: it is trained by the Gaussian likelihood of the real noise
alone (`pngan.losses.level_nll`, at its own rate `lr_gain`; no weight: nothing else trains its
parameters, and Adam's steps do not depend on a loss's scale) and enters the other losses
detached (docs/METHOD.md §8.5).

The generator file records the levels per camera setting (`pngan.noise.condition`), so that
generation can ask for a camera setting, a level, or a reference image's estimated level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from pngan.data.pairs import Pair, training_arrays
from pngan.errors import ParamsError
from pngan.losses import level_nll
from pngan.models.aware import add_noise, generator_input, split_gain
from pngan.noise.base import quantize, randn_like
from pngan.noise.condition import LevelCondition, camera_key, camera_setting, fit_iso_law, has_camera_and_iso, iso_of
from pngan.noise.gaussian import CorrelatedGaussian
from pngan.noise.level import calibrate_estimator, fit_level, level_map
from pngan.runtime import autocast, json_digest, keyed_generator
from pngan.train import loop
from pngan.train.config import AwareGanConfig
from pngan.train.gan import AdversarialTask, run_adversarial
from pngan.train.loop import STREAM_INPUT_NOISE, NanGuard, Runtime

UNGROUPED = "other"  # the validation group name of pairs without camera metadata


def fit_condition(cfg: AwareGanConfig, pairs: Sequence[Pair], arrays: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> LevelCondition:
    """The levels to train with, from the training pairs only (`level_source`, resolved by
    `level_source_of`): one per camera setting, or one per camera scaled by the ISO law, and one
    on every pair, the fallback for the others; and the blind estimator's calibration on the
    same pairs, for reference mode. `arrays`: the pairs' `training_arrays`, when already read."""
    arrays = training_arrays(pairs) if arrays is None else arrays
    fit = dict(knots=cfg.level_knots, axis=cfg.level_axis)
    fallback = fit_level(arrays, **fit)
    source = level_source_of(cfg.level_source, pairs)
    groups, law = {}, None
    if source == "iso_law":
        images: dict[str, tuple[str, float, list]] = {}
        for pair, arrays_of in zip(pairs, arrays):
            if has_camera_and_iso(pair.meta):
                camera, iso = str(pair.meta["camera"]), iso_of(pair.meta)
                images.setdefault(str(pair.meta.get("source", pair.name)), (camera, iso, []))[2].append(arrays_of)
        law = fit_iso_law(list(images.values()), fallback)
        settings = {(camera, iso) for camera, iso, _ in images.values()}
        groups = {camera_key(camera, _iso_name(iso)): fallback.scaled(law.factor(camera, iso)) for camera, iso in sorted(settings)}
    elif source == "camera":
        members: dict[str, list[int]] = {}
        for i, pair in enumerate(pairs):
            key = camera_setting(pair.meta)
            if key is not None:
                members.setdefault(key, []).append(i)
        if not members:
            print("note: no training pair carries camera metadata; every pair takes the level fitted on all of them", flush=True)
        groups = {key: fit_level([arrays[i] for i in index], **fit) for key, index in sorted(members.items())}
    calibration = calibrate_estimator(arrays, **fit, **cfg.estimator_options)
    return LevelCondition(
        fallback=fallback,
        groups=groups,
        group_key=source,
        hold_level=cfg.hold_level,
        estimator={"options": dict(cfg.estimator_options), "calibration": calibration},
        iso_law=law,
    )


def level_source_of(level_source: str, pairs: Sequence[Pair]) -> str:
    """`auto`: the ISO law when training pairs carry a camera and an ISO (real data sets; pairs
    without them take the all-pairs level), else one level per camera setting (the simulated
    profiles); the others as they are."""
    with_iso = any(has_camera_and_iso(p.meta) for p in pairs) and not any("profile" in p.meta for p in pairs)
    if level_source == "iso_law" and not with_iso:
        raise ParamsError("level_source iso_law: the training pairs need camera and ISO metadata (real data sets' file names); "
                          "use camera (one level per setting) or auto")
    if level_source == "auto":
        return "iso_law" if with_iso else "camera"
    return level_source


def _iso_name(iso: float) -> int | float:
    return int(iso) if float(iso).is_integer() else iso


def fit_start(cfg: AwareGanConfig, pairs: Sequence[Pair], arrays: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Any]:
    """The generator arguments of its step-0 filter: none for white noise; for `start:
    correlated` the width and channel mixing (Cholesky factor of the channel correlation) of
    the correlated Gaussian fitted on every training pair (pngan.noise.gaussian.CorrelatedGaussian)."""
    if cfg.start == "white":
        return {}
    model = CorrelatedGaussian().fit(training_arrays(pairs) if arrays is None else arrays)
    return {"start_width": float(model.kernel_sigma), "start_mixing": [float(v) for v in np.linalg.cholesky(model.channel_corr).ravel()]}


class LevelPairs(Dataset):
    """A pair dataset whose samples also carry their pair's level table ('level', (3, K)) and,
    when any pair has camera metadata, the index of its camera setting in `group_names`
    ('group'; validation reports the noise std per setting). A pair takes its level from its
    metadata (`LevelCondition.level_for`): the fallback when its setting (or camera) was not in
    training; it keeps its own setting's name for the report. When some pairs carry a camera
    setting and others none, samples also carry 'known' (1: a setting, 0: none), which keeps the
    latter out of the gain's likelihood: their level is the all-pairs fallback, not theirs, and the
    gain would learn their images' level differences as a function of content (the pooled SIDD
    dev pairs: unlabelled images at 0.2-1.7x the fallback level; docs/METHOD.md §8.5)."""

    def __init__(self, dataset: Dataset, condition: LevelCondition):
        self.dataset = dataset
        keys = [camera_setting(pair.meta) for pair in dataset.pairs]  # reported per setting even when one level serves all
        self.tables = [torch.as_tensor(condition.level_for(pair.meta).table(), dtype=torch.float32) for pair in dataset.pairs]
        named = sorted({key for key in keys if key is not None})
        self.group_names: tuple[str, ...] = (*named, UNGROUPED) if named else ()
        self.groups = [self.group_names.index(key if key is not None else UNGROUPED) for key in keys] if named else None
        self.known = [float(key is not None) for key in keys] if named and None in keys else None

    def __len__(self) -> int:
        return len(self.dataset)

    def fingerprint(self) -> str:
        return loop.data_fingerprint(self.dataset)

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        item = self.dataset[key]
        index = key % len(self.tables)
        item["level"] = self.tables[index]
        if self.groups is not None:
            item["group"] = torch.tensor(self.groups[index])
        if self.known is not None:
            item["known"] = torch.tensor(self.known[index])
        return item


class AwarePnganTask(AdversarialTask):
    """PNGAN's training with a level-conditioned generator and discriminator."""

    loop = "pngan_aware"

    def __init__(self, cfg: AwareGanConfig, runtime: Runtime, denoiser: nn.Module, val_set: LevelPairs | None, guard: NanGuard,
                 condition: LevelCondition, vgg: nn.Module | None = None, start: dict[str, Any] | None = None):
        # the levels and the start filter shape what G learns, like D_d: a run never resumes with others
        digest = json_digest([condition.to_dict(), start or {}])
        generator_kwargs = {**cfg.network_kwargs("generator"), **(start or {})}  # `fit_start`'s filter, recorded in the file
        super().__init__(cfg, runtime, denoiser, val_set, guard, vgg, generator_kwargs, cfg.network_kwargs("discriminator"), (digest,))
        self.condition = condition
        self.knots = torch.tensor(condition.knots, dtype=torch.float32, device=runtime.device)
        self.group_names = getattr(val_set, "group_names", ())
        self._extra: dict[str, torch.Tensor] = {}

    def generator_parameters(self) -> list[dict[str, Any]]:
        gain = self.generator.gain
        if gain is None:
            return [{"params": list(self.generator.parameters())}]
        ids = {id(p) for p in gain.parameters()}
        return [{"params": [p for p in self.generator.parameters() if id(p) not in ids]},
                {"params": list(gain.parameters()), "lr": self.cfg.lr_gain}]

    def extra_terms(self) -> dict[str, torch.Tensor]:
        return self._extra

    def _noise(self, network: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator):
        """(level map s, white noise z, G's output in float32: u, or [u, log g]) of a batch."""
        clean = batch["clean"]
        s = level_map(batch["level"], self.knots, clean, self.condition.axis)
        z = randn_like(clean, generator)
        with autocast(self.runtime.device, self.runtime.precision):
            u = network(generator_input(z, clean, s, self.condition.input_bounds)).float()
        return s, z, u

    def fake(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        clean, cfg = batch["clean"], self.cfg
        g = keyed_generator(cfg.seed, STREAM_INPUT_NOISE, step, self.runtime.ctx.rank, device=clean.device)
        s, z, out = self._noise(self.G, batch, g)
        with torch.no_grad():  # the classical draw at the same level: what G started from
            y_s = add_noise(clean, s, z, cfg.hold_level)
        u, log_gain = split_gain(out)
        if log_gain is not None:  # the gain learns from the likelihood alone; the other losses see it fixed
            self._extra = {"level": level_nll(batch["noisy"] - clean, s * log_gain.exp(), weight=batch.get("known"))}
            out = torch.cat([u, log_gain.detach()], dim=1)
        return y_s, add_noise(clean, s, out, cfg.hold_level), s if cfg.condition_discriminator else None

    def validation_draw(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        s, z, u = self._noise(self.generator, batch, generator)
        clean, hold = batch["clean"], self.cfg.hold_level
        return quantize(add_noise(clean, s, z, hold)), quantize(add_noise(clean, s, u, hold))

    def file_entries(self) -> dict[str, Any]:
        return {"condition": self.condition.to_dict()}

    def state_dict(self) -> dict[str, Any]:
        # what `pngan.models.files` needs to read a generator out of the checkpoint
        return {**super().state_dict(), "generator_file": {"kwargs": self.generator_kwargs, **self.file_entries()}}

    def describe(self) -> dict[str, Any]:
        low, high = self.condition.range
        return {**super().describe(), "level_groups": sorted(self.condition.groups), "level_range_255": [low, high]}


def train_pngan_aware(
    cfg: AwareGanConfig,
    train_dataset: Dataset,
    val_set: Dataset | None,
    denoiser: nn.Module,
    out_dir: str | Path,
    vgg: nn.Module | None = None,
) -> dict[str, Any]:
    """Train the noise-aware PNGAN like `pngan.train.gan.train_pngan` (same outputs, resume and
    torchrun support). `train_dataset` / `val_set` are `PairDataset`s (their `pairs` carry the
    metadata the camera settings come from); the levels are fitted on `train_dataset`'s pairs."""
    arrays = training_arrays(train_dataset.pairs)
    condition = fit_condition(cfg, train_dataset.pairs, arrays)  # before seeding: the networks' initial weights do not depend on it
    start = fit_start(cfg, train_dataset.pairs, arrays)
    val = None if val_set is None else LevelPairs(val_set, condition)
    return run_adversarial(cfg, lambda runtime, guard: AwarePnganTask(cfg, runtime, denoiser, val, guard, condition, vgg, start),
                           LevelPairs(train_dataset, condition), out_dir)

