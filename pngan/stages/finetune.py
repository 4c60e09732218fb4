"""Stage `finetune`: do PNGAN's generated pairs make real denoisers better?

Each starting denoiser (trained on real pairs: the kit's own D_d and PGap denoiser, or a weights
file of yours) is fine-tuned on a mix of real training pairs and PNGAN pairs generated from
clean-only images (`clean_dirs`, or by default the clean images of the training split, never
the test split), with `fake_ratio` the share of generated samples: 0 is the control that only
fine-tunes longer on real data. PSNR and SSIM (RGB, and Y of MATLAB's rgb2ycbcr) are measured
before and after on every test set; noisy-only benchmarks (SIDD benchmark, DND) get their
submission files instead.
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
from pngan.generate import GeneratorNoise
from pngan.models.files import load_network_file
from pngan.noise_models import noise_images
from pngan.runtime import run_info, select_device
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json
from pngan.stages.training import denoiser_file, generator_file
from pngan.train.config import DenoiserConfig
from pngan.train.denoiser import DENOISER_FILE, train_denoiser

SECTIONS = ("runtime", "finetune")
CONFIG = DenoiserConfig


def clean_sources(clean_dirs: Sequence[str], train: Sequence[Pair]) -> list[Pair]:
    """Clean-only images to noise with PNGAN: the given folders, else the training split's clean images."""
    if clean_dirs:
        return [p for folder in clean_dirs for p in read_clean_folder(folder)]
    return [Pair(p.name, None, p.clean, p.meta) for p in train]


def fake_training_pairs(data: Path, generator_checkpoint: str | None, clean_dirs: Sequence[str], fake_dir: str | None,
                        out: Path, seed: int, device: torch.device) -> list[Pair]:
    """PNGAN pairs of clean-only images: read from `fake_dir` (PNGAN's noisy versions of the training
    split's clean images, which the pgap stage already drew), or drawn here from `clean_dirs`
    (default: the training split's clean images)."""
    sources = clean_sources(clean_dirs, load_split(data, "train"))
    if fake_dir is not None:
        if clean_dirs:
            raise ValueError("finetune: set either fake_dir (pairs already generated) or clean_dirs (images to noise), not both")
        return noise_images(None, sources, Path(fake_dir), seed, device)
    model = GeneratorNoise.from_file(generator_file(generator_checkpoint), device)
    return noise_images(lambda p: model, sources, out / "fake", seed, device)


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
    generator_checkpoint: str | None = None,
    clean_dirs: Sequence[str] = (),
    fake_dir: str | None = None,
    extra_test_sets: dict[str, dict] | None = None,
    out_dir: str | None = None,
    metrics_file: str | None = None,
    per_image_file: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fine-tune every starting denoiser at `fake_ratio`; returns (and writes) before/after scores.
    A start is a denoiser file (None: a smoke-size D_d trained in scratch) or released weights
    ({arch, arch_kwargs, weights}, see `pngan.denoise.load_denoiser`)."""
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    out = _out_dir(out_dir, f"finetune-{settings.get('fake_ratio', 0)}")
    starts = starts or {"ridnet": None}
    base = DenoiserConfig.from_dict(settings, "finetune")
    device = select_device(base.device)
    train_real, val = training_sets(data, base.crop, base.seed)
    fake = None
    if base.fake_ratio > 0:  # the generator is never touched at fake_ratio 0
        fake = PairDataset(fake_training_pairs(data, generator_checkpoint, clean_dirs, fake_dir, out, base.seed, device),
                           crop=base.crop, augment=True, seed=base.seed)
    mixed = MixedPairDataset(train_real if base.fake_ratio < 1 else None, fake, base.fake_ratio, base.seed)
    sets = test_sets(data, extra_test_sets or {})
    results, frames = {}, []
    for label, start in starts.items():
        start_net, arch, kwargs, weights = load_denoiser(start if isinstance(start, dict) else denoiser_file(start), device)
        cfg = DenoiserConfig.from_dict({**settings, "arch": arch, "arch_kwargs": kwargs, "init": weights}, "finetune")
        before, before_rows = score_sets(start_net, sets, device, out / label / "before", "before")
        summary = train_denoiser(cfg, mixed, val, out / label)
        tuned, _ = load_network_file(out / label / DENOISER_FILE, "denoiser", device)
        after, after_rows = score_sets(tuned, sets, device, out / label / "after", "after")
        results[label] = {"arch": arch, "start": weights, "before": before, "after": after,
                          "gain_psnr": {n: after[n]["psnr"] - before[n]["psnr"] for n in after if "psnr" in after[n]},
                          "train_seconds": summary["seconds"]}
        frames += [before_rows.assign(denoiser=label), after_rows.assign(denoiser=label)]
    report = {"fake_ratio": base.fake_ratio, "steps": base.steps, "denoisers": results,
              "test_sets": {n: kind for n, (kind, _) in sets.items()}, "run": run_info(device, seed=base.seed)}
    if per_image_file and frames:
        Path(per_image_file).parent.mkdir(parents=True, exist_ok=True)
        pd.concat(frames, ignore_index=True).to_csv(per_image_file, index=False, float_format="%.6g")
    if metrics_file:
        write_json(metrics_file, report)
    return report
