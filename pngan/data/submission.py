"""Benchmark submission files for SIDD and DND, and readers to check them.

SIDD (benchmark code v1.1, `SIDD_Denoise.m`): `SubmitSrgb.mat` holds `DenoisedBlocksSrgb`, a
40 x 32 cell of uint8 256 x 256 x 3 blocks (cell {i+1, k+1} = block `%04d-%04d` (i, k)),
`TimeMPSrgb` (denoising seconds per megapixel) and `OptionalData`, a struct with MethodName,
Authors, PaperTitle, Venue, MachineSpecs. MATLAB saves it as v7.3; the site also takes the
v5 files `scipy.io.savemat` writes, which is what this module writes.

DND (submission kit, `bundle_submissions.py`, `bundle_submissions_srgb`): one `%04d.mat` per
image (1-based) holding `Idenoised`, a 1 x 20 cell of float32 H x W x 3 crops in [0, 1] in
bounding-box order, `israw` = false and `eval_version` = '1.0'; submit the folder's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.io

from pngan.data.sidd import block_name
from pngan.images import DataError, to_float

SIDD_GRID = (40, 32)
DND_IMAGES, DND_BOXES = 50, 20
SIDD_OPTIONAL_FIELDS = ("MethodName", "Authors", "PaperTitle", "Venue", "MachineSpecs")


def _missing(expected: list[str], given: Mapping[str, np.ndarray]) -> None:
    missing = [n for n in expected if n not in given]
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise ValueError(
            f"submission needs exactly the blocks {expected[0]} .. {expected[-1]}: "
            f"{len(missing)} missing (first: {missing[:3]}), {len(extra)} unexpected (first: {extra[:3]})"
        )


def write_sidd_submission(
    path: str | Path,
    denoised: Mapping[str, np.ndarray],
    time_mp: float,
    optional_data: Mapping[str, str] | None = None,
    grid: tuple[int, int] = SIDD_GRID,
) -> Path:
    """Write `SubmitSrgb.mat` from {'%04d-%04d': uint8 H x W x 3 block} (names as `read_dataset('sidd_benchmark')` gives).

    `time_mp` is the denoising time in seconds per megapixel; `optional_data` fills the
    OptionalData struct (MethodName, Authors, PaperTitle, Venue, MachineSpecs, ...).
    """
    names = [block_name(i, k) for i in range(grid[0]) for k in range(grid[1])]
    _missing(names, denoised)
    cells = np.empty(grid, dtype=object)
    for i in range(grid[0]):
        for k in range(grid[1]):
            block = np.asarray(denoised[block_name(i, k)])
            if block.dtype != np.uint8 or block.ndim != 3 or block.shape[2] != 3:
                raise ValueError(f"block {block_name(i, k)}: expected uint8 H x W x 3, got {block.dtype} {block.shape}")
            cells[i, k] = block
    optional = {field: "" for field in SIDD_OPTIONAL_FIELDS} | dict(optional_data or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        path,
        {"DenoisedBlocksSrgb": cells, "TimeMPSrgb": float(time_mp), "OptionalData": optional},
        do_compression=True,
    )
    return path


def read_sidd_submission(path: str | Path) -> tuple[dict[str, np.ndarray], float, dict[str, str]]:
    """(blocks by '%04d-%04d' name, TimeMPSrgb, OptionalData) of a SubmitSrgb.mat file."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, simplify_cells=True)
    except (OSError, ValueError, NotImplementedError) as err:
        raise DataError(f"{path}: cannot read as a v5 .mat file ({err})") from err
    for key in ("DenoisedBlocksSrgb", "TimeMPSrgb"):
        if key not in mat:
            raise DataError(f"{path}: no variable '{key}'")
    cells = mat["DenoisedBlocksSrgb"]
    if cells.ndim != 2:
        raise DataError(f"{path}: 'DenoisedBlocksSrgb' is {cells.shape}, expected a 2-D cell (40 x 32)")
    blocks = {block_name(i, k): cells[i, k] for i in range(cells.shape[0]) for k in range(cells.shape[1])}
    return blocks, float(mat["TimeMPSrgb"]), dict(mat.get("OptionalData", {}))


def _dnd_name(image: int, box: int) -> str:
    return f"{image:04d}_{box:02d}"


def write_dnd_submission(
    out_dir: str | Path,
    denoised: Mapping[str, np.ndarray],
    images: int = DND_IMAGES,
    boxes: int = DND_BOXES,
) -> list[Path]:
    """Write DND's `%04d.mat` files from {'%04d_%02d' (image, box; 1-based): denoised crop}.

    Crops are H x W x 3, uint8 or float in [0, 1]; they are stored as float32 in [0, 1].
    """
    _missing([_dnd_name(n, b) for n in range(1, images + 1) for b in range(1, boxes + 1)], denoised)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for n in range(1, images + 1):
        cells = np.empty((boxes,), dtype=object)
        for b in range(1, boxes + 1):
            crop = np.asarray(denoised[_dnd_name(n, b)])
            if crop.ndim != 3 or crop.shape[2] != 3:
                raise ValueError(f"crop {_dnd_name(n, b)}: expected H x W x 3, got {crop.shape}")
            cells[b - 1] = to_float(crop) if crop.dtype == np.uint8 else crop.astype(np.float32)
        path = out_dir / f"{n:04d}.mat"
        scipy.io.savemat(path, {"Idenoised": cells, "israw": False, "eval_version": "1.0"})
        written.append(path)
    return written


def read_dnd_submission(folder: str | Path, images: int = DND_IMAGES) -> dict[str, np.ndarray]:
    """The crops of a DND submission folder, by '%04d_%02d' name (checks israw and eval_version)."""
    crops: dict[str, np.ndarray] = {}
    for n in range(1, images + 1):
        path = Path(folder) / f"{n:04d}.mat"
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        mat = scipy.io.loadmat(path)
        if "Idenoised" not in mat or mat["Idenoised"].dtype != object:
            raise DataError(f"{path}: no 'Idenoised' cell")
        if bool(np.asarray(mat.get("israw", [[True]])).item()) or str(np.asarray(mat.get("eval_version", [""])).item()) != "1.0":
            raise DataError(f"{path}: expected israw = false and eval_version = '1.0' for an sRGB submission")
        cells = mat["Idenoised"].ravel()
        for b, crop in enumerate(cells, start=1):
            crops[_dnd_name(n, b)] = crop
    return crops
