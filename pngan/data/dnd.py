"""DND (Darmstadt Noise Dataset) sRGB benchmark: noisy crops only, no public ground truth.

Layout facts, from the DND submission kit (Plötz & Roth, CVPR 2017, `dnd_denoise.py`):
`<root>/info.mat` and `<root>/images_srgb/%04d.mat` (1-based) are MATLAB v7.3 (HDF5) files.
`info['boundingboxes']` holds one reference per image to a 20 x 4 array of 1-based, inclusive
[r0 c0 r1 c1] boxes (stored transposed, as HDF5 keeps MATLAB arrays). `InoisySRGB` is the
H x W x 3 single-precision image in [0, 1], stored transposed (3 x W x H).

Crops are read from the HDF5 file box by box (never the whole ~145 MB image) and returned as
uint8 like every reader; quantising DND's float sRGB to 8 bit adds noise of std 0.29/255.
"""

from __future__ import annotations

import functools
from pathlib import Path

import h5py
import numpy as np

from pngan.data.pairs import ArrayImage, Pair
from pngan.images import DataError, to_uint8

INFO_FILE = "info.mat"
IMAGES_DIR = "images_srgb"
IMAGE_VARIABLE = "InoisySRGB"


def open_v73(path: Path) -> h5py.File:
    """Open a MATLAB v7.3 file for reading; anything else is a DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not h5py.is_hdf5(path):
        raise DataError(f"{path}: not a MATLAB v7.3 (HDF5) file; DND ships info.mat and images_srgb/*.mat as v7.3")
    return h5py.File(path, "r")


def read_boxes(info_path: Path) -> list[np.ndarray]:
    """Per image, an (n, 4) int array of 1-based inclusive [r0 c0 r1 c1] boxes."""
    with open_v73(info_path) as f:
        if "info" not in f or "boundingboxes" not in f["info"]:
            raise DataError(f"{info_path}: no 'info.boundingboxes' (keys: {', '.join(f.keys())})")
        refs = np.asarray(f["info"]["boundingboxes"]).ravel()
        if refs.dtype != h5py.ref_dtype:
            raise DataError(f"{info_path}: 'info.boundingboxes' is {refs.dtype}, expected a cell of references")
        boxes = []
        for n, ref in enumerate(refs, start=1):
            b = np.asarray(f[ref]).T
            if b.ndim != 2 or b.shape[1] != 4:
                raise DataError(f"{info_path}: bounding boxes of image {n} have shape {b.shape}, expected (n, 4)")
            boxes.append(np.rint(b).astype(np.int64))
    return boxes


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of a DND image, from the HDF5 header only."""
    with open_v73(path) as f:
        if IMAGE_VARIABLE not in f:
            raise DataError(f"{path}: no variable '{IMAGE_VARIABLE}' (found: {', '.join(f.keys())})")
        shape = f[IMAGE_VARIABLE].shape
    if len(shape) != 3 or shape[0] != 3:
        raise DataError(f"{path}: '{IMAGE_VARIABLE}' stored as {shape}, expected (3, width, height) (transposed H x W x 3)")
    return shape[2], shape[1]


def _load_crop(path: str, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    with h5py.File(path, "r") as f:
        stored = f[IMAGE_VARIABLE][:, c0 - 1 : c1, r0 - 1 : r1]  # (3, w, h): transposed storage
    crop = np.ascontiguousarray(stored.T)
    if crop.dtype == np.uint8:
        return crop
    if not np.issubdtype(crop.dtype, np.floating):
        raise DataError(f"{path}: '{IMAGE_VARIABLE}' is {crop.dtype}, expected single-precision sRGB in [0, 1]")
    return to_uint8(crop)


def read_dnd(root: str | Path, dataset: str = "DND") -> list[Pair]:
    """DND sRGB crops as noisy-only pairs named `%04d_%02d` (image, box; both 1-based).

    `scene` is the image: its twenty crops never land in two splits. A box outside its image
    is an error naming both files.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    info_path = root / INFO_FILE
    pairs = []
    for n, boxes in enumerate(read_boxes(info_path), start=1):
        path = root / IMAGES_DIR / f"{n:04d}.mat"
        height, width = image_size(path)
        for b, (r0, c0, r1, c1) in enumerate(boxes.tolist(), start=1):
            if not (1 <= r0 <= r1 <= height and 1 <= c0 <= c1 <= width):
                raise DataError(
                    f"{path}: bounding box {b} [r0 c0 r1 c1] = [{r0} {c0} {r1} {c1}] from {info_path} "
                    f"lies outside the {height}x{width} image"
                )
            noisy = ArrayImage(f"{path}[{r0}:{r1},{c0}:{c1}]", functools.partial(_load_crop, str(path), r0, c0, r1, c1))
            meta = {"dataset": dataset, "scene": f"{n:04d}", "image": n, "block": b, "r0": r0, "c0": c0, "r1": r1, "c1": c1}
            pairs.append(Pair(f"{n:04d}_{b:02d}", noisy, None, meta))
    return pairs
