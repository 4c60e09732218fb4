"""Every noise model against real noise: fitted on training pairs, drawn on test pairs, scored.

A model set maps a name to a chooser `Pair -> NoiseModel` (which model noises that pair): the
classical models fitted on the training split (`fit_models`; `kind@key` fits one per metadata
group), then the references (`references`): on simulated data the oracle, the true simulator of
each pair's camera profile, and a trained PNGAN generator. `score_model` draws `samples` noisy
versions of each test image and scores them (AKLD, KLD, noise level, PSNR; METHOD.md §2);
`noise_images` draws one noisy version of each image, kept as PNG (fake training pairs).

Draws are keyed by names (`pngan.runtime.stable_seed`): an image's noise does not depend on
which other images or models are in the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from pngan import noise
from pngan.data.pairs import FileImage, Pair
from pngan.data.simulate import SimulatorNoise
from pngan.data.splits import group_metrics
from pngan.images import DataError, to_image, to_tensor, write_png
from pngan.metrics import akld, kld_histogram, psnr
from pngan.noise.base import NoiseModel
from pngan.noise.condition import camera_setting
from pngan.runtime import keyed_generator, stable_seed

ORACLE = "oracle"
PNGAN = "pngan"
METRICS = ("akld", "kld", "fake_std", "real_std", "fake_psnr", "real_psnr")
CLASSICAL = ("awgn", "awgn_fitted", "heteroscedastic", "correlated", "camera_random", "camera_fitted")

Chooser = Callable[[Pair], NoiseModel]


def training_arrays(pairs: Sequence[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) uint8 arrays of the training split, what `NoiseModel.fit` takes."""
    return [(clean, noisy) for noisy, clean in (p.load() for p in pairs)]


def group_of(pair: Pair, key: str) -> str | None:
    """The metadata group of a pair: `camera` is the camera setting, any other key is read as is."""
    value = camera_setting(pair.meta) if key == "camera" else pair.meta.get(key)
    return None if value is None else str(value)


def fit_models(names: Sequence[str], options: dict[str, dict], train: Sequence[Pair]) -> dict[str, Chooser]:
    """Fit every named model on the training pairs; returns, per name, the model for a test pair.

    `kind@key` fits one model per metadata group (`kind@camera`: per camera setting, i.e.
    simulated profile or camera + ISO, as camera noise profiles are calibrated; or any metadata
    key) and noises each test pair with its group's model, or with the model fitted on every
    training pair when its group is absent from the training split.
    """
    fitted: dict[str, Chooser] = {}
    for name in names:
        kind, _, key = name.partition("@")
        groups: dict[str | None, list[Pair]] = {None: list(train)}
        if key:
            for pair in train:
                groups.setdefault(group_of(pair, key), []).append(pair)
            if len(groups) == 1:
                raise ValueError(f"{name}: no training pair has '{key}' metadata to group by")
        models = {g: noise.build(kind, **options.get(kind, {})) for g in groups}
        for group, model in models.items():
            if model.fitted_params:
                model.fit(training_arrays(groups[group]))
        fitted[name] = (lambda p, m=models: m[None]) if not key else (lambda p, m=models, k=key: m.get(group_of(p, k), m[None]))
    return fitted


def fitted_params(fitted: dict[str, Chooser], test: Sequence[Pair]) -> dict[str, Any]:
    """Fitted parameters per model (per test group for `kind@key` models), for the metrics file."""
    out: dict[str, Any] = {}
    for name, model_for in fitted.items():
        kind, _, key = name.partition("@")
        if key:
            out[name] = {str(group_of(p, key)): model_for(p).params() for p in test}
        else:
            out[name] = model_for(test[0]).params()
    return out


def oracle_models() -> Chooser:
    """The true simulator of each simulated pair's own camera profile (an independent draw)."""
    profiles: dict[str, NoiseModel] = {}
    return lambda p: profiles.setdefault(p.meta["profile"], SimulatorNoise(p.meta["profile"]))


def references(pairs: Sequence[Pair], oracle: bool, generator: NoiseModel | None) -> dict[str, Chooser]:
    """The rows every fitted model is read against, in the tables' order: the oracle (asked for,
    and every pair of `pairs` simulated, so that its true noise law is known), then the trained
    generator as 'pngan' (when given)."""
    out: dict[str, Chooser] = {}
    if oracle and all("profile" in p.meta for p in pairs):
        out[ORACLE] = oracle_models()
    if generator is not None:
        out[PNGAN] = lambda p: generator
    return out


@torch.no_grad()
def draw(model: NoiseModel, clean: torch.Tensor, samples: int, generator: torch.Generator, batch: int) -> torch.Tensor:
    """`samples` independent noisy versions of one clean image (1, 3, H, W) -> (L, 1, 3, H, W)."""
    draws = [model.sample(clean.expand(min(batch, samples - i), -1, -1, -1), generator) for i in range(0, samples, batch)]
    return torch.cat(draws).unsqueeze(1)


def score_pair(model: NoiseModel, pair: Pair, samples: int, seed: int, batch: int, device: torch.device) -> tuple[dict[str, float], torch.Tensor]:
    """A test pair's scores over `samples` draws (keyed by (seed, image name)), and the first draw."""
    noisy, clean = pair.load()
    x, y = to_tensor(clean)[None].to(device), to_tensor(noisy)[None].to(device)
    fakes = draw(model, x, samples, keyed_generator(seed, pair.name, device=device), batch)
    noise_std = lambda z: float((z - x).std(dim=(-3, -2, -1)).mean()) * 255.0  # noqa: E731 (mean over draws)
    row = {
        "akld": float(akld(x, y, fakes)),
        "kld": float(kld_histogram(x, y, fakes)),
        "fake_std": noise_std(fakes),
        "real_std": noise_std(y),
        "fake_psnr": float(psnr(fakes.flatten(0, 1), x.expand(samples, -1, -1, -1)).mean()),
        "real_psnr": float(psnr(y, x)),
    }
    return row, fakes[0, 0]


def score_model(name: str, model_for: Chooser, test: Sequence[Pair], samples: int, seed: int,
                batch: int, device: torch.device, keep_dir: Path | None) -> list[dict[str, Any]]:
    """Per-image rows for one model; the first draw of each image is written to `keep_dir`."""
    rows = []
    for pair in test:
        row, first = score_pair(model_for(pair), pair, samples, stable_seed(seed, name), batch, device)
        rows.append({"model": name, "image": pair.name, **pair.meta, **row})
        if keep_dir is not None:
            write_png(keep_dir / name / f"{pair.name}.png", to_image(first))
    return rows


def noise_images(model_for: Chooser | None, pairs: Sequence[Pair], folder: Path, seed: int,
                 device: torch.device) -> list[Pair]:
    """Pairs of each clean image with one noisy version drawn by its model, kept in `folder/noisy`.

    Files already there are reused (a resumed stage does not redraw them); with `model_for`
    None the folder must already hold every file (pairs generated by another stage).
    """
    out = []
    for pair in pairs:
        path = Path(folder) / "noisy" / f"{pair.name}.png"
        if not path.is_file():
            if model_for is None:
                raise DataError(f"{path}: generated image missing (rerun the stage that writes {folder})")
            clean = to_tensor(pair.clean.load())[None].to(device)
            write_png(path, to_image(model_for(pair).sample(clean, keyed_generator(seed, pair.name, device=device))[0]))
        out.append(Pair(pair.name, FileImage(path), pair.clean, pair.meta))
    return out


def evaluate(train: Sequence[Pair], test: Sequence[Pair], models: Sequence[str], options: dict[str, dict], oracle: bool,
             generator: NoiseModel | None, samples: int, seed: int, batch: int, device: torch.device,
             keep_dir: Path | None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every named model fitted on `train`, then the references (`references`), each drawing
    `samples` noisy versions of every test image, scored; the first draws kept in `keep_dir`.
    Returns (the summary: mean scores, fitted parameters, inputs; the per-image rows)."""
    model_for = fit_models(models, options, train)
    params = fitted_params(model_for, test)
    model_for.update(references(test, oracle, generator))
    inputs: dict[str, str] = {}
    if generator is not None:
        params[PNGAN], inputs[PNGAN] = generator.params(), generator.input_name
    rows = []
    for name, model in model_for.items():
        rows += score_model(name, model, test, samples, seed, batch, device, keep_dir)
    per_image = pd.DataFrame(rows)
    return summarize(per_image, params, inputs), per_image


def summarize(per_image: pd.DataFrame, fitted: dict[str, dict], inputs: dict[str, str]) -> dict[str, Any]:
    """Mean scores per model, with its fitted parameters and (for a generator) its input's name."""
    means = per_image.groupby("model", sort=False)[list(METRICS)].mean()
    models = {}
    for name, values in means.iterrows():
        models[name] = {k: float(v) for k, v in values.items()}
        models[name]["params"] = fitted.get(name, {})
        if name in inputs:
            models[name]["input"] = inputs[name]
    return {"models": models, "images": int(per_image["image"].nunique())}


def by_group(per_image: pd.DataFrame) -> pd.DataFrame | None:
    """Means per model and camera profile (simulated) or camera/ISO (real data with metadata)."""
    keys = [k for k in ("profile",) if k in per_image] or [k for k in ("camera", "iso") if k in per_image]
    if not keys:
        return None
    return group_metrics(per_image, by=["model", *keys], metrics=list(METRICS))


def median_noise_pair(pairs: Sequence[Pair]) -> Pair:
    """The pair whose real noise std is the median of `pairs` (a typical image)."""
    stds = []
    for pair in pairs:
        noisy, clean = pair.load()
        stds.append(float(np.std(noisy.astype(np.float32) - clean)))
    return pairs[int(np.argsort(stds)[len(stds) // 2])]
