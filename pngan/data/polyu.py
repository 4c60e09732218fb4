"""PolyU real-world noisy image dataset (Xu, Li, Liang, Zhang, Zhang, arXiv 1804.02603).

Cropped images, 512 x 512 JPEG, one flat folder:
`<Camera>_<aperture>_<shutter>_<ISO>_<scene>_<idx>_{real,mean}.JPG`, e.g.
`Canon5D2_5_160_3200_chair_11_real.JPG`; `real` is the noisy shot, `mean` the average of ~500
shots; `4-5` in the aperture field means f/4.5 and the shutter field is the denominator of the
exposure time. A few published names carry a doubled underscore before the index
(`..._plant__4`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from pngan.data.pairs import FileImage, Pair, list_images
from pngan.images import DataError

NAME_RE = re.compile(
    r"(?P<camera>[A-Za-z0-9]+)_(?P<aperture>\d+(?:-\d+)?)_(?P<shutter>\d+)_(?P<iso>\d+)_"
    r"(?P<scene>[A-Za-z][A-Za-z0-9]*)_+(?P<crop>\d+)"
)
ROLES = {"real": "noisy", "mean": "clean"}

# A layout parser: file stem -> (pair name, 'noisy' | 'clean', metadata), or None if it does not fit.
RoleParser = Callable[[str], "tuple[str, str, dict[str, Any]] | None"]


def parse_name(stem: str) -> dict[str, Any] | None:
    """Metadata of a PolyU pair name without its role suffix (`Canon5D2_5_160_3200_chair_11`), or None.

    `scene` is the scene name alone: the same scene shot with other cameras or settings stays
    in one split.
    """
    match = NAME_RE.fullmatch(stem)
    if match is None:
        return None
    g = match.groupdict()
    return {
        "camera": g["camera"],
        "aperture": g["aperture"].replace("-", "."),
        "shutter": int(g["shutter"]),
        "iso": int(g["iso"]),
        "scene": g["scene"],
        "crop": int(g["crop"]),
    }


def parse_file(stem: str) -> tuple[str, str, dict[str, Any]] | None:
    """(pair name, role, metadata) of an official PolyU file stem, or None."""
    base, _, suffix = stem.rpartition("_")
    meta = parse_name(base) if suffix in ROLES else None
    return (base, ROLES[suffix], meta) if meta is not None else None


def pair_by_role(root: str | Path, parse: RoleParser, dataset: str, layout: str) -> list[Pair]:
    """Pair the images of one flat folder whose names carry a noisy/clean role (PolyU, Nam).

    Every image must follow `layout` (named in the error otherwise), and every noisy image
    needs its clean partner and the reverse.
    """
    root = Path(root)
    sides: dict[str, dict[str, Path]] = {}
    metas: dict[str, dict[str, Any]] = {}
    for f in list_images(root):
        parsed = parse(f.stem)
        if parsed is None:
            raise DataError(f"{f}: name does not follow the {dataset} layout {layout}")
        name, role, meta = parsed
        if role in sides.setdefault(name, {}):
            raise DataError(f"{f}: second {role} image for '{name}' (first: {sides[name][role].name})")
        sides[name][role] = f
        metas[name] = meta
    for name, files in sorted(sides.items()):
        for have, missing in (("noisy", "clean"), ("clean", "noisy")):
            if missing not in files:
                raise DataError(f"{files[have]}: no {missing} partner in {root} (expected by the {dataset} layout {layout})")
    return [
        Pair(name, FileImage(files["noisy"]), FileImage(files["clean"]), {"dataset": dataset, **metas[name]})
        for name, files in sorted(sides.items())
    ]


def read_polyu(root: str | Path, dataset: str = "PolyU") -> list[Pair]:
    """PolyU cropped images: pairs `<name>_real` (noisy) with `<name>_mean` (clean)."""
    return pair_by_role(root, parse_file, dataset, "<Camera>_<aperture>_<shutter>_<ISO>_<scene>_<idx>_{real,mean}.JPG")
