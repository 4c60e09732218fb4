"""Training patches and the one training dataset, at any data set size.

- `make_patch_set` cuts random crops of every pair into PNG files plus an index CSV, one image
  in memory at a time; `read_patch_set` lists them back with their source and metadata.
- `PairDataset` serves pairs under the key protocol of `pngan.data.sampling`: key k gives image
  k % n with a random crop and one of the 8 flips/rotations (`dihedral`) drawn from (seed, k),
  the same for every image of the sample. It reads from disk per sample, or keeps a bounded
  number of 8-bit images in memory (`cache=True`).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pngan.data.pairs import FileImage, Pair
from pngan.data.readers import read_dataset, typed_meta
from pngan.images import DataError, write_png
from pngan.runtime import atomic_write_text, file_digest, keyed_generator

INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("patch", "noisy", "clean", "source", "noisy_source", "clean_source", "top", "left", "height", "width")
_NOT_CARRIED = ("kind", "root")  # they locate the source data set, not the patch
SIDES = ("clean", "noisy")
CACHE_MB = 2048.0  # default bound on the decoded images PairDataset keeps in memory


def _has_noisy(pairs: Sequence[Pair]) -> bool:
    """True when every pair is noisy + clean, False when every pair is clean-only; else an error."""
    if not pairs:
        raise ValueError("no pairs given")
    if any(p.clean is None for p in pairs):
        bad = next(p for p in pairs if p.clean is None)
        raise ValueError(f"pair '{bad.name}' has no clean image; patches need clean images (noisy-only sets are for testing)")
    noisy = {p.noisy is not None for p in pairs}
    if len(noisy) > 1:
        raise ValueError("pairs mix noisy+clean and clean-only images; use one kind per patch set or dataset")
    return noisy.pop()


def crop_boxes(height: int, width: int, size: int, count: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """`count` random (top, left, height, width) boxes of size x size; an image no larger than
    `size` in both directions is kept whole, once; a side shorter than `size` is kept whole."""
    h, w = min(size, height), min(size, width)
    if (h, w) == (height, width):
        return [(0, 0, height, width)]
    return [(int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w) for _ in range(count)]


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    existing = [p for p in (out_dir / "noisy", out_dir / "clean", out_dir / INDEX_FILE) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir}: already holds a patch set ({existing[0].name}); remove it or pass overwrite=True")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def make_patch_set(
    pairs: Sequence[Pair],
    out_dir: str | Path,
    size: int = 256,
    per_image: int = 8,
    seed: int = 0,
    overwrite: bool = False,
) -> list[Pair]:
    """Write `per_image` random size x size crops of every pair to `out_dir/{noisy,clean}/`.

    Streams one pair at a time, so memory does not grow with the data set. The index CSV
    (`out_dir/index.csv`) records each patch's files, source pair and image files, offsets
    and the source's metadata. Crops of pair i are drawn from a generator seeded with
    (seed, i). Returns the patches as pairs (see `read_patch_set`).
    """
    if size < 1 or per_image < 1:
        raise ValueError(f"size and per_image must be positive, got {size} and {per_image}")
    has_noisy = _has_noisy(pairs)
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two pairs are named '{dup}'; patch file names would collide")
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    rows: list[dict[str, Any]] = []
    for i, pair in enumerate(tqdm(pairs, desc="patches", disable=None)):
        noisy, clean = pair.load()
        boxes = crop_boxes(clean.shape[0], clean.shape[1], size, per_image, np.random.default_rng([seed, i]))
        for j, (top, left, h, w) in enumerate(boxes):
            patch = f"{pair.name}_{j:03d}"
            write_png(out_dir / "clean" / f"{patch}.png", np.ascontiguousarray(clean[top : top + h, left : left + w]))
            if has_noisy:
                write_png(out_dir / "noisy" / f"{patch}.png", np.ascontiguousarray(noisy[top : top + h, left : left + w]))
            meta = {k: v for k, v in pair.meta.items() if k not in _NOT_CARRIED}
            rows.append(
                {
                    "patch": patch,
                    "noisy": f"noisy/{patch}.png" if has_noisy else "",
                    "clean": f"clean/{patch}.png",
                    "source": pair.name,
                    "noisy_source": "" if pair.noisy is None else str(pair.noisy),
                    "clean_source": str(pair.clean),
                    "top": top,
                    "left": left,
                    "height": h,
                    "width": w,
                    **meta,
                }
            )
    columns = [*INDEX_COLUMNS, *sorted({k for r in rows for k in r} - set(INDEX_COLUMNS))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / INDEX_FILE, buffer.getvalue())
    return read_patch_set(out_dir)


def read_patch_set(root: str | Path) -> list[Pair]:
    """The patches of a `make_patch_set` folder as pairs, with source, offsets and metadata."""
    root = Path(root)
    index = root / INDEX_FILE
    if not index.is_file():
        raise DataError(f"{index}: patch index not found (write the patch set with make_patch_set)")
    with index.open(newline="") as f:
        rows = list(csv.DictReader(f))
    pairs = []
    for line, row in enumerate(rows, start=2):
        name, noisy, clean = row.pop("patch"), row.pop("noisy"), row.pop("clean")
        meta = typed_meta(row, where=f"{index}:{line}")
        pairs.append(Pair(name, FileImage(root / noisy) if noisy else None, FileImage(root / clean), meta))
    if not pairs:
        raise DataError(f"{index}: patch index lists no patches")
    return pairs


def dihedral(image: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a (..., H, W) tensor: rotate by 90 degrees * (code % 4)
    counter-clockwise, then flip left-right when code >= 4."""
    if not 0 <= code < 8:
        raise ValueError(f"dihedral code must be in 0..7, got {code}")
    out = torch.rot90(image, code % 4, dims=(-2, -1))
    return out.flip(-1) if code >= 4 else out


Images = dict[str, torch.Tensor]  # side -> (3, H, W) uint8


class PairDataset(Dataset):
    """Pairs served under the key protocol (`pngan.data.sampling`).

    `dataset[k]`, for any integer k >= 0, is image k % n as a dict of (3, h, w) float32 tensors
    in [0, 1], one per side in `sides` ('clean', 'noisy'; clean-only sets pass ('clean',)) plus
    'synthetic' after `with_synthetic`. With `crop`, a random crop x crop window and, with
    `augment`, one of the 8 flips/rotations, drawn from a generator seeded by (seed, k) and the
    same for every image of the sample; with `crop=None`, the whole images untransformed
    (validation: keys 0 .. n-1).

    Images are read from disk on each access, so memory does not grow with the data set. With
    `cache=True` the first images, up to `cache_mb` MiB of 8-bit pixels, are decoded once here
    and kept (DataLoader workers started by fork share them); the rest are still read per sample.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        crop: int | None = None,
        augment: bool = True,
        seed: int = 0,
        *,
        sides: Sequence[str] = SIDES,
        cache: bool = False,
        cache_mb: float = CACHE_MB,
    ):
        self.pairs = list(pairs)
        self.sides = tuple(sides)
        if not self.pairs:
            raise ValueError("PairDataset: no pairs given")
        if crop is not None and crop < 1:
            raise ValueError(f"crop must be positive (or None for whole images), got {crop}")
        if not self.sides or len(set(self.sides)) != len(self.sides) or not set(self.sides) <= set(SIDES):
            raise ValueError(f"sides must be distinct names among {SIDES}, got {self.sides}")
        for pair in self.pairs:
            for side in self.sides:
                if getattr(pair, side) is None:
                    raise DataError(f"{pair.clean or pair.noisy}: pair '{pair.name}' has no {side} image (this data set needs {' and '.join(self.sides)})")
        self.crop, self.augment, self.seed, self.cache_mb = crop, augment, seed, cache_mb
        self._cached: dict[int, Images] = self._fill_cache() if cache else {}

    @classmethod
    def from_folder(cls, folder: str | Path, crop: int | None = None, augment: bool = True, seed: int = 0, *, kind: str = "auto", **options: Any) -> "PairDataset":
        """The pairs of a patch-set folder (`make_patch_set`, with its index.csv) or of any folder
        `read_dataset(kind, folder)` reads; `options` as for the constructor."""
        folder = Path(folder)
        pairs = read_patch_set(folder) if (folder / INDEX_FILE).is_file() else read_dataset(kind, folder)
        return cls(pairs, crop, augment, seed, **options)

    def __len__(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        """A digest of what the set holds: names, sources, the files' contents and metadata (a
        patch set's crop offsets among them). Training checkpoints record it, so that a run never
        resumes on other data, nor on images redrawn under the same names."""
        digest = hashlib.sha256()
        for pair in self.pairs:
            refs = [getattr(pair, side) for side in self.sides]
            contents = [file_digest(r.path) if isinstance(r, FileImage) else None for r in refs]
            digest.update(json.dumps([pair.name, [str(r) for r in refs], contents, pair.meta], sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]

    @property
    def cached(self) -> int:
        """How many pairs (all their sides) are held in memory."""
        return len(self._cached)

    def _read(self, index: int) -> Images:
        pair = self.pairs[index]
        if len(self.sides) == 2:
            noisy, clean = pair.load()  # checks that the two sizes agree
            arrays = {"clean": clean, "noisy": noisy}
        else:
            arrays = {self.sides[0]: getattr(pair, self.sides[0]).load()}
        images = {}
        for side in self.sides:
            array = arrays[side]
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                raise DataError(f"{getattr(pair, side)}: expected an 8-bit H x W x 3 image, got {array.shape} {array.dtype}")
            images[side] = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)  # a view: still 8 bit
        return images

    def _images(self, index: int) -> Images:
        cached = self._cached.get(index)
        return cached if cached is not None else self._read(index)

    def _fill_cache(self) -> dict[int, Images]:
        """The first images whose pixels fit in cache_mb."""
        cached, total, limit = {}, 0, self.cache_mb * 2**20
        for index in range(len(self.pairs)):
            images = self._read(index)
            total += sum(v.numel() for v in images.values())
            if total > limit:
                break
            cached[index] = images
        return cached

    def with_synthetic(self, make: Callable[[torch.Tensor, int], torch.Tensor]) -> "PairDataset":
        """A copy whose samples also carry one pre-drawn synthetic input per image (the fixed input
        of `input_noise_fixed`): `make(clean (1, 3, H, W) in [0, 1], index)` returns it, rounded
        here to 8-bit levels; crops and flips cut it like the pair. Every image and its synthetic
        input are then held in memory: more than `cache_mb` is an error."""
        if "clean" not in self.sides:
            raise ValueError("with_synthetic draws the synthetic input from the clean images; this data set has none")
        out = copy.copy(self)
        out._cached, total, limit = {}, 0, self.cache_mb * 2**20
        for index in range(len(self.pairs)):
            images = dict(self._images(index))
            clean = images["clean"].contiguous().unsqueeze(0).float().div(255.0)
            drawn = make(clean, index)
            if drawn.shape != clean.shape:
                raise ValueError(f"with_synthetic: make returned {tuple(drawn.shape)} for a clean image of {tuple(clean.shape)}")
            images["synthetic"] = drawn[0].clamp(0, 1).mul(255.0).round().to(torch.uint8)
            total += sum(v.numel() for v in images.values())
            if total > limit:
                raise ValueError(
                    f"with_synthetic keeps every image and its synthetic input in memory: more than cache_mb = {self.cache_mb:g} MiB "
                    f"by image {index} ('{self.pairs[index].name}'); raise cache_mb or train on a patch set (make_patch_set)"
                )
            out._cached[index] = images
        return out

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        if key < 0:
            raise IndexError(f"keys are integers >= 0, got {key}")
        index = key % len(self.pairs)
        images = self._images(index)
        if self.crop is not None:
            images = self._random_crop(images, key, index)
        return {side: image.contiguous().float().div_(255.0) for side, image in images.items()}

    def _random_crop(self, images: Images, key: int, index: int) -> Images:
        height, width = images[self.sides[0]].shape[1:]
        if height < self.crop or width < self.crop:
            pair = self.pairs[index]
            raise DataError(f"{getattr(pair, self.sides[0])}: {width}x{height} image is smaller than the {self.crop}x{self.crop} crop")
        g = keyed_generator(self.seed, key)
        top = int(torch.randint(height - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(width - self.crop + 1, (1,), generator=g))
        code = int(torch.randint(8, (1,), generator=g)) if self.augment else 0
        return {side: dihedral(v[:, top : top + self.crop, left : left + self.crop], code) for side, v in images.items()}


def training_sets(data_dir: str | Path, crop: int, seed: int) -> tuple[PairDataset, PairDataset | None]:
    """A prepared data set's random training crops (DIR/train) and its whole validation blocks
    (DIR/val, keys 0..n-1, no augmentation; None when there is no DIR/val). Validating on whole
    blocks rather than one small crop each keeps the estimate from resting on a few pixels."""
    data_dir = Path(data_dir)
    train = PairDataset.from_folder(data_dir / "train", crop, augment=True, seed=seed)
    if not (data_dir / "val").exists():
        print(f"note: {data_dir / 'val'} not found; training without validation", flush=True)
        return train, None
    return train, PairDataset.from_folder(data_dir / "val", None, augment=False, seed=seed)
