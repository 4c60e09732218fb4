"""The kit's one prepared layout, which every stage after `prepare` reads:

    <dir>/manifest.csv                 one row per written image pair: split, metadata, origin
    <dir>/{train,val,test}/{noisy,clean}/<name>.png

`build` makes it from a source (the embedded simulated camera, or any real data set that
`pngan.data.readers` knows): pairs split by scene, the training split cut into random patches
(what training reads), validation and test into a few fixed-size blocks per image (what
evaluation reads, bounded in cost). `load_split` reads one split back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pngan.data import simulate
from pngan.data.pairs import ArrayImage, Pair, read_clean_folder
from pngan.data.patches import make_patch_set, read_patch_set
from pngan.data.readers import KINDS, read_dataset
from pngan.data.splits import split_pairs
from pngan.paths import made_once
from pngan.runtime import stable_seed

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.csv"
FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}


def simulated_pairs(profiles: list[str] | str, clean_dirs: list[str], seed: int) -> list[Pair]:
    """Every clean source image (embedded + `clean_dirs`) seen by every simulated camera profile."""
    sources = [(name, scene, (lambda img=img: img)) for name, scene, img in simulate.embedded_sources()]
    for folder in clean_dirs:
        sources += [(p.name, p.scene, p.clean.load) for p in read_clean_folder(folder)]
    names = list(simulate.PROFILES) if profiles == "all" else list(profiles)
    pairs = []
    for source, scene, load_clean in sources:
        for profile in names:
            name = f"{source}__{profile}"
            noisy = ArrayImage(
                f"simulated {name}",
                lambda load=load_clean, prof=profile, s=stable_seed(seed, name): simulate.simulate(load(), prof, s),
            )
            meta = {"dataset": "simulated", "scene": scene, "source": source, "profile": profile,
                    "family": simulate.PROFILES[profile].family}
            pairs.append(Pair(name, noisy, ArrayImage(f"embedded {source}", load_clean), meta))
    return pairs


def check_source(source: str, root: str | None, clean_dirs: list[str], profiles: list[str] | str) -> None:
    """Refuse settings that would be ignored or cannot work, before anything is read."""
    if source == "simulated":
        if root is not None:
            raise ValueError(f"prepare.root is set ({root}) but source is 'simulated', which reads no data set; "
                             f"set source to the data set's kind (generic, sidd_medium, ...) or root to null")
        names = list(simulate.PROFILES) if profiles == "all" else list(profiles)
        unknown = [n for n in names if n not in simulate.PROFILES]
        if unknown:
            raise ValueError(f"prepare.profiles: unknown profile(s) {unknown}; known: {list(simulate.PROFILES)} or 'all'")
    elif source not in KINDS:
        raise ValueError(f"prepare.source: unknown source '{source}'; sources: simulated, {', '.join(KINDS)}")
    elif root is None:
        raise ValueError(f"prepare.root: source '{source}' needs the folder of the data set")
    elif not Path(root).is_dir():
        raise FileNotFoundError(f"prepare.root: {root} is not a folder (source '{source}')")
    for folder in clean_dirs:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"prepare.clean_dirs: {folder} is not a folder")


def source_pairs(source: str, root: str | None, clean_dirs: list[str], profiles, seed: int, reader_options: dict) -> list[Pair]:
    check_source(source, root, clean_dirs, profiles)
    if source == "simulated":
        return simulated_pairs(profiles, clean_dirs, seed)
    return read_dataset(source, root, **reader_options)


@dataclass
class PrepareConfig:
    """How the prepared data set is made: params.yaml's `prepare` section."""

    source: str = "simulated"  # 'simulated' (the embedded camera) or a reader kind (pngan.data.readers.KINDS)
    root: str | None = None  # the data set's folder, for every source but 'simulated'
    reader_options: dict[str, Any] = field(default_factory=dict)
    clean_dirs: list[str] = field(default_factory=list)  # more clean images for the simulated camera
    profiles: list[str] | str = "all"  # simulated camera profiles
    fractions: dict[str, float] = field(default_factory=lambda: dict(FRACTIONS))
    split_by: str = "scene"  # metadata key that groups pairs; no group is in two splits
    patch_size: int = 128  # training patches
    patches_per_image: int = 8
    eval_size: int = 256  # validation and test blocks
    eval_blocks_per_image: int = 1
    max_pairs: int | None = None
    seed: int = 0


def build(out: Path, cfg: PrepareConfig, overwrite: bool = False) -> dict[str, Any]:
    """Write the prepared data set into `out`; returns its summary (counts, noisy PSNR per split).
    `overwrite` replaces patch sets already there (a scratch folder being rebuilt)."""
    pairs = source_pairs(cfg.source, cfg.root, list(cfg.clean_dirs), cfg.profiles, cfg.seed, cfg.reader_options or {})
    if cfg.max_pairs is not None:
        pairs = pairs[:cfg.max_pairs]
    splits = split_pairs(pairs, cfg.fractions or FRACTIONS, group_by=cfg.split_by, seed=cfg.seed)
    for split in SPLITS:
        size, per_image = (cfg.patch_size, cfg.patches_per_image) if split == "train" else (cfg.eval_size, cfg.eval_blocks_per_image)
        make_patch_set(splits.get(split, []), out / split, size=size, per_image=per_image,
                       seed=stable_seed(cfg.seed, split), overwrite=overwrite)
    manifest = pd.concat(
        [pd.read_csv(out / split / "index.csv").assign(split=split) for split in SPLITS], ignore_index=True
    )
    manifest.to_csv(out / MANIFEST, index=False)
    return summarize(out, manifest, splits, cfg.source, cfg.split_by)


def load_split(data_dir: str | Path, split: str) -> list[Pair]:
    """The pairs of one split of a prepared data set, with their metadata."""
    return read_patch_set(Path(data_dir) / split)


def given_or_smoke(data_dir: str | Path | None, smoke: dict[str, Any]) -> Path:
    """`data_dir`, which must hold a prepared data set; None (a notebook run by hand): the one
    `build` makes with the `smoke` settings, once, in a scratch folder."""
    if data_dir is None:
        return made_once("prepare-smoke", MANIFEST, lambda folder: build(folder, PrepareConfig(**smoke), overwrite=True))
    path = Path(data_dir)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"{path}: no prepared data set here ({MANIFEST} missing); run the prepare stage")
    return path


def summarize(out: Path, manifest: pd.DataFrame, splits: dict[str, list[Pair]], source: str, split_by: str) -> dict[str, Any]:
    """Counts per split, and the noisy-vs-clean PSNR of the evaluation splits (per profile when simulated)."""
    summary: dict[str, Any] = {
        "source": source,
        "split_by": split_by,
        "groups": {s: len({str(p.meta.get(split_by, p.name)) for p in splits.get(s, [])}) for s in SPLITS},
        "source_pairs": {s: len(splits.get(s, [])) for s in SPLITS},
        "images": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
    }
    psnr = {}
    for split in ("val", "test"):
        for pair in load_split(out, split):
            noisy, clean = pair.load()
            mse = np.mean((noisy.astype(np.float64) - clean) ** 2) / 255.0**2
            key = f"{split}/{pair.meta.get('profile', 'all')}"
            psnr.setdefault(key, []).append(10 * np.log10(1 / max(mse, 1e-12)))
    summary["noisy_psnr_db"] = {k: {"median": float(np.median(v)), "n": len(v)} for k, v in sorted(psnr.items())}
    return summary
