"""Apply a trained denoiser to images and score it (PSNR, SSIM in both protocols)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
import torch.nn as nn

from pngan.data.pairs import Pair
from pngan.images import to_image, to_tensor
from pngan.metrics import image_metrics, psnr
from pngan.models import final_output
from pngan.models.tiling import apply_tiled
from pngan.runtime import autocast


@torch.no_grad()
def denoise(network: nn.Module, noisy, device: torch.device, precision: str = "fp32", tile: int = 1024):
    """Denoised uint8 H x W x 3 image from a uint8 one; large images go tile by tile."""
    x = to_tensor(noisy)[None].to(device)
    with autocast(device, precision):
        out = apply_tiled(lambda t: final_output(network(t)), x, tile, overlap=32).float()
    return to_image(out[0])


def score_denoiser(network: nn.Module, pairs: Sequence[Pair], device: torch.device, precision: str = "fp32") -> pd.DataFrame:
    """Per-image PSNR and SSIM (RGB; Y of MATLAB rgb2ycbcr) of the denoised and the noisy images."""
    network.eval()
    rows = []
    for pair in pairs:
        noisy, clean = pair.load()
        out = denoise(network, noisy, device, precision)
        x, y, z = (to_tensor(a)[None] for a in (clean, noisy, out))
        scores = {name: values[0] for name, values in image_metrics(x, z).items()}  # psnr, ssim_rgb, ssim_y
        rows.append({"image": pair.name, **pair.meta, **scores, "psnr_noisy": float(psnr(y, x))})
    return pd.DataFrame(rows)
