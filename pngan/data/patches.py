"""Training patches at any data set size.

- `make_patch_set` cuts random crops of every pair into PNG files plus an index CSV, one image
  in memory at a time; `read_patch_set` lists them back with their source and metadata.
- `PairPatchDataset` reads pairs lazily and returns the same random crop and the same one of
  the 8 flips/rotations of both images. Its randomness comes only from (seed, epoch, index),
  so batches are identical whatever the number of DataLoader workers.
- `make_loader` builds the DataLoader; its sampler hands out (epoch, index) keys and starts a
  new epoch (new crops, new order) each time the loader is iterated.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from pngan.data.pairs import FileImage, Pair
from pngan.data.readers import read_dataset, typed_meta
from pngan.io import DataError, to_tensor, write_png
from pngan.runtime import atomic_write_text

INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("patch", "noisy", "clean", "source", "noisy_source", "clean_source", "top", "left", "height", "width")
_NOT_CARRIED = ("kind", "root")  # they locate the source data set, not the patch


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


def dihedral(image: np.ndarray, transform: int) -> np.ndarray:
    """One of the 8 flips/rotations of an H x W x C array: a left-right flip when
    `transform` >= 4, then `transform % 4` quarter turns counter-clockwise."""
    if not 0 <= transform < 8:
        raise ValueError(f"transform must be in 0..7, got {transform}")
    flipped = image[:, ::-1] if transform >= 4 else image
    return np.rot90(flipped, k=transform % 4, axes=(0, 1))


class PairPatchDataset(Dataset):
    """Random crops of pairs, read from disk on each access (never all in memory).

    `root_or_pairs`: a list of pairs, a patch-set folder (`make_patch_set`) or any folder
    `read_dataset('auto', ...)` recognises. Items are {'clean': (3, crop, crop) float32 in
    [0, 1], 'noisy': same (absent for clean-only pairs), 'name': str}; both images get the
    same crop offset and, with `augment`, the same one of the 8 flips/rotations.
    Keys are an index or an (epoch, index) pair (what `make_loader`'s sampler yields); the
    crop and transform depend only on (seed, epoch, index).
    """

    def __init__(self, root_or_pairs: str | Path | Sequence[Pair], crop: int, augment: bool = True, seed: int = 0):
        if isinstance(root_or_pairs, (str, Path)):
            root = Path(root_or_pairs)
            pairs = read_patch_set(root) if (root / INDEX_FILE).is_file() else read_dataset("auto", root)
        else:
            pairs = list(root_or_pairs)
        if crop < 1:
            raise ValueError(f"crop must be positive, got {crop}")
        self.has_noisy = _has_noisy(pairs)
        self.pairs, self.crop, self.augment, self.seed = pairs, crop, augment, seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        pair = self.pairs[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        noisy, clean = pair.load()
        height, width = clean.shape[:2]
        if height < self.crop or width < self.crop:
            raise DataError(f"{pair.clean}: {width}x{height} image is smaller than the {self.crop}x{self.crop} crop")
        top, left, _, _ = crop_boxes(height, width, self.crop, 1, rng)[0]
        transform = int(rng.integers(8)) if self.augment else 0

        def patch(image: np.ndarray) -> torch.Tensor:
            return to_tensor(dihedral(image[top : top + self.crop, left : left + self.crop], transform))

        item: dict[str, Any] = {"clean": patch(clean), "name": pair.name}
        if noisy is not None:
            item["noisy"] = patch(noisy)
        return item


class EpochSampler(Sampler):
    """Yields (epoch, index) keys; each pass over it is a new epoch (new crops and order).

    Shuffling is a permutation seeded with (seed, epoch); `distributed` takes this rank's share
    from a DistributedSampler (seeded with `seed`, told the epoch). `set_epoch` resumes.
    """

    def __init__(self, dataset: Dataset, shuffle: bool = True, seed: int = 0, distributed: bool = False):
        self.size, self.shuffle, self.seed, self.epoch = len(dataset), shuffle, seed, 0
        self.distributed = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if distributed else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.distributed) if self.distributed is not None else self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1
        if self.distributed is not None:
            self.distributed.set_epoch(epoch)
            order = list(self.distributed)
        elif self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size).tolist()
        else:
            order = list(range(self.size))
        return iter([(epoch, int(i)) for i in order])


def make_loader(
    dataset: Dataset,
    batch: int,
    workers: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    distributed: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over `dataset` with an `EpochSampler` (a DistributedSampler share when
    `distributed`, which needs an initialised torch.distributed process group).

    Each pass over the loader is the next epoch; to resume, call `loader.sampler.set_epoch(e)`.
    Workers are persistent: the sampler, not the workers, carries the epoch.
    """
    if distributed and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs an initialised torch.distributed process group (run under torchrun)")
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=EpochSampler(dataset, shuffle=shuffle, seed=seed, distributed=distributed),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
    )
