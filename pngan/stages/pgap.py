"""Stage `pgap`: the PSNR gap of every noise model (DANet's PGap).

The same denoiser, with the same schedule, is trained once on the real training pairs and once
on each noise model's fake pairs made from the *same* clean training images; all are tested on
the real test pairs. PGap = PSNR(trained on real) - PSNR(trained on fake): how much worse a
denoiser gets when it learns from generated instead of real noise (lower is better). Both
generators are scored, the noise-aware one at each training image's camera setting; their fake
pairs (fake/<model>/) are also what stage `finetune` mixes in.
"""

from __future__ import annotations

from typing import Any, Sequence

from pngan import noise_models as nm
from pngan.data.patches import PairDataset, training_sets
from pngan.data.prepared import given_or_smoke, load_split
from pngan.denoise import score_denoiser
from pngan.models.files import load_network_file
from pngan.runtime import run_info, select_device, stable_seed
from pngan.stages import smoke
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json
from pngan.train.config import DenoiserConfig
from pngan.train.denoiser import DENOISER_FILE, train_denoiser

SECTIONS = ("runtime", "pgap")
CONFIG = DenoiserConfig
REAL = "real"


def run(
    data_dir: str | None = None,
    models: Sequence[str] = ("awgn", "awgn_fitted", "heteroscedastic", "camera_fitted"),
    model_options: dict[str, dict] | None = None,
    generator_checkpoint: str | None = None,
    aware_checkpoint: str | None = None,
    oracle: bool = True,
    out_dir: str | None = None,
    metrics_file: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Train the fixed denoiser on real and on every model's fake pairs; returns (and writes) PSNRs and PGaps."""
    data = given_or_smoke(data_dir, smoke.settings("prepare"))
    out = _out_dir(out_dir, "pgap")
    cfg = DenoiserConfig.from_dict(settings, "pgap")
    device = select_device(cfg.device)
    train, test = load_split(data, "train"), load_split(data, "test")
    model_for = nm.fit_models(models, model_options or {}, train)
    generators = nm.load_generators({nm.PNGAN: generator_checkpoint, nm.PNGAN_AWARE: aware_checkpoint}, device)
    model_for.update(nm.references(train, oracle, generators))
    _, val = training_sets(data, cfg.crop, cfg.seed)
    sources = {REAL: train}
    for name, chooser in model_for.items():
        sources[name] = nm.noise_images(chooser, train, out / "fake" / name, stable_seed(cfg.seed, name), device)
    results: dict[str, Any] = {}
    for name, pairs in sources.items():
        dataset = PairDataset(pairs, crop=cfg.crop, augment=True, seed=cfg.seed)
        summary = train_denoiser(cfg, dataset, val, out / "denoisers" / name)
        network, _ = load_network_file(out / "denoisers" / name / DENOISER_FILE, "denoiser", device)
        results[name] = {"psnr": float(score_denoiser(network, test, device)["psnr"].mean()), "train_seconds": summary["seconds"]}
    real_psnr = results[REAL]["psnr"]
    for name in model_for:
        results[name]["pgap"] = real_psnr - results[name]["psnr"]
    report = {
        "models": results,
        "denoiser": {"arch": cfg.arch, "arch_kwargs": cfg.arch_kwargs, "steps": cfg.steps, "crop": cfg.crop, "batch": cfg.batch},
        "train_images": len(train),
        "test_images": len(test),
        "dataset": sorted({str(p.meta.get("dataset")) for p in test}),
        "run": run_info(device, seed=cfg.seed),
    }
    if metrics_file:
        write_json(metrics_file, report)
    return report
