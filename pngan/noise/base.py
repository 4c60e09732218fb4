"""The interface every noise model follows.

A noise model turns clean sRGB images into noisy ones. Tensors are (B, 3, H, W) float32 in
[0, 1]; `sample` returns images clipped to [0, 1] and quantised to 8-bit levels (k / 255),
like real 8-bit data. Models with parameters learn them in `fit` from clean/noisy pairs of
the *training split only*; `params()` returns them as plain JSON-serialisable values.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

# (clean, noisy) uint8 H x W x 3 arrays
TrainPairs = Sequence[tuple[np.ndarray, np.ndarray]]


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to 8-bit levels, keeping float32."""
    return image.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


class NoiseModel:
    """Base class. Subclasses set `name` and implement `_sample` (and `fit` if they learn)."""

    name: str = "noise"
    fitted_params: tuple[str, ...] = ()  # names of learned parameters (empty: nothing to fit)

    def fit(self, pairs: TrainPairs) -> "NoiseModel":
        return self

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy version of `clean` (B, 3, H, W) in [0, 1], clipped and 8-bit quantised."""
        if clean.ndim != 4 or clean.shape[1] != 3:
            raise ValueError(f"{self.name}: expected a (B, 3, H, W) tensor, got {tuple(clean.shape)}")
        if generator is None:
            generator = torch.Generator(device=clean.device).manual_seed(0)
        return quantize(self._sample(clean.float(), generator))

    def params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
