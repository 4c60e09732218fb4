"""Generation benchmark: noising one 4000 x 3000 image with the generator, tile by tile.

Measures megapixels/s and the peak memory (CUDA allocator peak; on a CPU the peak resident set
of the fresh process that runs it, imports included), which must stay under 4 GiB (`ok`).
`quick` uses a 640 x 480 image in 256-pixel tiles (SMNet costs about 3.5 TFLOP per megapixel,
so the full size is a GPU job).

Run: `python -m benchmarks.bench_generate [--quick]`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

LIMIT_MIB = 4096


def measure(generator: str, generator_kwargs: dict[str, Any], width: int, height: int, tile: int, overlap: int) -> dict[str, float]:
    """Seconds and peak memory (MiB) of `generate_noisy` on one random width x height image."""
    from benchmarks.common import peak_memory, timeit
    from pngan.generate import generate_noisy
    from pngan.runtime import select_device
    from pngan.train.checkpoint import build_network
    from pngan.train.config import GanConfig
    from pngan.train.gan import build_input_noise, input_spec

    device = select_device("auto")
    torch.manual_seed(0)
    network = build_network(generator, generator_kwargs).to(device).eval()
    noise = build_input_noise(input_spec(GanConfig().to_dict()))
    clean = torch.rand(1, 3, height, width)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    on_gpu = device.type == "cuda"
    seconds = timeit(lambda: generate_noisy(network, noise, clean, seed=0, tile=tile, overlap=overlap), repeat=3 if on_gpu else 1, warmup=1 if on_gpu else 0)
    return {"seconds": seconds, "peak_memory_mib": peak_memory(device) / 2**20}


def run(quick: bool, generator: str = "smnet", generator_kwargs: dict[str, Any] | None = None, tile: int = 512, overlap: int = 32) -> dict[str, Any]:
    """Megapixels/s and peak memory of tiled generation at the network's default size. On a CPU it
    runs in a fresh process, whose peak resident set (imports included) is then the call's."""
    from pngan.runtime import run_info, select_device

    device = select_device("auto")
    width, height = (640, 480) if quick else (4000, 3000)
    tile = min(tile, 256) if quick else tile
    args = (generator, generator_kwargs or {}, width, height, tile, overlap)
    if device.type == "cuda":
        measured = measure(*args)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            measured = pool.submit(measure, *args).result()
    rate = width * height / 1e6 / measured["seconds"]
    ok = measured["peak_memory_mib"] < LIMIT_MIB
    return {
        "summary": f"{width}x{height} in {tile}px tiles on {device.type}: {rate:.3g} MP/s, peak {measured['peak_memory_mib']:.0f} MiB (limit {LIMIT_MIB})",
        "ok": ok,
        "what": "generate_noisy on one image: synthetic input, tiled generator, 8-bit rounding",
        "generator": generator,
        "generator_kwargs": generator_kwargs or {},
        "image": f"{width}x{height}",
        "tile": tile,
        "overlap": overlap,
        "seconds": measured["seconds"],
        "megapixels_per_s": rate,
        "peak_memory_mib": measured["peak_memory_mib"],
        "peak_memory_limit_mib": LIMIT_MIB,
        "threads": torch.get_num_threads(),
        **run_info(device, "fp32"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    result = run(ap.parse_args().quick)
    from benchmarks.common import write_report

    write_report("generate", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
