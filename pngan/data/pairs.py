"""Pairs of noisy and clean images, whatever layout they come from.

Every reader in `pngan.data` returns a list of `Pair`. A pair holds *references* to its two
images (`ImageRef`: a file, or one block of a .mat array) and loads them only on `load()`, so
a data set of any size can be listed without reading it. `meta` carries what the layout tells
(dataset, scene, camera, iso, ...); `scene` is what splits group by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from pngan.images import DataError, is_image_file, read_image


class ImageRef(Protocol):
    def load(self) -> np.ndarray:  # H x W x 3 uint8
        ...

    def __str__(self) -> str:  # where the image comes from, for error messages
        ...


@dataclass(frozen=True)
class FileImage:
    path: Path

    def load(self) -> np.ndarray:
        return read_image(self.path)

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class ArrayImage:
    """One image of a larger array source (a .mat block, a DND crop) loaded by a callable."""

    source: str
    loader: Callable[[], np.ndarray] = field(compare=False, repr=False)

    def load(self) -> np.ndarray:
        return self.loader()

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class Pair:
    name: str
    noisy: ImageRef | None
    clean: ImageRef | None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def load(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Load (noisy, clean) as uint8 arrays; a size mismatch is an error naming both files."""
        noisy = self.noisy.load() if self.noisy is not None else None
        clean = self.clean.load() if self.clean is not None else None
        if noisy is not None and clean is not None and noisy.shape != clean.shape:
            raise DataError(
                f"{self.noisy}: size {noisy.shape[1]}x{noisy.shape[0]} differs from its clean image "
                f"{self.clean} ({clean.shape[1]}x{clean.shape[0]})"
            )
        return noisy, clean

    @property
    def scene(self) -> str:
        return str(self.meta.get("scene", self.name))


def training_arrays(pairs: Sequence[Pair]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) uint8 arrays of paired images, read once: what the fits take
    (`NoiseModel.fit`, the noise level functions, the blind estimator's calibration)."""
    return [(clean, noisy) for noisy, clean in (pair.load() for pair in pairs)]


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder (any image extension, any case), sorted; errors if missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    if not files:
        raise DataError(f"{folder}: no image files in folder")
    return files


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(f"{f}: two images named '{f.stem}' in {folder} ({out[f.stem].name}, {f.name})")
        out[f.stem] = f
    return out


def read_paired_folder(root: str | Path, dataset: str | None = None) -> list[Pair]:
    """Generic layout: `<root>/noisy/<name>` + `<root>/clean/<name>`, paired by file name.

    Extensions may differ between the two sides (`a.JPG` pairs with `a.png`); any image file
    without a partner is an error naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    noisy = _by_stem(list_images(root / "noisy"), root / "noisy")
    clean = _by_stem(list_images(root / "clean"), root / "clean")
    for missing, have, side in ((noisy.keys() - clean.keys(), noisy, "clean"), (clean.keys() - noisy.keys(), clean, "noisy")):
        if missing:
            first = have[sorted(missing)[0]]
            raise DataError(f"{first}: no {side} partner in {root / side} ({len(missing)} unpaired file(s) in all)")
    dataset = dataset or root.name
    return [
        Pair(stem, FileImage(noisy[stem]), FileImage(clean[stem]), {"dataset": dataset, "scene": stem})
        for stem in sorted(noisy)
    ]


def read_clean_folder(root: str | Path, dataset: str | None = None) -> list[Pair]:
    """Clean-only images (DIV2K, Kodak24, ... or any folder): pairs with no noisy side."""
    root = Path(root)
    files = list_images(root)
    dataset = dataset or root.name
    return [Pair(f.stem, None, FileImage(f), {"dataset": dataset, "scene": f.stem}) for f in _by_stem(files, root).values()]
