"""Training data benchmark: memory stays flat as the data set grows 10x; throughput vs training.

Writes N synthetic noisy/clean PNG pairs to a temporary folder, then, each in a fresh
subprocess per task, (a) cuts a patch set from all of them and (b) reads 128 x 128 crops of every
image through the trainer's one path, `PairDataset` + `StepSampler` + `make_loader`, lazily and with a
bounded cache (`cache=True, cache_mb=CACHE_MB`). The peak resident memory above the
post-import level is compared for N and 10 N images, against what holding every decoded pair
would add. Throughput is patches/s through the same path with 0 and 2 workers, set against the
rate a training step consumes them: the fp32 images/s of the latest `bench_train` report when
there is one, else `--consumption` (default about a CPU GAN step, 8 patches/s).

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

from benchmarks.common import REPORT_DIR

REPO = Path(__file__).resolve().parents[1]
CROP, BATCH = 128, 8
CACHE_MB = 8.0  # the cached mode's bound: below what 10 N images take, so the bound shows
DEFAULT_CONSUMPTION = 8.0  # patches/s of a CPU GAN step when no train report exists

# Runs one task in a fresh subprocess: the peak RSS (VmHWM) is reset to the current RSS first, so
# the peak measures the task only (not the imports, nor memory an earlier task left to malloc).
_PEAK_SCRIPT = r"""
import json, math, sys
from pathlib import Path
import torch
torch.set_num_threads(1)  # memory is measured here, not speed: spare the shared cores
from pngan.data.patches import PairDataset, make_patch_set
from pngan.data.readers import read_dataset
from pngan.data.sampling import StepSampler, make_loader

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status("VmRSS:")

task, root, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
crop, batch, cache_mb = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
pairs = read_dataset("generic", root)
base = reset_peak()
if task == "patch_set":
    make_patch_set(pairs, out, size=crop, per_image=2, seed=0)
else:
    options = {"cache": True, "cache_mb": cache_mb} if task == "loader_cached" else {}
    dataset = PairDataset(pairs, crop, seed=0, **options)
    steps = math.ceil(len(pairs) / batch)  # one crop per image on average
    for _ in make_loader(dataset, StepSampler(len(dataset), batch, steps, seed=0)):
        pass
print(json.dumps(status("VmHWM:") - base))
"""
TASKS = ("patch_set", "loader_lazy", "loader_cached")


def write_pairs(root: Path, count: int, size: int, seed: int = 0) -> None:
    """`count` noisy/clean PNG pairs of size x size in the generic layout."""
    from pngan.images import write_png

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    for i in range(count):
        clean = (ramp[:, None, None] + ramp[None, :, None] * 0.2 + rng.uniform(0, 20, (1, 1, 3))).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        write_png(root / "noisy" / f"img{i:04d}.png", noisy)
        write_png(root / "clean" / f"img{i:04d}.png", clean)


def peak_memory_mb(task: str, root: Path, out: Path) -> float:
    """Peak RSS growth (MB) of one of TASKS on the pairs of `root`: cutting a patch set into
    `out`, or one pass of the loader (lazy or cached) over one crop per image."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, task, str(root), str(out), str(CROP), str(BATCH), str(CACHE_MB)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def throughput(root: Path, workers: int, batches: int) -> float:
    """Patches per second over `batches` batches, after one warm-up batch (worker start-up)."""
    from pngan.data.patches import PairDataset
    from pngan.data.sampling import StepSampler, make_loader

    dataset = PairDataset.from_folder(root, CROP, seed=0)
    it = iter(make_loader(dataset, StepSampler(len(dataset), BATCH, batches + 1, seed=0), workers=workers))
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def training_consumption(consumption: float | None, report_dir: Path = REPORT_DIR) -> tuple[float, str]:
    """Patches/s a training step consumes, and where the number comes from: the fastest variant
    of the latest train report in `report_dir` (the most demanding consumer), else the default."""
    if consumption is not None:
        return consumption, "given"
    report = Path(report_dir) / "train.json"
    if report.is_file():
        result = json.loads(report.read_text())["result"]
        rates = {name: r["images_per_s"] for name, r in result["results"].items() if "images_per_s" in r}
        fastest = max(rates, key=rates.get)
        return round(rates[fastest], 2), f"{report.name}: {fastest} {result['crop']}x{result['crop']} batch {result['batch']}"
    return DEFAULT_CONSUMPTION, "default (no train report)"


def run(quick: bool, consumption: float | None = None, report_dir: Path = REPORT_DIR) -> dict:
    """Peak memory for N and 10 N source images, and loader throughput vs what training consumes."""
    counts = (10, 100) if quick else (20, 200)
    size = 256
    batches = 10 if quick else 30
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        tmp = Path(tmp)
        memory: dict[str, list[float]] = {task: [] for task in TASKS}
        for n in counts:
            write_pairs(tmp / f"src{n}", n, size)
            for task in TASKS:
                memory[task].append(round(peak_memory_mb(task, tmp / f"src{n}", tmp / f"patches{n}"), 1))
        workers = (0, 2, 4, 8) if (os.cpu_count() or 1) >= 8 else (0, 2)
        rates = {f"workers_{w}": round(throughput(tmp / f"src{counts[1]}", w, batches), 1) for w in workers}
    consumed, source = training_consumption(consumption, report_dir)
    held_if_not_streamed_mb = 2 * counts[1] * size * size * 3 / 2**20
    growth = {mode: round(v[1] - v[0], 1) for mode, v in memory.items()}
    # flat: 10x the images adds well under what holding the added images would (and the cache stays in its bound)
    flat = all(g < 0.25 * held_if_not_streamed_mb for g in growth.values()) and growth["loader_cached"] < CACHE_MB + 0.1 * held_if_not_streamed_mb
    return {
        "summary": (
            f"peak memory {counts[0]} -> {counts[1]} images: +{growth['loader_lazy']} MB lazy, +{growth['loader_cached']} MB cached "
            f"(bound {CACHE_MB:g} MB), +{growth['patch_set']} MB patch set (holding all: {held_if_not_streamed_mb:.0f} MB); "
            f"{' / '.join(str(r) for r in rates.values())} patches/s with {' / '.join(map(str, workers))} workers vs {consumed} consumed"
        ),
        "ok": flat,
        "source_images": list(counts),
        "source_size": size,
        "torch_threads": torch.get_num_threads(),
        "crop": CROP,
        "batch": BATCH,
        "cache_mb": CACHE_MB,
        "peak_rss_above_start_mb": memory,
        "peak_growth_mb": growth,
        "held_if_not_streamed_mb": round(held_if_not_streamed_mb, 1),
        "throughput_patches_per_s": rates,
        "consumption_patches_per_s": consumed,
        "consumption_from": source,
        "headroom_x": {k: round(v / consumed, 1) for k, v in rates.items()},
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller images and counts")
    parser.add_argument("--consumption", type=float, default=None, help="patches/s training consumes (default: the train report's, else 8)")
    args = parser.parse_args()
    from benchmarks.common import write_report

    result = run(args.quick, args.consumption)
    write_report("loader", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
