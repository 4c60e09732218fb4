"""Training-loop benchmark: `train_pngan` end to end (data loader, step, logging) per number of
loader workers, beside the isolated step of `bench_train`: the gap is what the loop and the data
loading cost, and it shows how many workers keep the step fed.

GPU: paper-size networks, 128x128 crops, batch 16, bf16 + channels_last. CPU: the laptop-size
networks of params.yaml, 64x64 crops, batch 8 (the default pipeline's setting), with and without
channels_last (which params.yaml sets from this comparison). Each run warms up for a few steps,
checkpoints, then resumes for the timed steps, so start-up (cuDNN autotuning, the first batches)
is excluded.

Run: `python -m benchmarks.bench_loop [--quick]`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

SOURCE_IMAGES, SOURCE_SIZE = 64, 256


def _networks(on_gpu: bool) -> dict[str, dict[str, Any]]:
    """Network keyword arguments: the paper's sizes on a GPU, params.yaml's on a CPU."""
    from benchmarks.common import laptop_sizes

    return {} if on_gpu else laptop_sizes()


def loop_rate(dataset, denoiser: torch.nn.Module, out_dir: Path, workers: int, channels_last: bool, crop: int, batch: int, warmup: int, steps: int, on_gpu: bool) -> float:
    """Steps/s of the training loop over `steps` steps after `warmup` steps (resumed run)."""
    from pngan.train import GanConfig, train_pngan

    sizes = _networks(on_gpu)
    common = dict(
        generator_kwargs=sizes.get("generator_kwargs", {}), discriminator_kwargs=sizes.get("discriminator_kwargs", {}), crop=crop, batch=batch, val_every=0, log_every=10**9, ckpt_every=10**9,
        num_workers=workers, channels_last=channels_last, precision="auto", device="auto",
    )
    train_pngan(GanConfig(steps=warmup, **common), dataset, None, denoiser, out_dir)
    summary = train_pngan(GanConfig(steps=warmup + steps, **common), dataset, None, denoiser, out_dir)
    assert summary["resumed_from"] == warmup, summary
    return steps / summary["session_seconds"]


def run(quick: bool) -> dict[str, Any]:
    from benchmarks.bench_loader import write_pairs
    from pngan.data.patches import PairDataset
    from pngan.models import build
    from pngan.runtime import run_info, select_device

    device = select_device("auto")
    on_gpu = device.type == "cuda"
    crop, batch = (128, 16) if on_gpu else (64, 8)
    warmup, steps = (2, 5) if quick else ((20, 300) if on_gpu else (2, 8))
    cpus = os.cpu_count() or 1
    worker_counts = [w for w in (0, 2, 4, 8) if w <= max(cpus // 2, 2)]
    denoiser_kwargs = _networks(on_gpu).get("denoiser_kwargs", {})
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_loop_") as tmp:
        tmp = Path(tmp)
        write_pairs(tmp / "train", SOURCE_IMAGES, SOURCE_SIZE)
        dataset = PairDataset.from_folder(tmp / "train", crop, augment=True, seed=0)

        def measure(workers: int, channels_last: bool) -> None:
            name = f"workers_{workers}" + ("+channels_last" if channels_last and not on_gpu else "")
            torch.manual_seed(0)
            denoiser = build("ridnet", **denoiser_kwargs)
            rates[name] = loop_rate(dataset, denoiser, tmp / name, workers, channels_last, crop, batch, warmup, steps, on_gpu)

        if on_gpu:  # NHWC always (bench_train shows it), every worker count
            for workers in worker_counts:
                measure(workers, True)
        else:  # both layouts without workers, then the faster one with workers
            measure(0, False)
            measure(0, True)
            faster = rates["workers_0+channels_last"] > rates["workers_0"]
            for workers in worker_counts[1:]:
                measure(workers, faster)
    best = max(rates, key=rates.get)
    line = ", ".join(f"{k} {v:.3g}" for k, v in rates.items())
    return {
        "summary": f"{device.type}, {crop}x{crop} batch {batch}{' bf16+channels_last' if on_gpu else ''}: loop steps/s {line} (best: {best})",
        "what": "train_pngan end to end after a warm-up: loader, G and D steps, logging",
        "crop": crop,
        "batch": batch,
        "timed_steps": steps,
        "loop_steps_per_s": rates,
        "loop_images_per_s": {k: v * batch for k, v in rates.items()},
        "cpu_count": cpus,
        **run_info(device),
    }


def main() -> None:
    from benchmarks.common import standalone

    standalone("loop", run, __doc__)


if __name__ == "__main__":
    main()
