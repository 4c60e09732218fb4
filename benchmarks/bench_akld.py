"""AKLD evaluation throughput (issue 8): L = 50 generator draws per 256 x 256 RGB block.

`pngan.metrics.akld` (torch on the CPU at the default thread count and at one thread, and on CUDA
when present) against a vectorised float32 NumPy/SciPy implementation of the same definition
written here (separable `scipy.ndimage.correlate1d`, mode 'mirror'; one block with all its draws
per call). The paths are timed round by round, side by side, so that machine load hits them alike;
the speed ratio is the median of the per-round ratios. Correctness: the largest difference of the
per-image AKLD between each torch path and the reference must stay <= 1e-6, and on CUDA `akld` must
make no synchronising call.

On a CPU shared with other busy processes, torch's multi-threaded path can be many times slower
than its one-thread path because libgomp spins at every barrier; `OMP_WAIT_POLICY=PASSIVE` in the
environment avoids it. The report records the machine load and the policy.
"""

from __future__ import annotations

import statistics
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from benchmarks.common import peak_memory, timeit
from pngan.metrics import akld, gaussian_taps
from pngan.noise.base import quantize

DRAWS = 50
SIZE = 256
TOLERANCE = 1e-6


def make_blocks(n_blocks: int, draws: int = DRAWS, size: int = SIZE, seed: int = 0):
    """Smooth clean blocks, a heteroscedastic 'real' noisy block and `draws` 'fake' ones, all 8-bit."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n_blocks, 3, size // 16, size // 16, generator=g)
    clean = quantize(F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) * 0.8 + 0.1)

    def noisy(gain: float, floor: float, shape: tuple[int, ...]) -> torch.Tensor:
        return quantize(clean + (gain * clean + floor).sqrt() * torch.randn(shape, generator=g))

    return clean, noisy(4e-3, 2e-4, clean.shape), noisy(3e-3, 3e-4, (draws, *clean.shape))


def akld_scipy(clean: np.ndarray, real: np.ndarray, fake: np.ndarray, taps: np.ndarray,
               clip: tuple[float, float] = (0.1, 10.0), eps: float = 1e-10) -> np.ndarray:
    """Reference AKLD per image, float32: clean/real (B, C, H, W), fake (L, B, C, H, W)."""

    def local_variance(noise: np.ndarray) -> np.ndarray:
        energy = ndimage.correlate1d(np.square(noise), taps, axis=-1, mode="mirror")
        energy = ndimage.correlate1d(energy, taps, axis=-2, mode="mirror")
        return np.maximum(energy, np.float32(eps), out=energy)

    out = np.empty(clean.shape[0])
    for b in range(clean.shape[0]):
        v_real = local_variance(real[b] - clean[b])
        draws = np.round(np.clip(fake[:, b], 0, 1) * np.float32(255)) / np.float32(255)
        ratio = np.clip(local_variance(draws - clean[b]) / v_real, np.float32(clip[0]), np.float32(clip[1]))
        out[b] = (0.5 * (ratio - 1 - np.log(ratio))).mean(axis=(1, 2, 3), dtype=np.float64).mean()
    return out


def _with_threads(threads: int, fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    def call() -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)

    return call


def _runs_without_sync(fn: Callable[[], torch.Tensor]) -> bool:
    """True when `fn` makes no synchronising CUDA call (torch's sync debug mode raises on one)."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        return True
    except RuntimeError:
        return False
    finally:
        torch.cuda.set_sync_debug_mode("default")


def run(quick: bool = False) -> dict:
    n_blocks, rounds = (2, 3) if quick else (4, 3)
    clean, real, fake = make_blocks(n_blocks)
    taps = gaussian_taps(7, 1.4).numpy()
    threads = torch.get_num_threads()
    paths: dict[str, Callable] = {
        "scipy": lambda: akld_scipy(clean.numpy(), real.numpy(), fake.numpy(), taps),
        "torch_cpu": lambda: akld(clean, real, fake),
        "torch_cpu_1thread": _with_threads(1, lambda: akld(clean, real, fake)),
    }
    if torch.cuda.is_available():
        on_gpu = [t.cuda() for t in (clean, real, fake)]
        paths["torch_cuda"] = lambda: akld(*on_gpu)

    values = {name: np.asarray(torch.as_tensor(fn()).cpu(), dtype=np.float64) for name, fn in paths.items()}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            times[name].append(timeit(fn, repeat=1, warmup=0))

    seconds = {name: statistics.median(t) for name, t in times.items()}
    blocks_per_s = {name: n_blocks / s for name, s in seconds.items()}
    ratio = {
        name: statistics.median(a / b for a, b in zip(times["scipy"], times[name])) for name in paths if name != "scipy"
    }
    max_diff = {name: float(np.abs(v - values["scipy"]).max()) for name, v in values.items() if name != "scipy"}
    sync_free = _runs_without_sync(paths["torch_cuda"]) if "torch_cuda" in paths else None
    ok = all(d <= TOLERANCE for d in max_diff.values()) and sync_free is not False
    cuda = f"; cuda {blocks_per_s['torch_cuda']:.0f} blocks/s ({ratio['torch_cuda']:.0f}x)" if "torch_cuda" in paths else ""
    return {
        "summary": (
            f"torch cpu {blocks_per_s['torch_cpu']:.1f} blocks/s ({threads} thr), {blocks_per_s['torch_cpu_1thread']:.1f} (1 thr); "
            f"scipy {blocks_per_s['scipy']:.1f}; torch/scipy speed {ratio['torch_cpu']:.2f}x "
            f"({ratio['torch_cpu_1thread']:.2f}x at 1 thr){cuda}; max abs diff {max(max_diff.values()):.1e}"
        ),
        "ok": ok,
        "blocks": n_blocks,
        "draws_per_block": DRAWS,
        "block_size": [3, SIZE, SIZE],
        "rounds": rounds,
        "torch_threads": threads,
        "seconds_median": seconds,
        "seconds_all": times,
        "blocks_per_s": blocks_per_s,
        "speed_ratio_vs_scipy": ratio,
        "max_abs_diff_vs_scipy": max_diff,
        "tolerance": TOLERANCE,
        "cuda_sync_free": sync_free,
        "akld_mean": float(values["scipy"].mean()),
        "peak_memory_bytes": {"cpu_rss": peak_memory()} | (
            {"cuda": peak_memory("cuda")} if torch.cuda.is_available() else {}
        ),
    }
