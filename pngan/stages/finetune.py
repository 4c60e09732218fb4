"""Stage `finetune`: do generated pairs make real denoisers better, and which generator's?

Each starting denoiser (trained on real pairs: the kit's own D_d and PGap denoiser, or a weights
file of yours) is fine-tuned on a mix of real training pairs and one generator's pairs made from
clean-only images (`clean_dirs`, or by default the clean images of the training split, never
the test split), with `fake_ratio` the share of generated samples. Both generators are compared,
the paper's PNGAN and the noise-aware one (at each image's camera setting): every generator ×
every start. `fake_ratio` 0 is the control, labelled generator 'real': the same fine-tuning on
real pairs only, run once per start, and no generator is touched. PSNR and SSIM (RGB, and Y of
MATLAB's rgb2ycbcr) are measured before and after on every test set; noisy-only benchmarks (SIDD
benchmark, DND) get their submission files instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from pngan.data.pairs import Pair, read_clean_folder
from pngan.data.patches import PairDataset, training_sets
from pngan.data.prepared import given_or_smoke, load_split
from pngan.data.readers import read_dataset
from pngan.data.sampling import MixedPairDataset
from pngan.denoise import load_denoiser, score_sets
from pngan.errors import ParamsError
from pngan.models.files import load_network_file
from pngan.noise_models import PNGAN, PNGAN_AWARE, load_generators, noise_images, references
from pngan.runtime import run_info, select_device, stable_seed
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json
from pngan.stages.training import denoiser_file, generator_file
from pngan.train.config import DenoiserConfig
from pngan.train.denoiser import DENOISER_FILE, train_denoiser

SECTIONS = ("runtime", "finetune")
CONFIG = DenoiserConfig
REAL = "real"  # the generator label of the control (fake_ratio 0: real pairs only), as in the tables
STAGES = {PNGAN: "train_pngan", PNGAN_AWARE: "train_pngan_aware"}  # generator label: the stage that trains it


def clean_sources(clean_dirs: Sequence[str], train: Sequence[Pair]) -> list[Pair]:
    """Clean-only images to noise: the given folders, else the training split's clean images."""
    if clean_dirs:
        return [p for folder in clean_dirs for p in read_clean_folder(folder)]
    return [Pair(p.name, None, p.clean, p.meta) for p in train]


def fake_training_pairs(data: Path, generators: Sequence[str], fake_root: str | None, generator_checkpoints: dict[str, str],
                        clean_dirs: Sequence[str], out: Path, seed: int, device: torch.device) -> dict[str, list[Pair]]:
    """Each generator's pairs of clean-only images: read from `fake_root/<generator>` (its noisy
    versions of the training split's clean images, which the pgap stage already drew), or drawn
    here into `out/fake/<generator>` from `clean_dirs` (default: the training split's clean
    images) with the generator files given (a missing one: the smoke generator of its stage), a
    noise-aware one at each image's camera setting, with the seeds pgap draws with."""
    sources = clean_sources(clean_dirs, load_split(data, "train"))
    if fake_root is not None:
        if clean_dirs or generator_checkpoints:
            raise ParamsError("finetune: set either fake_root (pairs already generated) or clean_dirs / generator_checkpoints "
                              "(draw them here), not both")
        return {g: noise_images(None, sources, Path(fake_root) / g, seed, device) for g in generators}
    unknown = sorted(g for g in generators if g not in STAGES and g not in generator_checkpoints)
    if unknown:
        raise ParamsError(f"finetune.generators: {unknown} need a file in generator_checkpoints "
                          f"(a smoke one exists only for {sorted(STAGES)})")
    files = {g: str(generator_file(generator_checkpoints.get(g), STAGES.get(g, ""))) for g in generators}
    choosers = references(sources, False, load_generators(files, device))
    return {g: noise_images(choosers[g], sources, out / "fake" / g, stable_seed(seed, g), device) for g in generators}


def test_sets(data_dir: Path, extra: dict[str, dict]) -> dict[str, tuple[str, list[Pair]]]:
    """{name: (reader kind, pairs)}: the prepared test split plus any real data set listed in `extra`."""
    test = load_split(data_dir, "test")
    sets = {"+".join(sorted({str(p.meta.get("dataset")) for p in test})): ("prepared", test)}
    for name, spec in extra.items():
        options = {k: v for k, v in spec.items() if k not in ("kind", "root")}
        sets[name] = (spec["kind"], read_dataset(spec["kind"], spec["root"], **options))
    return sets


def run(
    data_dir: str | None = None,
    starts: dict[str, str | dict | None] | None = None,
    generators: Sequence[str] = (PNGAN, PNGAN_AWARE),
    fake_root: str | None = None,
    generator_checkpoints: dict[str, str] | None = None,
    clean_dirs: Sequence[str] = (),
    extra_test_sets: dict[str, dict] | None = None,
    out_dir: str | None = None,
    metrics_file: str | None = None,
    per_image_file: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fine-tune every starting denoiser at `fake_ratio` with each generator's pairs (at ratio 0:
    once, on real pairs only, as generator 'real'); returns (and writes) before/after scores,
    `runs[generator][start]`. A start is a denoiser file (None: a smoke-size D_d trained in
    scratch) or released weights ({arch, arch_kwargs, weights}, see `pngan.denoise.load_denoiser`)."""
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    out = _out_dir(out_dir, f"finetune-{settings.get('fake_ratio', 0)}")
    starts = starts or {"ridnet": None}
    base = DenoiserConfig.from_dict(settings, "finetune")
    device = select_device(base.device)
    if base.fake_ratio > 0 and (not generators or REAL in generators):
        raise ParamsError(f"finetune.generators: fake_ratio {base.fake_ratio} needs generator labels other than '{REAL}', "
                          f"got {list(generators)}")
    train_real, val = training_sets(data, base.crop, base.seed)
    fakes = {REAL: None} if base.fake_ratio == 0 else fake_training_pairs(  # no generator is touched at fake_ratio 0
        data, generators, fake_root, generator_checkpoints or {}, clean_dirs, out, base.seed, device)
    real = train_real if base.fake_ratio < 1 else None
    mixes = {g: MixedPairDataset(real, None if pairs is None else PairDataset(pairs, crop=base.crop, augment=True, seed=base.seed),
                                 base.fake_ratio, base.seed) for g, pairs in fakes.items()}
    sets = test_sets(data, extra_test_sets or {})
    runs: dict[str, dict[str, Any]] = {g: {} for g in mixes}
    frames = []
    for label, start in starts.items():
        start_net, arch, kwargs, weights = load_denoiser(start if isinstance(start, dict) else denoiser_file(start), device)
        cfg = DenoiserConfig.from_dict({**settings, "arch": arch, "arch_kwargs": kwargs, "init": weights}, "finetune")
        before, before_rows = score_sets(start_net, sets, device, out / "before" / label, "before")
        for g, mixed in mixes.items():
            folder = out / g / label
            summary = train_denoiser(cfg, mixed, val, folder)
            tuned, _ = load_network_file(folder / DENOISER_FILE, "denoiser", device)
            after, after_rows = score_sets(tuned, sets, device, folder / "after", "after")
            runs[g][label] = {"arch": arch, "start": weights, "before": before, "after": after,
                              "gain_psnr": {n: after[n]["psnr"] - before[n]["psnr"] for n in after if "psnr" in after[n]},
                              "train_seconds": summary["seconds"]}
            frames += [rows.assign(denoiser=label, generator=g) for rows in (before_rows, after_rows)]
    report = {"fake_ratio": base.fake_ratio, "steps": base.steps, "runs": runs,
              "test_sets": {n: kind for n, (kind, _) in sets.items()}, "run": run_info(device, seed=base.seed)}
    if per_image_file and frames:
        Path(per_image_file).parent.mkdir(parents=True, exist_ok=True)
        pd.concat(frames, ignore_index=True).to_csv(per_image_file, index=False, float_format="%.6g")
    if metrics_file:
        write_json(metrics_file, report)
    return report
