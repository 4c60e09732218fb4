"""Stage `prepare`: noisy/clean pairs split by scene, written in the kit's one prepared layout.

    <out_dir>/manifest.csv                 one row per written image pair: split, metadata, origin
    <out_dir>/{train,val,test}/{noisy,clean}/<name>.png

The training split is cut into random patches (what training reads); validation and test into a
few fixed-size blocks per image (what evaluation reads, bounded in cost). The source is the
embedded simulated camera by default, or any real data set that `pngan.data.readers` knows.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pngan.data.pairs import ArrayImage, Pair, read_clean_folder
from pngan.stages.common import out_dir as _out_dir
from pngan.stages.common import write_json

SPLITS = ("train", "val", "test")


def stable_seed(*parts: Any) -> int:
    """A seed that depends only on its parts (not on Python's per-process string hashing)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def simulated_pairs(profiles: list[str] | str, clean_dirs: list[str], seed: int) -> list[Pair]:
    """Every clean source image (embedded + `clean_dirs`) seen by every simulated camera profile."""
    from pngan.data import simulate

    sources = [(name, scene, (lambda img=img: img)) for name, scene, img in simulate.embedded_sources()]
    for folder in clean_dirs:
        sources += [(p.name, p.scene, p.clean.load) for p in read_clean_folder(folder)]
    names = list(simulate.PROFILES) if profiles == "all" else list(profiles)
    unknown = [n for n in names if n not in simulate.PROFILES]
    if unknown:
        raise ValueError(f"prepare.profiles: unknown profile(s) {unknown}; known: {list(simulate.PROFILES)}")
    pairs = []
    for source, scene, load_clean in sources:
        for profile in names:
            name = f"{source}__{profile}"
            noisy = ArrayImage(
                f"simulated {name}",
                lambda load=load_clean, prof=profile, s=stable_seed(seed, name): simulate.simulate(load(), prof, s),
            )
            meta = {"dataset": "simulated", "scene": scene, "source": source, "profile": profile}
            meta.update(simulate.PROFILES[profile].metadata())
            pairs.append(Pair(name, noisy, ArrayImage(f"embedded {source}", load_clean), meta))
    return pairs


def source_pairs(source: str, root: str | None, clean_dirs: list[str], profiles, seed: int) -> list[Pair]:
    if source == "simulated":
        return simulated_pairs(profiles, clean_dirs, seed)
    if root is None:
        raise ValueError(f"prepare.root: source '{source}' needs the folder of the data set")
    from pngan.data.readers import read_dataset

    return read_dataset(source, root)


def run(
    source: str = "simulated",
    root: str | None = None,
    clean_dirs: list[str] = (),
    profiles: list[str] | str = "all",
    fractions: dict[str, float] | None = None,
    split_by: str = "scene",
    patch_size: int = 128,
    patches_per_image: int = 8,
    eval_size: int = 256,
    eval_blocks_per_image: int = 1,
    max_pairs: int | None = None,
    seed: int = 0,
    out_dir: str | None = None,
    metrics_file: str | None = None,
) -> dict[str, Any]:
    """Build the prepared data set; returns (and writes to `metrics_file`) its summary."""
    from pngan.data.patches import make_patch_set
    from pngan.data.splits import split_pairs

    out = _out_dir(out_dir, "prepare")
    pairs = source_pairs(source, root, list(clean_dirs), profiles, seed)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    fractions = fractions or {"train": 0.6, "val": 0.15, "test": 0.25}
    splits = split_pairs(pairs, fractions, group_by=split_by, seed=seed)
    rows = []
    for split in SPLITS:
        size, per_image = (patch_size, patches_per_image) if split == "train" else (eval_size, eval_blocks_per_image)
        index = make_patch_set(splits.get(split, []), out / split, size=size, per_image=per_image, seed=stable_seed(seed, split))
        rows.append(index.assign(split=split))
    manifest = pd.concat(rows, ignore_index=True)
    manifest.to_csv(out / "manifest.csv", index=False)
    summary = summarize(manifest, splits, source, split_by)
    if metrics_file:
        write_json(metrics_file, summary)
    return summary


def summarize(manifest: pd.DataFrame, splits: dict[str, list[Pair]], source: str, split_by: str) -> dict[str, Any]:
    groups = {s: sorted({str(p.meta.get(split_by, p.name)) for p in splits.get(s, [])}) for s in SPLITS}
    summary: dict[str, Any] = {
        "source": source,
        "split_by": split_by,
        "groups": {s: len(g) for s, g in groups.items()},
        "source_pairs": {s: len(splits.get(s, [])) for s in SPLITS},
        "images": dict(Counter(manifest["split"])),
    }
    if "noisy_psnr" in manifest:
        summary["noisy_psnr_db"] = {
            s: {"median": float(np.median(g)), "min": float(g.min()), "max": float(g.max())}
            for s, g in manifest.groupby("split")["noisy_psnr"]
        }
    return summary
