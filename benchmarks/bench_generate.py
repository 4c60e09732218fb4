"""Generation benchmark: noising one 4000 x 3000 image with the generator, tile by tile.

Measures megapixels/s and the peak memory of the whole call (synthetic input, tiled generator,
8-bit rounding), which must stay under 4 GiB. `quick` uses a 640 x 480 image in 256-pixel tiles
(SMNet costs about 3.5 TFLOP per megapixel, so the full size is a GPU job).

Run: `python -m benchmarks.bench_generate [--quick]`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

LIMIT_MIB = 4096


def run(quick: bool, generator: str = "smnet", generator_kwargs: dict[str, Any] | None = None, tile: int = 512, overlap: int = 32) -> dict[str, Any]:
    """Seconds, megapixels/s and peak memory of `generate_noisy` at the network's default size."""
    from benchmarks.bench_train import PeakMemory, seconds_per_call
    from pngan.generate import generate_noisy
    from pngan.runtime import run_info, select_device
    from pngan.train.checkpoint import build_network
    from pngan.train.gan import build_input_noise, input_spec
    from pngan.train.config import GanConfig

    device = select_device("auto")
    width, height = (640, 480) if quick else (4000, 3000)
    tile = min(tile, 256) if quick else tile
    torch.manual_seed(0)
    network = build_network(generator, generator_kwargs or {}).to(device).eval()
    noise = build_input_noise(input_spec(GanConfig().to_dict()))
    clean = torch.rand(1, 3, height, width)

    def generate() -> None:
        generate_noisy(network, noise, clean, seed=0, tile=tile, overlap=overlap)

    with PeakMemory(device) as peak:
        seconds = seconds_per_call(generate, device, repeat=1 if quick or device.type == "cpu" else 3, warmup=0 if device.type == "cpu" else 1)
    return {
        "what": "generate_noisy on one image: synthetic input, tiled generator, 8-bit rounding",
        "generator": generator,
        "generator_kwargs": generator_kwargs or {},
        "image": f"{width}x{height}",
        "tile": tile,
        "overlap": overlap,
        "seconds": seconds,
        "megapixels_per_s": width * height / 1e6 / seconds,
        "peak_memory_mib": peak.mib,
        "peak_memory_limit_mib": LIMIT_MIB,
        "within_limit": peak.mib < LIMIT_MIB,
        "threads": torch.get_num_threads(),
        **run_info(device, "fp32"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    result = run(args.quick)
    from benchmarks import common

    common.write_report("generate", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
