"""A trained PNGAN generator used as a noise model, like any classical one.

y = G(y_s): the synthetic input y_s is drawn from the input noise model the generator was
trained with (AWGN sigma = 50/255 in Setting 1), then G is applied tile by tile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pngan.noise.base import NoiseModel
from pngan.runtime import autocast


class GeneratorNoise(NoiseModel):
    name = "pngan"

    def __init__(self, generator: nn.Module, input_noise: NoiseModel, input_name: str, precision: str = "fp32",
                 tile: int = 512, overlap: int = 32, info: dict[str, Any] | None = None):
        self.generator, self.input_noise, self.input_name = generator.eval(), input_noise, input_name
        self.precision, self.tile, self.overlap, self.info = precision, tile, overlap, info or {}

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu", **options: Any) -> "GeneratorNoise":
        """Load a generator file (or training checkpoint) written by `train_pngan`."""
        from pngan.generate import load_generator
        from pngan.train.gan import build_input_noise

        generator, info = load_generator(path, device)
        spec = info["input"]
        return cls(generator, build_input_noise(spec), spec["noise"], info={"file": str(path), "arch": info.get("arch"), "input": spec}, **options)

    @torch.no_grad()
    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from pngan.generate import apply_tiled

        y_s = self.input_noise.sample(clean, generator)
        with autocast(clean.device, self.precision):
            return apply_tiled(self.generator, y_s, self.tile, self.overlap).float()

    def params(self) -> dict[str, Any]:
        return dict(self.info)
