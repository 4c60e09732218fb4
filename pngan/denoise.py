"""Load a denoiser, apply it to images and score it (PSNR, SSIM in both protocols), on any number
of test sets; a noisy-only benchmark (SIDD benchmark, DND) gets its submission files instead."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
import torch.nn as nn

from pngan.data.pairs import Pair
from pngan.data.submission import write_dnd_submission, write_sidd_submission
from pngan.images import to_image, to_tensor
from pngan.metrics import image_metrics, psnr
from pngan.models import build as build_network
from pngan.models import final_output
from pngan.models.files import load_network_file
from pngan.models.tiling import apply_tiled
from pngan.runtime import autocast
from pngan.train.denoiser import load_initial_weights

SCORES = ("psnr", "ssim_rgb", "ssim_y")
NOISY_ONLY = {"sidd_benchmark": "SIDD benchmark", "dnd": "DND"}  # reader kinds without public ground truth


def load_denoiser(start: str | Path | dict, device: torch.device) -> tuple[nn.Module, str, dict, str]:
    """(network, arch, kwargs, weights file) of a kit denoiser file, or of released weights given as
    {arch, arch_kwargs, weights} (e.g. the authors' MIRNet_sidd.pth, the official RIDNet with
    arch_kwargs {mean_shift: true})."""
    if isinstance(start, dict):
        unknown = set(start) - {"arch", "arch_kwargs", "weights"}
        if unknown or "arch" not in start or "weights" not in start:
            raise ValueError(f"finetune.starts: a released-weights start is {{arch, arch_kwargs, weights}}, got {sorted(start)}")
        kwargs = dict(start.get("arch_kwargs") or {})
        network = build_network(start["arch"], trusted=True, **kwargs)  # params.yaml: the user's own settings
        load_initial_weights(network, start["weights"])
        return network.to(device).eval(), start["arch"], kwargs, str(start["weights"])
    network, info = load_network_file(start, "denoiser", device)
    return network, info["arch"], info["kwargs"], str(start)


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


def write_submission(network: nn.Module, kind: str, pairs: Sequence[Pair], folder: Path, device: torch.device) -> str:
    """Denoise a noisy-only benchmark and write its official submission layout."""
    started, pixels, denoised = time.perf_counter(), 0, {}
    for pair in pairs:
        noisy = pair.noisy.load()
        denoised[pair.name] = denoise(network, noisy, device)
        pixels += noisy.shape[0] * noisy.shape[1]
    if kind == "dnd":
        write_dnd_submission(folder, denoised)
        return str(folder)
    seconds_per_mp = (time.perf_counter() - started) / (pixels / 1e6)
    return str(write_sidd_submission(folder / "SubmitSrgb.mat", denoised, seconds_per_mp))


def score_sets(network: nn.Module, sets: dict[str, tuple[str, list[Pair]]], device: torch.device, folder: Path,
               tag: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Mean scores per test set ({name: (reader kind, pairs)}; a noisy-only one: its submission
    files, written under `folder`), and every image's scores with its set's name and `tag`."""
    scores, frames = {}, []
    for name, (kind, pairs) in sets.items():
        if kind in NOISY_ONLY:
            scores[name] = {"submission": write_submission(network, kind, pairs, folder / f"submission_{name}", device)}
            continue
        frame = score_denoiser(network, pairs, device).assign(test_set=name, when=tag)
        scores[name] = {k: float(frame[k].mean()) for k in (*SCORES, "psnr_noisy")}
        frames.append(frame)
    return scores, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
