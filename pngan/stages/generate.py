"""Stage `generate`: every noise model noises the clean test images and is scored against real noise.

Models are fitted on the training split only, then draw `samples` noisy versions of each clean
test image. Per image: AKLD and histogram KLD (mean over draws), the fake and real noise std and
the noisy PSNR. On simulated data the oracle rows are two independent draws of the true
simulator: what a perfect generator scores (a reference, not a bound; see METHOD.md §5).
One draw per model and image is kept as PNG for the inspection notebooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from pngan import noise, plots
from pngan.data.pairs import FileImage, Pair
from pngan.data.simulate import SimulatorNoise
from pngan.data.splits import group_metrics
from pngan.images import DataError, read_image, to_image, to_tensor, write_png
from pngan.metrics import akld, kld_histogram, psnr
from pngan.noise.base import NoiseModel
from pngan.generate import GeneratorNoise
from pngan.runtime import keyed_generator, run_info, select_device, stable_seed
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json
from pngan.stages.prepare import load_split, prepared_or_smoke

ORACLE = "oracle"
PNGAN = "pngan"
METRICS = ("akld", "kld", "fake_std", "real_std", "fake_psnr", "real_psnr")


def training_arrays(pairs: Sequence[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) uint8 arrays of the training split, what `NoiseModel.fit` takes."""
    return [(clean, noisy) for noisy, clean in (p.load() for p in pairs)]


def camera_setting(meta: dict[str, Any]) -> str | None:
    """What a camera noise profile is calibrated for: the simulated profile, or camera and ISO."""
    if "profile" in meta:
        return str(meta["profile"])
    if "camera" in meta:
        return f"{meta['camera']} ISO {meta['iso']}" if "iso" in meta else str(meta["camera"])
    return None


def group_of(pair: Pair, key: str) -> str | None:
    """The metadata group of a pair: `camera` is the camera setting, any other key is read as is."""
    value = camera_setting(pair.meta) if key == "camera" else pair.meta.get(key)
    return None if value is None else str(value)


def fit_models(names: Sequence[str], options: dict[str, dict], train: Sequence[Pair]) -> dict[str, Callable[[Pair], NoiseModel]]:
    """Fit every named model on the training pairs; returns, per name, the model for a test pair.

    `kind@key` fits one model per metadata group (`kind@camera`: per camera setting, i.e.
    simulated profile or camera + ISO, as camera noise profiles are calibrated; or any metadata
    key) and noises each test pair with its group's model, or with the model fitted on every
    training pair when its group is absent from the training split.
    """
    fitted: dict[str, Callable[[Pair], NoiseModel]] = {}
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


def fitted_params(fitted: dict[str, Callable[[Pair], NoiseModel]], test: Sequence[Pair]) -> dict[str, Any]:
    """Fitted parameters per model (per test group for `kind@key` models), for the metrics file."""
    out: dict[str, Any] = {}
    for name, model_for in fitted.items():
        kind, _, key = name.partition("@")
        if key:
            out[name] = {str(group_of(p, key)): model_for(p).params() for p in test}
        else:
            out[name] = model_for(test[0]).params()
    return out


def oracle_models() -> Callable[[Pair], NoiseModel]:
    """The true simulator of each simulated pair's own camera profile (an independent draw)."""
    profiles: dict[str, NoiseModel] = {}
    return lambda p: profiles.setdefault(p.meta["profile"], SimulatorNoise(p.meta["profile"]))


@torch.no_grad()
def draw(model: NoiseModel, clean: torch.Tensor, samples: int, generator: torch.Generator, batch: int) -> torch.Tensor:
    """`samples` independent noisy versions of one clean image (1, 3, H, W) -> (L, 1, 3, H, W)."""
    draws = [model.sample(clean.expand(min(batch, samples - i), -1, -1, -1), generator) for i in range(0, samples, batch)]
    return torch.cat(draws).unsqueeze(1)


def score_pair(model: NoiseModel, pair: Pair, samples: int, seed: int, batch: int, device: torch.device) -> tuple[dict[str, float], torch.Tensor]:
    noisy, clean = pair.load()
    x, y = to_tensor(clean)[None].to(device), to_tensor(noisy)[None].to(device)
    generator = keyed_generator(seed, pair.name, device=device)
    fakes = draw(model, x, samples, generator, batch)
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


def score_model(name: str, model_for: Callable[[Pair], NoiseModel], test: Sequence[Pair], samples: int, seed: int,
                batch: int, device: torch.device, keep_dir: Path | None) -> list[dict[str, Any]]:
    """Per-image rows for one model; the first draw of each image is written to `keep_dir`."""
    rows = []
    for pair in test:
        row, first = score_pair(model_for(pair), pair, samples, stable_seed(seed, name), batch, device)
        rows.append({"model": name, "image": pair.name, **pair.meta, **row})
        if keep_dir is not None:
            write_png(keep_dir / name / f"{pair.name}.png", to_image(first))
    return rows


def noise_images(model_for: Callable[[Pair], NoiseModel] | None, pairs: Sequence[Pair], folder: Path, seed: int,
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
            g = keyed_generator(seed, pair.name, device=device)
            write_png(path, to_image(model_for(pair).sample(clean, g)[0]))
        out.append(Pair(pair.name, FileImage(path), pair.clean, pair.meta))
    return out


def summarize(per_image: pd.DataFrame, fitted: dict[str, dict], inputs: dict[str, str]) -> dict[str, Any]:
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


def crops_figure(data_dir: str | None, out_dir: str | None, models: Sequence[str]):
    """Clean / real / every model on the same crop of the test image with the median real noise."""
    test = load_split(prepared_or_smoke(data_dir), "test")
    keep_dir = _out_dir(out_dir, "generate")
    stds = []
    for pair in test:
        noisy, clean = pair.load()
        stds.append(float(np.std(noisy.astype(np.float32) - clean)))
    pair = test[int(np.argsort(stds)[len(stds) // 2])]
    noisy, clean = pair.load()
    views = {"real": noisy, **{m: read_image(keep_dir / m / f"{pair.name}.png") for m in models}}
    size = min(96, *clean.shape[:2])
    # one gain for all panels, set by the real noise: AWGN sigma=50 saturates, the rest compare
    return plots.crops(clean, views, box=(0, 0, size, size), scale=2, amplify="auto", gain_from="real", columns=5)


def run(
    data_dir: str | None = None,
    models: Sequence[str] = ("awgn", "awgn_fitted", "heteroscedastic", "correlated", "camera_random", "camera_fitted"),
    model_options: dict[str, dict] | None = None,
    generator_checkpoint: str | None = None,
    oracle: bool = True,
    samples: int = 2,
    seed: int = 0,
    batch: int = 8,
    device: str = "auto",
    out_dir: str | None = None,
    metrics_file: str | None = None,
    per_image_file: str | None = None,
    by_group_file: str | None = None,
) -> dict[str, Any]:
    """Fit, sample and score every noise model; returns (and writes) the summary."""
    data = prepared_or_smoke(data_dir)
    out = _out_dir(out_dir, "generate")
    dev = select_device(device)
    train, test = load_split(data, "train"), load_split(data, "test")
    model_for = fit_models(models, model_options or {}, train)
    params = fitted_params(model_for, test)
    inputs: dict[str, str] = {}
    if oracle and all("profile" in p.meta for p in test):
        model_for[ORACLE] = oracle_models()
    if generator_checkpoint:
        learned = GeneratorNoise.from_file(generator_checkpoint, dev)
        model_for[PNGAN] = lambda p: learned
        params[PNGAN] = learned.params()
        inputs[PNGAN] = learned.input_name
    rows = []
    for name, model in model_for.items():
        rows += score_model(name, model, test, samples, seed, batch, dev, out)
    per_image = pd.DataFrame(rows)
    summary = summarize(per_image, params, inputs)
    summary.update(samples=samples, dataset=sorted({str(p.meta.get("dataset")) for p in test}), run=run_info(dev, seed=seed))
    if per_image_file:
        Path(per_image_file).parent.mkdir(parents=True, exist_ok=True)
        per_image.to_csv(per_image_file, index=False, float_format="%.6g")
    groups = by_group(per_image)
    if by_group_file and groups is not None:
        Path(by_group_file).parent.mkdir(parents=True, exist_ok=True)
        groups.to_csv(by_group_file, index=False, float_format="%.6g")
    if metrics_file:
        write_json(metrics_file, summary)
    return summary
