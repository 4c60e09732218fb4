"""Noise clean images with a trained PNGAN generator, and score noisy folders.

    generator, info = load_generator("runs/pngan/generator.pt")
    noise = build_input_noise(info["input"])                          # the synthetic input it expects
    fake = generate_noisy(generator, noise, clean, seed=0)             # (1, 3, H, W) in 8-bit levels
    generate_folder("runs/pngan/generator.pt", "clean/", "fake/")     # one PNG per clean image
    scores = score_folders("clean/", "real/", "fake/")                # AKLD / KLD / PSNR per image

Large images are processed in tiles whose borders (`overlap` pixels of context on each side)
are computed and thrown away, so a generator whose receptive field fits in the overlap gives
exactly the untiled result; SMNet's global channel attention makes tiles differ very slightly.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from pngan.data.pairs import list_images, read_clean_folder
from pngan.data.sampling import keyed_generator
from pngan.io import DataError, read_image, to_image, to_tensor, write_png
from pngan.noise.base import NoiseModel, quantize
from pngan.runtime import autocast, select_device
from pngan.train.checkpoint import load_network_file
from pngan.train.gan import build_input_noise, input_spec


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a PNGAN generator file (or training checkpoint), in eval mode, and the
    file's description (arch, kwargs, `input` spec, summary)."""
    return load_network_file(path, "generator", device)


def input_for_setting(info: dict[str, Any], setting: int | None) -> dict[str, Any]:
    """The synthetic-input spec to use: the trained one, or that of another `setting`."""
    trained = info["input"]
    if setting is None or setting == trained["setting"]:
        return trained
    sigma = trained["noise_kwargs"].get("sigma", 50 / 255)
    return input_spec({"setting": setting, "input_sigma": sigma, "input_noise": "auto", "input_noise_kwargs": {}})


@torch.no_grad()
def apply_tiled(network: nn.Module, image: torch.Tensor, tile: int = 512, overlap: int = 32) -> torch.Tensor:
    """`network(image)` computed tile by tile: each `tile` x `tile` block is run with `overlap`
    pixels of context on each side, which are then cropped off. `tile <= 0` runs it whole."""
    if tile <= 0 or (image.shape[-2] <= tile and image.shape[-1] <= tile):
        return network(image)
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    height, width = image.shape[-2:]
    out = torch.empty_like(image)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
            block = network(image[..., y0:y1, x0:x1])
            out[..., top:bottom, left:right] = block[..., top - y0 : bottom - y0, left - x0 : right - x0]
    return out


def image_seed(name: str) -> int:
    """A stable per-image key (so a file gets the same noise whatever else is in its folder)."""
    return zlib.crc32(name.encode())


@torch.no_grad()
def generate_noisy(
    generator: nn.Module,
    noise: NoiseModel,
    clean: torch.Tensor,
    seed: int = 0,
    tile: int = 512,
    overlap: int = 32,
    precision: str = "fp32",
    name: str = "",
    sample: int = 0,
) -> torch.Tensor:
    """Fake noisy version of `clean` (1, 3, H, W) in [0, 1]: synthetic input y_s from `noise`
    drawn with a generator seeded by (seed, name, sample), G applied tile-wise, clamped and
    rounded to 8 bit."""
    device = next(generator.parameters()).device
    clean = clean.to(device)
    y_s = noise.sample(clean, keyed_generator(seed, image_seed(name), sample, device=device))
    with autocast(device, precision):
        fake = apply_tiled(generator, y_s, tile, overlap)
    return quantize(fake.float())


def _prepare_output(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir}: exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir}: output folder is not empty; choose another folder or pass --overwrite")
    output_dir.mkdir(parents=True, exist_ok=True)


def generate_folder(
    checkpoint: str | Path,
    input_dir: str | Path,
    output_dir: str | Path,
    seed: int = 0,
    samples: int | None = None,
    setting: int | None = None,
    device: str = "auto",
    tile: int = 512,
    overlap: int = 32,
    precision: str = "fp32",
    overwrite: bool = False,
) -> list[Path]:
    """Write one 8-bit PNG per clean image of `input_dir` into `output_dir`, same stem; with
    `samples` L, L independent draws into output_dir/1 ... output_dir/L. Returns the files."""
    output_dir = Path(output_dir)
    pairs = read_clean_folder(input_dir)
    generator, info = load_generator(checkpoint, select_device(device))
    spec = input_for_setting(info, setting)
    if spec != info["input"]:
        print(f"note: the generator was trained on {info['input']}, now fed {spec}", flush=True)
    noise = build_input_noise(spec)
    _prepare_output(output_dir, overwrite)
    folders = [output_dir] if samples is None else [output_dir / str(i + 1) for i in range(samples)]
    written = []
    from tqdm.auto import tqdm

    for pair in tqdm(pairs, desc="generate", dynamic_ncols=True):
        clean = to_tensor(pair.clean.load()).unsqueeze(0)
        for index, folder in enumerate(folders):
            fake = generate_noisy(generator, noise, clean, seed, tile, overlap, precision, pair.name, index)
            written.append(write_png(folder / f"{pair.name}.png", to_image(fake[0])))
    return written


# ---- scoring ------------------------------------------------------------------------------------


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(folder)}


def _draw_folders(fake_dir: Path) -> list[Path]:
    """The fake folder itself, or its numbered sample folders 1 ... L."""
    numbered = sorted((p for p in fake_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) if fake_dir.is_dir() else []
    return numbered or [fake_dir]


def score_folders(clean_dir: str | Path, real_dir: str | Path, fake_dir: str | Path) -> dict[str, Any]:
    """AKLD and KLD of the fake noise against the real noise, and both noisy images' PSNR, per
    image (paired by file stem) and their means. A fake folder with numbered subfolders
    (`generate --samples L`) counts as L draws per image."""
    from pngan.metrics import akld, kld_histogram, psnr

    clean_files, real_files = _by_stem(Path(clean_dir)), _by_stem(Path(real_dir))
    draws = [_by_stem(folder) for folder in _draw_folders(Path(fake_dir))]
    rows = []
    for name in sorted(clean_files):
        for side, files in [("real", real_files)] + [(f"fake ({d})", f) for d, f in enumerate(draws, 1)]:
            if name not in files:
                raise DataError(f"{clean_files[name]}: no {side} image named '{name}'")
        clean = to_tensor(read_image(clean_files[name])).unsqueeze(0)
        real = to_tensor(read_image(real_files[name])).unsqueeze(0)
        fakes = [to_tensor(read_image(d[name])).unsqueeze(0) for d in draws]
        for path, image in [(real_files[name], real)] + [(d[name], f) for d, f in zip(draws, fakes)]:
            if image.shape != clean.shape:
                raise DataError(f"{path}: size {image.shape[-1]}x{image.shape[-2]} differs from its clean image {clean_files[name]} ({clean.shape[-1]}x{clean.shape[-2]})")
        fake = torch.stack(fakes)
        rows.append(
            {
                "name": name,
                "akld": float(akld(clean, real, fake)[0]),
                "kld": float(kld_histogram(clean, real, fake)[0]),
                "psnr_real": float(psnr(real, clean)[0]),
                "psnr_fake": float(np.mean([float(psnr(f, clean)[0]) for f in fakes])),
            }
        )
    if not rows:
        raise DataError(f"{clean_dir}: no clean images")
    keys = ("akld", "kld", "psnr_real", "psnr_fake")
    return {"images": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}, "n_images": len(rows), "n_draws": len(draws)}
