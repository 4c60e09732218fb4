"""Generation benchmark: noising one 4000 x 3000 image with the generator, tile by tile.

Measures megapixels/s and the peak memory (CUDA allocator peak; on a CPU the peak resident set
of the fresh process that runs it, imports included), which must stay under 4 GiB (`ok`).
SMNet at paper size costs about 3.5 TFLOP per megapixel: on a CPU the full image is generated
with the laptop-size generator of params.yaml, and the paper size is timed on 320 x 240.

Run: `python -m benchmarks.bench_generate [--quick]`.
"""

from __future__ import annotations

from typing import Any

import torch

LIMIT_MIB = 4096


def measure(generator: str, generator_kwargs: dict[str, Any], width: int, height: int, tile: int, overlap: int) -> dict[str, float]:
    """Seconds and peak memory (MiB) of `generate_noisy` on one random width x height image."""
    from benchmarks.common import peak_memory, timeit
    from pngan.generate import generate_noisy
    from pngan.runtime import select_device
    from pngan.models import build as build_network
    from pngan.train.config import GanConfig
    from pngan.noise.synthetic import build_input_noise, input_spec

    device = select_device("auto")
    torch.manual_seed(0)
    network = build_network(generator, trusted=True, **generator_kwargs).to(device).eval()
    noise = build_input_noise(input_spec(GanConfig().to_dict()))
    clean = torch.rand(1, 3, height, width)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    on_gpu = device.type == "cuda"
    seconds = timeit(lambda: generate_noisy(network, noise, clean, seed=0, tile=tile, overlap=overlap), repeat=3 if on_gpu else 1, warmup=1 if on_gpu else 0)
    return {"seconds": seconds, "peak_memory_mib": peak_memory(device) / 2**20}


def _measure_here(device: torch.device, *args: Any) -> dict[str, float]:
    """`measure` in this process on a GPU; on a CPU in a fresh one, whose peak resident set
    (imports included) is then the call's."""
    if device.type == "cuda":
        return measure(*args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def run(quick: bool, generator: str = "smnet", tile: int = 512, overlap: int = 32) -> dict[str, Any]:
    """Megapixels/s and peak memory of tiled generation of a 12-megapixel (4000 x 3000) image.

    GPU: the paper-size generator. CPU: the laptop-size generator of params.yaml on the full
    image (a paper-size one would take ~10 minutes here), plus the paper size on 320 x 240 for
    its throughput. `quick`: 320 x 240 only.
    """
    from benchmarks.common import laptop_sizes
    from pngan.runtime import run_info, select_device

    device = select_device("auto")
    runs = {}
    if not quick:
        sizes = {} if device.type == "cuda" else laptop_sizes()["generator_kwargs"]
        runs["full"] = {"generator_kwargs": sizes, "image": (4000, 3000), "tile": tile}
    if quick or device.type != "cuda":
        runs["paper_size_small_image"] = {"generator_kwargs": {}, "image": (320, 240), "tile": min(tile, 256)}
    results = {}
    for name, spec in runs.items():
        width, height = spec["image"]
        measured = _measure_here(device, generator, spec["generator_kwargs"], width, height, spec["tile"], overlap)
        results[name] = {**spec, "image": f"{width}x{height}", **measured,
                         "megapixels_per_s": width * height / 1e6 / measured["seconds"]}
    ok = all(r["peak_memory_mib"] < LIMIT_MIB for r in results.values())
    summary = "; ".join(
        f"{r['image']} ({_size(r['generator_kwargs'])}, {r['tile']}px tiles): {r['megapixels_per_s']:.3g} MP/s, peak {r['peak_memory_mib']:.0f} MiB"
        for r in results.values()
    )
    return {
        "summary": f"{device.type}: {summary} (limit {LIMIT_MIB} MiB)",
        "ok": ok,
        "what": "generate_noisy on one image: synthetic input, tiled generator, 8-bit rounding",
        "generator": generator,
        "overlap": overlap,
        "runs": results,
        "peak_memory_limit_mib": LIMIT_MIB,
        "threads": torch.get_num_threads(),
        **run_info(device, "fp32"),
    }


def _size(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kwargs.items()) or "paper size"


def main() -> None:
    from benchmarks.common import standalone

    standalone("generate", run, __doc__)


if __name__ == "__main__":
    main()
