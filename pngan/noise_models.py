"""Every noise model against real noise: fitted on training pairs, drawn on test pairs, scored.

A model set maps a name to a chooser `Pair -> NoiseModel` (which model noises that pair): the
classical models fitted on the training split (`fit_models`; `kind@key` fits one per metadata
group), then the references (`references`): on simulated data the oracle, the true simulator of
each pair's camera profile, and the trained generators, the paper's PNGAN and the noise-aware one
at each pair's camera setting; last, reference mode (`reference_models`): a level estimated
blindly from another noisy test image of the same camera setting sets the noise-aware generator
and its classical counterparts (`kind@reference`). `score_model` draws `samples` noisy versions
of each test image and scores them (AKLD, KLD, noise level, PSNR, content leak; METHOD.md §2);
`noise_images` draws one noisy version of each image, kept as PNG (fake training pairs).

Draws are keyed by names (`pngan.runtime.stable_seed`): an image's noise does not depend on
which other images or models are in the run.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from pngan import noise
from pngan.data.pairs import FileImage, Pair, training_arrays
from pngan.data.simulate import SimulatorNoise
from pngan.data.splits import group_metrics
from pngan.generate import AwareGeneratorNoise, GeneratorNoise
from pngan.images import DataError, to_image, to_tensor, write_png
from pngan.metrics import akld, kld_histogram, psnr
from pngan.noise.base import NoiseModel
from pngan.noise.condition import LevelCondition, camera_setting
from pngan.noise.level import LevelNoise, NoiseLevel, calibrate_estimator, estimate_level
from pngan.runtime import atomic_write_text, code_digest, json_digest, keyed_generator, stable_seed
from pngan.stats import content_leak

ORACLE = "oracle"
PNGAN = "pngan"
PNGAN_AWARE = "pngan_aware"
SOURCE_FILE = "source.txt"  # in a folder of drawn images: the digest of the draw that made them
REFERENCE = "reference"  # `kind@reference`: the level comes from another noisy image of the camera setting
AT_LEVEL = "heteroscedastic@level"  # the noise-aware generator's classical counterpart: a Gaussian at its level
REFERENCE_KINDS = ("awgn", "heteroscedastic")  # the classical models a reference level sets
REFERENCE_PROTOCOL = ("level estimated blindly (no clean image) from the noisy image of another source image of the same camera "
                      "setting (the next test image by name, or a training image where the test split has none; failing both, the same "
                      "camera at the nearest ISO, then any camera); never the scored image's own noisy version or another crop of it")
METRICS = ("akld", "kld", "fake_std", "real_std", "fake_psnr", "real_psnr", "leak", "real_leak")
CLASSICAL = ("awgn", "awgn_fitted", "heteroscedastic", "correlated", "camera_random", "camera_fitted")

Chooser = Callable[[Pair], NoiseModel]


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
        if key == REFERENCE:
            raise ValueError(f"{name}: a reference level is not fitted on training pairs; only the noise-model table scores `@{REFERENCE}` models")
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


def references(pairs: Sequence[Pair], oracle: bool, generators: dict[str, NoiseModel]) -> dict[str, Chooser]:
    """The rows every fitted model is read against, in the tables' order: the oracle (asked for,
    and every pair of `pairs` simulated, so that its true noise law is known), then the trained
    generators (`generators`: 'pngan', 'pngan_aware'), a noise-aware one at each pair's camera
    setting (`AwareGeneratorNoise.for_meta`), followed by its classical counterpart at the same
    level, a Gaussian with that std per pixel (AT_LEVEL)."""
    out: dict[str, Chooser] = {}
    if oracle and all("profile" in p.meta for p in pairs):
        out[ORACLE] = oracle_models()
    for name, model in generators.items():
        out[name] = (lambda p, m=model: m.for_meta(p.meta)) if isinstance(model, AwareGeneratorNoise) else (lambda p, m=model: m)
        if isinstance(model, AwareGeneratorNoise):
            out[AT_LEVEL] = lambda p, c=model.condition: LevelNoise(c.level_for(p.meta))
    return out


def load_generators(files: dict[str, str | None], device: torch.device) -> dict[str, NoiseModel]:
    """The generators given ({'pngan': file, 'pngan_aware': file}; None: not scored), each checked
    to be of its kind. A noise-aware one takes any level here (the table scores it where the
    references put it, however far from its training range)."""
    out: dict[str, NoiseModel] = {}
    for name, path in files.items():
        if path is None:
            continue
        model = GeneratorNoise.from_file(path, device)
        if isinstance(model, AwareGeneratorNoise) != (name == PNGAN_AWARE):
            kind = "a noise-aware" if name == PNGAN_AWARE else "a paper (PNGAN)"
            raise DataError(f"{path}: not {kind} generator file, as '{name}' needs")
        if isinstance(model, AwareGeneratorNoise):
            model.margin = None
        out[name] = model
    return out


def reference_of(pair: Pair, test: Sequence[Pair], train: Sequence[Pair] = ()) -> Pair:
    """The reference of a test pair in reference mode: the noisy image of another source image,
    never its own noisy image nor another crop of it. The closest camera setting available wins:
    the same setting, else the same camera, else any camera (real data sets have settings met in
    one scene only); then the nearest ISO; then the test split before the training split (only
    its noisy image is read); then the next image by name."""
    source = pair.meta.get("source", pair.name)
    ranked = sorted((((_setting_distance(pair.meta, p.meta), _iso_gap(pair.meta, p.meta), split), p)
                     for split, pool in enumerate((test, train)) for p in pool if p.meta.get("source", p.name) != source),
                    key=lambda entry: (entry[0], entry[1].name))  # never compares two pairs
    if ranked:
        best = [p for rank, p in ranked if rank == ranked[0][0]]  # sorted by name
        return next((p for p in best if p.name > pair.name), best[0])
    raise DataError(f"reference mode: test image {pair.name} has no image of another source to take a reference from")


def _setting_distance(meta: dict[str, Any], other: dict[str, Any]) -> int:
    """0: the same camera setting; 1: the same camera (or profile family), another ISO; 2: anything else."""
    if camera_setting(meta) == camera_setting(other):
        return 0
    return 1 if meta.get("camera") is not None and meta.get("camera") == other.get("camera") else 2


def _iso_gap(meta: dict[str, Any], other: dict[str, Any]) -> float:
    """How far apart two ISOs are, in stops (0 when either is unknown)."""
    try:
        gap = abs(math.log2(float(meta["iso"]) / float(other["iso"])))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 0.0
    return gap if math.isfinite(gap) else 0.0  # a missing ISO read from a table is NaN


def reference_estimator(train: Sequence[Pair], condition: LevelCondition | None) -> Callable[[np.ndarray], NoiseLevel]:
    """The blind level estimate of one noisy image: the noise-aware generator's own estimator
    (options and calibration from its file) when there is one, so that it and its classical
    counterparts read the same level; else the default estimator calibrated on the training pairs."""
    if condition is not None:
        return lambda noisy: condition.estimate([noisy])
    calibration = calibrate_estimator(training_arrays(train))
    return lambda noisy: estimate_level([noisy], calibration=calibration)


def reference_models(names: Sequence[str], test: Sequence[Pair], train: Sequence[Pair], estimate: Callable[[np.ndarray], NoiseLevel],
                     aware: NoiseModel | None) -> tuple[dict[str, Chooser], dict[str, str]]:
    """Reference mode: each test pair's level is estimated blindly from its reference
    (`reference_of`; the training split only where the test split has none) and sets
    `kind@reference` (heteroscedastic: the estimated level function; awgn: one std, its RMS over
    the reference's pixels) and the noise-aware generator ('pngan_aware@reference'). Returns the
    choosers and each pair's reference name."""
    chosen = {p.name: reference_of(p, test, train) for p in test}
    levels: dict[str, NoiseLevel] = {}
    for ref in chosen.values():
        if ref.name not in levels:
            levels[ref.name] = estimate(ref.noisy.load())

    def flat(level: NoiseLevel, noisy: np.ndarray) -> NoiseLevel:
        return NoiseLevel.constant(level.mean_std(noisy))

    counterparts = {"heteroscedastic": lambda p: LevelNoise(levels[chosen[p.name].name]),
                    "awgn": lambda p: LevelNoise(flat(levels[chosen[p.name].name], chosen[p.name].noisy.load()))}
    out: dict[str, Chooser] = {}
    for name in names:
        kind, _, key = name.partition("@")
        if key == REFERENCE:
            if kind not in counterparts:
                raise ValueError(f"{name}: a reference level sets only {', '.join(f'{k}@{REFERENCE}' for k in REFERENCE_KINDS)}")
            out[name] = counterparts[kind]
    if aware is not None:
        out[f"{PNGAN_AWARE}@{REFERENCE}"] = lambda p: aware.for_level(levels[chosen[p.name].name], what=f"reference {chosen[p.name].name}")
    return out, {name: ref.name for name, ref in chosen.items()}


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
        # on the first draw only: a correlation over every pixel of the image varies little between draws
        "leak": content_leak(clean, to_image(fakes[0, 0])),
        "real_leak": content_leak(clean, noisy),
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

    Files already there are reused when the same draw made them (a resumed stage does not redraw
    them): `folder/source.txt` records the draw's digest, and the images of any other draw
    (other models, parameters, generator file, seed or code) are removed first. With `model_for`
    None the folder must already hold every file (pairs generated by another stage).
    """
    if model_for is not None:
        _claim(Path(folder), _draw_digest(model_for, pairs, seed))
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


def _draw_digest(model_for: Chooser, pairs: Sequence[Pair], seed: int) -> str:
    """What `noise_images` draws: the code, the seed and each image's model with its parameters
    (a generator's among them: its file's digest)."""
    draws = [[pair.name, type(model).__name__, model.params()] for pair in pairs for model in [model_for(pair)]]
    return json_digest([code_digest(), seed, draws])


def _claim(folder: Path, digest: str) -> None:
    """Make `folder` hold only images of the draw `digest` (the stage's own output: stale ones go)."""
    record = folder / SOURCE_FILE
    if record.is_file() and record.read_text().strip() == digest:
        return
    shutil.rmtree(folder / "noisy", ignore_errors=True)
    atomic_write_text(record, digest + "\n")


def evaluate(train: Sequence[Pair], test: Sequence[Pair], models: Sequence[str], options: dict[str, dict], oracle: bool,
             generators: dict[str, NoiseModel], samples: int, seed: int, batch: int, device: torch.device,
             keep_dir: Path | None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every named model fitted on `train`, then the references (`references`: the oracle and
    `generators`), then reference mode (`reference_models`: the `kind@reference` models named,
    and the noise-aware generator's row when 'pngan_aware' is given), each drawing `samples`
    noisy versions of every test image, scored; the first draws kept in `keep_dir`.
    Returns (the summary: mean scores, fitted parameters, inputs; the per-image rows)."""
    by_reference = [name for name in models if name.partition("@")[2] == REFERENCE]
    model_for = fit_models([name for name in models if name not in by_reference], options, train)
    params = fitted_params(model_for, test)
    model_for.update(references(test, oracle, generators))
    params.update({name: model.params() for name, model in generators.items()})
    inputs = {name: model.input_name for name, model in generators.items() if hasattr(model, "input_name")}
    aware = generators.get(PNGAN_AWARE)
    reference_names: dict[str, str] = {}
    if by_reference or aware is not None:
        estimate = reference_estimator(train, getattr(aware, "condition", None))
        chosen, reference_names = reference_models(by_reference, test, train, estimate, aware)
        model_for.update(chosen)
        settings = {p.name: camera_setting(p.meta) for p in (*test, *train)}
        elsewhere = sum(settings[ref] != settings[image] for image, ref in reference_names.items())
        params.update({name: {"protocol": REFERENCE_PROTOCOL, "images_with_a_reference_of_another_setting": elsewhere} for name in chosen})
    rows = []
    for name, model in model_for.items():
        rows += score_model(name, model, test, samples, seed, batch, device, keep_dir)
    per_image = pd.DataFrame(rows)
    if reference_names:
        per_image["reference"] = per_image["image"].map(reference_names).where(per_image["model"].str.endswith(f"@{REFERENCE}"))
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
