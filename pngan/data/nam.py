"""Nam et al. (CVPR 2016) real noisy images, as cropped by later work: CC15 and CC60.

Flat folders (names as in the dev data's README and the kit's METHOD.md section 5):
- CC15: `<cam>_iso<ISO>_<k>_{real,mean}.png`, e.g. `d800_iso3200_2_real.png`;
- CC60: `CC_{Noisy,Mean}_<Camera>_ISO_<ISO>_<group>_<idx>.png`, e.g.
  `CC_Noisy_Nikon_D800_ISO_3200_A1_13.png`; the camera may contain underscores.
`real` / `Noisy` is the noisy shot, `mean` / `Mean` the average of many shots.

Scenes: a CC60 scene group (`B2`) appears at several ISOs, and CC15 crop `k` recurs across
cameras and ISOs; both are used as `scene`, so everything that may show the same content stays
in one split (coarser than necessary when the labels do not mean the same scene).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pngan.data.pairs import Pair
from pngan.data.polyu import pair_by_role

CC15_NAME_RE = re.compile(r"(?P<camera>[A-Za-z0-9]+)_iso(?P<iso>\d+)_(?P<k>\d+)")
CC60_NAME_RE = re.compile(r"(?P<camera>[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)_ISO_(?P<iso>\d+)_(?P<group>[A-Za-z]+\d*)_(?P<crop>\d+)")
CC15_ROLES = {"real": "noisy", "mean": "clean"}
CC60_FILE_RE = re.compile(r"CC_(?P<role>Noisy|Mean)_(?P<name>.+)")
CC60_ROLES = {"Noisy": "noisy", "Mean": "clean"}


def parse_cc15_name(stem: str) -> dict[str, Any] | None:
    """Metadata of a CC15 pair name without role (`d800_iso3200_2`), or None."""
    match = CC15_NAME_RE.fullmatch(stem)
    if match is None:
        return None
    return {"camera": match["camera"], "iso": int(match["iso"]), "scene": match["k"], "crop": int(match["k"])}


def parse_cc60_name(stem: str) -> dict[str, Any] | None:
    """Metadata of a CC60 pair name without role (`Nikon_D800_ISO_3200_A1_13`), or None."""
    match = CC60_NAME_RE.fullmatch(stem)
    if match is None:
        return None
    return {"camera": match["camera"], "iso": int(match["iso"]), "scene": match["group"], "crop": int(match["crop"])}


def parse_cc15_file(stem: str) -> tuple[str, str, dict[str, Any]] | None:
    base, _, suffix = stem.rpartition("_")
    meta = parse_cc15_name(base) if suffix in CC15_ROLES else None
    return (base, CC15_ROLES[suffix], meta) if meta is not None else None


def parse_cc60_file(stem: str) -> tuple[str, str, dict[str, Any]] | None:
    match = CC60_FILE_RE.fullmatch(stem)
    meta = parse_cc60_name(match["name"]) if match else None
    return (match["name"], CC60_ROLES[match["role"]], meta) if meta is not None else None


def read_nam_cc15(root: str | Path, dataset: str = "Nam_CC15") -> list[Pair]:
    """Nam CC15: pairs `<cam>_iso<ISO>_<k>_real` (noisy) with `..._mean` (clean)."""
    return pair_by_role(root, parse_cc15_file, dataset, "<cam>_iso<ISO>_<k>_{real,mean}.png")


def read_nam_cc60(root: str | Path, dataset: str = "Nam_CC60") -> list[Pair]:
    """Nam CC60: pairs `CC_Noisy_<name>` with `CC_Mean_<name>`, named `<Camera>_ISO_<ISO>_<group>_<idx>`."""
    return pair_by_role(root, parse_cc60_file, dataset, "CC_{Noisy,Mean}_<Camera>_ISO_<ISO>_<group>_<idx>.png")
