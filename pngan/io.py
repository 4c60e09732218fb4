"""Image files in and out, with errors that name the file and the problem.

Policy for images that are not 8-bit RGB (documented in the README):
- grayscale (L, P without alpha): replicated to three channels, with a warning;
- RGBA / LA: the alpha channel is dropped with a warning when it is fully opaque, refused otherwise;
- 16-bit or float images: refused (silently re-quantising would change the noise statistics);
- anything PIL cannot decode: refused as corrupt.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class DataError(ValueError):
    """Bad input data; the message names the file and what is wrong with it."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as an H x W x 3 uint8 array (see the module docstring for the policy)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot decode image ({err})") from err
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or arr.dtype not in (np.uint8, np.bool_):
        raise DataError(f"{path}: {mode} image ({arr.dtype}); only 8-bit RGB is supported, convert it to 8 bit first")
    if mode == "P":
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
    arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        warnings.warn(f"{path}: grayscale image, replicated to 3 channels", stacklevel=2)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1]
        if alpha.min() < 255:
            raise DataError(f"{path}: image has a non-opaque alpha channel; save it as RGB")
        warnings.warn(f"{path}: opaque alpha channel dropped", stacklevel=2)
        arr = arr[:, :, :-1]
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W x 3 uint8 array as PNG, atomically (never a half-written file)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected H x W x 3 uint8, got {image.shape} {image.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 in [0, 1]."""
    return image.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with rounding and clipping."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_tensor(image: np.ndarray):
    """uint8 H x W x 3 (or N x H x W x 3) -> float32 torch tensor (3, H, W) / (N, 3, H, W) in [0, 1]."""
    import torch

    # Convert in NumPy: torch's threaded elementwise ops cost more than they save on small crops.
    chw = np.ascontiguousarray(np.moveaxis(image, -1, -3), dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(chw)


def to_image(tensor) -> np.ndarray:
    """float torch tensor (3, H, W) / (N, 3, H, W) in [0, 1] -> uint8 H x W x 3 / N x H x W x 3 (rounded)."""
    t = tensor.detach().float().clamp(0, 1).mul(255.0).round().to("cpu", dtype=__import__("torch").uint8)
    return t.movedim(-3, -1).contiguous().numpy()
