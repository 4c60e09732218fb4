"""Patch loader benchmark: memory stays flat as the data set grows 10x; throughput vs training.

Writes N synthetic noisy/clean PNG pairs to a temporary folder, then, each in a fresh
subprocess, (a) cuts a patch set from all of them and (b) reads one epoch of 128 x 128 crops
through `PairPatchDataset` + `make_loader`; the peak resident memory above the post-import
level is compared for N and 10 N images. Throughput is patches/s with 0 and 2 workers, set
against the rate training consumes them (default: a CPU GAN step, about 8 patches/s).

Run: `python -m benchmarks.bench_loader [--quick] [--consumption 8]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CROP, BATCH = 128, 8

# Runs in a subprocess: before each task the peak RSS (VmHWM) is reset to the current RSS, so
# each peak measures that task only (not the imports).
_PEAK_SCRIPT = r"""
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)  # memory is measured here, not speed: spare the shared cores
from pngan.data.patches import PairPatchDataset, make_loader, make_patch_set
from pngan.data.readers import read_dataset

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status("VmRSS:")

root, out, crop, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pairs = read_dataset("generic", root)
peaks = {}
base = reset_peak()
make_patch_set(pairs, out, size=crop, per_image=2, seed=0)
peaks["patch_set"] = status("VmHWM:") - base
base = reset_peak()
for _ in make_loader(PairPatchDataset(pairs, crop=crop, seed=0), batch=batch, workers=0, seed=0):
    pass
peaks["loader"] = status("VmHWM:") - base
print(json.dumps(peaks))
"""


def write_pairs(root: Path, count: int, size: int, seed: int = 0) -> None:
    """`count` noisy/clean PNG pairs of size x size in the generic layout."""
    from pngan.io import write_png

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    for i in range(count):
        clean = (ramp[:, None, None] + ramp[None, :, None] * 0.2 + rng.uniform(0, 20, (1, 1, 3))).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        write_png(root / "noisy" / f"img{i:04d}.png", noisy)
        write_png(root / "clean" / f"img{i:04d}.png", clean)


def peak_memory_mb(root: Path, out: Path) -> dict[str, float]:
    """Peak RSS growth (MB) of cutting a patch set from `root` and of one loader epoch over it."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(root), str(out), str(CROP), str(BATCH)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(root: Path, workers: int, batches: int) -> float:
    """Patches per second over `batches` batches, after one warm-up batch (worker start-up)."""
    from pngan.data.patches import PairPatchDataset, make_loader

    loader = make_loader(PairPatchDataset(root, crop=CROP, seed=0), batch=BATCH, workers=workers, seed=0)
    it = (batch for _ in iter(int, 1) for batch in loader)  # epoch after epoch
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def run(quick: bool, consumption: float = 8.0) -> dict:
    """Peak memory for N and 10 N source images, and loader throughput vs `consumption` patches/s."""
    counts = (10, 100) if quick else (20, 200)
    size = 256
    batches = 10 if quick else 30
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        tmp = Path(tmp)
        memory: dict[str, list[float]] = {"patch_set": [], "loader": []}
        for n in counts:
            write_pairs(tmp / f"src{n}", n, size)
            for mode, peak in peak_memory_mb(tmp / f"src{n}", tmp / f"patches{n}").items():
                memory[mode].append(round(peak, 1))
        rates = {f"workers_{w}": round(throughput(tmp / f"src{counts[1]}", w, batches), 1) for w in (0, 2)}
    held_if_not_streamed_mb = 2 * counts[1] * size * size * 3 / 2**20
    return {
        "source_images": list(counts),
        "source_size": size,
        "torch_threads": torch.get_num_threads(),
        "crop": CROP,
        "batch": BATCH,
        "peak_rss_above_start_mb": memory,
        # growth from N to 10 N images, against what holding every decoded pair would add
        "peak_growth_mb": {mode: round(v[1] - v[0], 1) for mode, v in memory.items()},
        "held_if_not_streamed_mb": round(held_if_not_streamed_mb, 1),
        "throughput_patches_per_s": rates,
        "consumption_patches_per_s": consumption,
        "headroom_x": {k: round(v / consumption, 1) for k, v in rates.items()},
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller images and counts")
    parser.add_argument("--consumption", type=float, default=8.0, help="patches/s the trainer consumes (steps/s x batch)")
    args = parser.parse_args()
    from benchmarks.common import write_report

    result = run(args.quick, args.consumption)
    write_report("loader", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
