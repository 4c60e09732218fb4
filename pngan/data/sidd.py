"""SIDD (Smartphone Image Denoising Dataset) in its official layouts.

Facts from the SIDD release notes (`_ReadMe_sRGB.txt` of SIDD-Medium) and the benchmark code
(Abdelhamed, Lin, Brown, CVPR 2018):
- scene-instance folders are named
  `<instance>_<scene>_<phone>_<ISO>_<shutter>_<illuminant K>_<brightness L|N|H>`,
  e.g. `0052_002_S6_01600_01000_5500_N`; phones GP (Google Pixel), IP (iPhone 7),
  S6 (Galaxy S6 Edge), N6 (Nexus 6), G4 (LG G4); the shutter field is the denominator of the
  exposure time;
- SIDD-Small: `Data/<instance>/{NOISY,GT}_SRGB_010.PNG`; SIDD-Medium:
  `Data/<instance>/<id>_{NOISY,GT}_SRGB_{010,011}.PNG`;
- validation and benchmark blocks: MATLAB v5 files read by `scipy.io.loadmat`, each holding one
  uint8 array (images, blocks, 256, 256, 3) = (40, 32, 256, 256, 3); block (i, k) is named
  `%04d-%04d` with 0-based i and k.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from pngan.data.pairs import ArrayImage, FileImage, Pair
from pngan.images import DataError

_INSTANCE = (
    r"(?P<scene_instance>\d{4})_(?P<scene>\d{3})_(?P<camera>[A-Z0-9]{2})_(?P<iso>\d{5})_"
    r"(?P<shutter>\d{5})_(?P<illuminant>\d{4})_(?P<brightness>[LNH])"
)
INSTANCE_RE = re.compile(_INSTANCE)
# Patch files cut from an instance (e.g. the dev data's SIDD_small): `<instance>_<patch>`.
PATCH_NAME_RE = re.compile(_INSTANCE + r"_(?P<patch>\d+)")
SRGB_FILE_RE = re.compile(r"(?:(?P<id>\d{4})_)?(?P<role>NOISY|GT)_SRGB_(?P<capture>\d{3})\.png", re.IGNORECASE)

VALIDATION_NOISY = ("ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb")
VALIDATION_GT = ("ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb")
BENCHMARK_NOISY = ("BenchmarkNoisyBlocksSrgb.mat", "BenchmarkNoisyBlocksSrgb")


def _instance_meta(match: re.Match) -> dict[str, Any]:
    g = match.groupdict()
    instance = "_".join(g[k] for k in ("scene_instance", "scene", "camera", "iso", "shutter", "illuminant", "brightness"))
    meta: dict[str, Any] = {
        "instance": instance,
        "scene_instance": g["scene_instance"],
        "scene": g["scene"],
        "camera": g["camera"],
        "iso": int(g["iso"]),
        "shutter": int(g["shutter"]),
        "illuminant": int(g["illuminant"]),
        "brightness": g["brightness"],
    }
    if g.get("patch") is not None:
        meta["patch"] = int(g["patch"])
    return meta


def parse_instance(name: str) -> dict[str, Any] | None:
    """Metadata of a SIDD scene-instance name (`0052_002_S6_01600_01000_5500_N`), or None.

    `scene` is the SIDD scene number shared by every instance of the same scene (other phones,
    ISOs, lighting): grouping splits by it keeps one scene's content out of two splits.
    """
    match = INSTANCE_RE.fullmatch(name)
    return _instance_meta(match) if match else None


def parse_name(stem: str) -> dict[str, Any] | None:
    """Metadata of an instance name or an `<instance>_<patch>` file stem, or None."""
    match = INSTANCE_RE.fullmatch(stem) or PATCH_NAME_RE.fullmatch(stem)
    return _instance_meta(match) if match else None


def _data_folder(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    return root / "Data" if (root / "Data").is_dir() else root


def _instance_files(folder: Path) -> dict[str, dict[str, Path]]:
    """{capture: {'NOISY': path, 'GT': path}} of one instance folder; other files are ignored."""
    captures: dict[str, dict[str, Path]] = {}
    for f in sorted(folder.iterdir()):
        match = SRGB_FILE_RE.fullmatch(f.name)
        if match and f.is_file():
            captures.setdefault(match["capture"], {})[match["role"].upper()] = f
    return captures


def read_sidd_folder(root: str | Path, dataset: str = "SIDD") -> list[Pair]:
    """SIDD-Small / SIDD-Medium sRGB folders: `[Data/]<instance>/[<id>_]{NOISY,GT}_SRGB_<nnn>.PNG`.

    One pair per capture (`010`, `011`), named `<instance>_<capture>`, with the instance's
    metadata. Hidden folders are skipped; any other folder not named like a scene instance,
    an instance without sRGB images, or a NOISY image without its GT (or the reverse) is an error.
    """
    data = _data_folder(Path(root))
    pairs: list[Pair] = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        meta = parse_instance(folder.name)
        if meta is None:
            raise DataError(f"{folder}: folder name is not a SIDD scene instance (<id>_<scene>_<phone>_<ISO>_<shutter>_<illuminant>_<L|N|H>)")
        captures = _instance_files(folder)
        if not captures:
            raise DataError(f"{folder}: no sRGB images ([<id>_]NOISY_SRGB_<nnn>.PNG / GT_SRGB_<nnn>.PNG)")
        for capture, files in sorted(captures.items()):
            for role, other in (("NOISY", "GT"), ("GT", "NOISY")):
                if other not in files:
                    raise DataError(f"{files[role]}: no {other} image for capture {capture} in {folder}")
            pairs.append(
                Pair(
                    f"{folder.name}_{capture}",
                    FileImage(files["NOISY"]),
                    FileImage(files["GT"]),
                    {"dataset": dataset, **meta, "capture": capture},
                )
            )
    if not pairs:
        raise DataError(f"{data}: no SIDD scene-instance folders")
    return pairs


def _file_stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def block_array_shape(path: Path, variable: str) -> tuple[int, ...]:
    """Shape of a SIDD block array, read from the .mat header only; errors name the file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if h5py.is_hdf5(path):
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) file; the official SIDD block files are v5 (re-save with save(..., '-v7'))")
    try:
        listing = scipy.io.whosmat(str(path))
    except (ValueError, IndexError, TypeError, OSError, NotImplementedError) as err:
        raise DataError(f"{path}: not a readable MATLAB .mat file ({err})") from err
    found = {name: (shape, cls) for name, shape, cls in listing}
    if variable not in found:
        raise DataError(f"{path}: no variable '{variable}' (found: {', '.join(found) or 'none'})")
    shape, cls = found[variable]
    if cls != "uint8" or len(shape) != 5 or shape[4] != 3:
        raise DataError(
            f"{path}: '{variable}' is {cls} {tuple(shape)}; expected uint8 (images, blocks, height, width, 3), "
            f"e.g. (40, 32, 256, 256, 3)"
        )
    return tuple(shape)


@functools.lru_cache(maxsize=2)
def _load_block_array(path: str, variable: str, stamp: tuple[int, int]) -> np.ndarray:
    # One load per file (and file version), shared by all its blocks: the arrays are ~250 MB.
    return scipy.io.loadmat(path, variable_names=[variable])[variable]


def _load_block(path: str, variable: str, stamp: tuple[int, int], image: int, block: int) -> np.ndarray:
    return np.ascontiguousarray(_load_block_array(path, variable, stamp)[image, block])


def _block_ref(path: Path, variable: str, image: int, block: int) -> ArrayImage:
    loader = functools.partial(_load_block, str(path), variable, _file_stamp(path), image, block)
    return ArrayImage(f"{path}:{variable}[{image},{block}]", loader)


def block_name(image: int, block: int) -> str:
    """Conventional name of SIDD block (image, block), both 0-based: `%04d-%04d`."""
    return f"{image:04d}-{block:04d}"


def _read_blocks(root: str | Path, noisy: tuple[str, str], gt: tuple[str, str] | None, dataset: str) -> list[Pair]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    noisy_path = root / noisy[0]
    shape = block_array_shape(noisy_path, noisy[1])
    gt_path = root / gt[0] if gt else None
    if gt is not None:
        gt_shape = block_array_shape(gt_path, gt[1])
        if gt_shape != shape:
            raise DataError(f"{gt_path}: shape {gt_shape} differs from {noisy_path} {shape}")
    pairs = []
    for i in range(shape[0]):
        for k in range(shape[1]):
            pairs.append(
                Pair(
                    block_name(i, k),
                    _block_ref(noisy_path, noisy[1], i, k),
                    _block_ref(gt_path, gt[1], i, k) if gt is not None else None,
                    {"dataset": dataset, "scene": f"{i:04d}", "image": i, "block": k},
                )
            )
    return pairs


def read_sidd_validation(
    root: str | Path,
    noisy_file: str = VALIDATION_NOISY[0],
    gt_file: str = VALIDATION_GT[0],
    dataset: str = "SIDD_val",
) -> list[Pair]:
    """SIDD validation blocks (noisy + ground truth), one pair per block, named `%04d-%04d`.

    `scene` is the block's source image: its 32 blocks never land in two splits.
    Each .mat is loaded once, on the first block read, and cached.
    """
    return _read_blocks(root, (noisy_file, VALIDATION_NOISY[1]), (gt_file, VALIDATION_GT[1]), dataset)


def read_sidd_benchmark(root: str | Path, noisy_file: str = BENCHMARK_NOISY[0], dataset: str = "SIDD_benchmark") -> list[Pair]:
    """SIDD benchmark blocks: noisy only (no public ground truth), named `%04d-%04d`."""
    return _read_blocks(root, (noisy_file, BENCHMARK_NOISY[1]), None, dataset)
