"""Run a network on a large image tile by tile, with bounded memory.

Each `tile` x `tile` block is computed with `overlap` pixels of context on each side, which are
then cropped off, so a network whose receptive field fits in the overlap gives exactly the
untiled result (SMNet's global channel attention makes tiles differ very slightly).
"""

from __future__ import annotations

from typing import Callable

import torch


@torch.no_grad()
def apply_tiled(network: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int = 512, overlap: int = 32) -> torch.Tensor:
    """`network(image)` computed tile by tile; `tile <= 0` runs it whole. The output may have
    other channels than the input (a network reading an image with its condition channels)."""
    if tile <= 0 or (image.shape[-2] <= tile and image.shape[-1] <= tile):
        return network(image)
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    height, width = image.shape[-2:]
    out: torch.Tensor | None = None  # shaped by the first block's channels
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
            block = network(image[..., y0:y1, x0:x1])
            if out is None:
                out = block.new_empty((*block.shape[:-2], height, width))
            out[..., top:bottom, left:right] = block[..., top - y0 : bottom - y0, left - x0 : right - x0]
    return out
