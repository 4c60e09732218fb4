"""One entry point for every data layout: `read_dataset(kind, root, **options) -> list[Pair]`.

Kinds: generic (`noisy/` + `clean/`), clean (clean-only folder), sidd_small, sidd_medium,
sidd_val (validation blocks, with ground truth), sidd_benchmark (noisy blocks only), dnd (noisy
crops only), polyu, nam_cc15, nam_cc60, and auto (detected from the folder's content).
Every pair's `meta` also records the `kind` and `root` it was read with, so a manifest can
find array-backed pairs (.mat blocks, DND crops) again.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from pathlib import Path
from typing import Any, Callable

from pngan.data import dnd, nam, polyu, sidd
from pngan.data.pairs import Pair, read_clean_folder, read_paired_folder
from pngan.images import DataError, is_image_file

# Metadata keys that hold integers; every other key holds a string (manifests and patch
# indexes read their CSV cells back with these types).
INT_META_KEYS = frozenset(
    {"iso", "shutter", "illuminant", "patch", "crop", "image", "block", "r0", "c0", "r1", "c1", "top", "left", "height", "width"}
)

# File-name parsers tried, in this order, on the names of a generic folder. The patterns are
# disjoint (SIDD and CC15 are strict; PolyU needs a numeric aperture field).
NAME_PARSERS: tuple[Callable[[str], dict[str, Any] | None], ...] = (
    sidd.parse_name,
    nam.parse_cc60_name,
    nam.parse_cc15_name,
    polyu.parse_name,
)


def parse_known_name(stem: str) -> dict[str, Any]:
    """Metadata a file name carries when it follows a known dataset's naming (else {})."""
    for parse in NAME_PARSERS:
        meta = parse(stem)
        if meta is not None:
            return meta
    return {}


def _pattern_meta(pattern: re.Pattern, pair: Pair) -> dict[str, Any]:
    match = pattern.fullmatch(pair.name)
    if match is None:
        raise DataError(f"{pair.noisy or pair.clean}: name '{pair.name}' does not match name_pattern '{pattern.pattern}'")
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    return typed_meta(groups, where=str(pair.noisy or pair.clean))


def typed_meta(strings: dict[str, str], where: str) -> dict[str, Any]:
    """Metadata read as text (CSV cells, regex groups) with the integer keys converted; '' means absent.

    `where` (a file, a row) names the source in the error raised for a non-integer value.
    """
    meta: dict[str, Any] = {}
    for key, value in strings.items():
        if value == "":
            continue
        try:
            meta[key] = int(value) if key in INT_META_KEYS else value
        except ValueError as err:
            raise DataError(f"{where}: metadata '{key}' must be an integer, got '{value}'") from err
    return meta


def _with_names(pairs: list[Pair], name_pattern: str | None) -> list[Pair]:
    try:
        pattern = re.compile(name_pattern) if name_pattern is not None else None
    except re.error as err:
        raise ValueError(f"name_pattern '{name_pattern}' is not a regular expression: {err}") from err
    out = []
    for p in pairs:
        extra = _pattern_meta(pattern, p) if pattern is not None else parse_known_name(p.name)
        out.append(dataclasses.replace(p, meta={**p.meta, **extra}))
    return out


def read_generic(root: str | Path, dataset: str | None = None, name_pattern: str | None = None) -> list[Pair]:
    """Generic `noisy/` + `clean/` folder, with metadata parsed from the file names.

    Names following SIDD (`<instance>[_<patch>]`), PolyU, Nam CC15 or CC60 naming (without
    the role suffix) get their camera, ISO and scene. `name_pattern`, a regular expression with
    named groups (`(?P<scene>\\d+)_\\d+`), replaces that guess: every name must match it and
    its groups become metadata.
    """
    return _with_names(read_paired_folder(root, dataset), name_pattern)


def read_clean(root: str | Path, dataset: str | None = None, name_pattern: str | None = None) -> list[Pair]:
    """Clean-only folder (DIV2K, Kodak24, ...); metadata from the names as in `read_generic`."""
    return _with_names(read_clean_folder(root, dataset), name_pattern)


READERS: dict[str, Callable[..., list[Pair]]] = {
    "generic": read_generic,
    "clean": read_clean,
    "sidd_small": functools.partial(sidd.read_sidd_folder, dataset="SIDD_small"),
    "sidd_medium": functools.partial(sidd.read_sidd_folder, dataset="SIDD_medium"),
    "sidd_val": sidd.read_sidd_validation,
    "sidd_benchmark": sidd.read_sidd_benchmark,
    "dnd": dnd.read_dnd,
    "polyu": polyu.read_polyu,
    "nam_cc15": nam.read_nam_cc15,
    "nam_cc60": nam.read_nam_cc60,
}
KINDS = (*READERS, "auto")


def _role_kind(root: Path) -> str | None:
    """polyu / nam_cc15 / nam_cc60 when the folder's image names follow exactly one of them."""
    stems = [f.stem for f in root.iterdir() if is_image_file(f)]
    parsers = {"polyu": polyu.parse_file, "nam_cc15": nam.parse_cc15_file, "nam_cc60": nam.parse_cc60_file}
    hits = {kind for kind, parse in parsers.items() for s in stems if parse(s) is not None}
    return hits.pop() if len(hits) == 1 else None


def _sidd_folder_kind(root: Path) -> str | None:
    data = root / "Data" if (root / "Data").is_dir() else root
    instances = [p for p in data.iterdir() if p.is_dir() and sidd.parse_instance(p.name)]
    if not instances:
        return None
    # SIDD-Medium prefixes each file with the instance id (`0001_GT_SRGB_010.PNG`); SIDD-Small does not.
    prefixed = any(m and m["id"] for p in instances for m in map(sidd.SRGB_FILE_RE.fullmatch, (f.name for f in p.iterdir())))
    return "sidd_medium" if prefixed else "sidd_small"


def detect_kind(root: str | Path) -> str:
    """The layout of a folder, from its content; a DataError when it is not recognised or ambiguous."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    if (root / "noisy").is_dir() and (root / "clean").is_dir():
        return "generic"
    if (root / sidd.VALIDATION_NOISY[0]).is_file():
        return "sidd_val"
    if (root / sidd.BENCHMARK_NOISY[0]).is_file():
        return "sidd_benchmark"
    if (root / dnd.INFO_FILE).is_file() and (root / dnd.IMAGES_DIR).is_dir():
        return "dnd"
    kind = _sidd_folder_kind(root) or _role_kind(root)
    if kind is None:
        raise DataError(
            f"{root}: cannot tell the data layout (no noisy/ + clean/ folders, SIDD .mat blocks or instance "
            f"folders, DND info.mat, or PolyU / Nam file names); pass the kind explicitly "
            f"('clean' for a folder of clean images; kinds: {', '.join(KINDS)})"
        )
    return kind


def read_dataset(kind: str, root: str | Path, **options: Any) -> list[Pair]:
    """Read a data set of the given layout `kind` (see the module docstring) into a list of pairs.

    `options` go to the layout's reader (e.g. `dataset=` to rename it, `name_pattern=` for
    generic folders, `noisy_file=` for SIDD blocks); an unknown one is a ValueError.
    """
    if kind == "auto":
        kind = detect_kind(root)
    if kind not in READERS:
        raise ValueError(f"unknown data kind '{kind}'; kinds: {', '.join(KINDS)}")
    reader = READERS[kind]
    accepted = [p for p in inspect.signature(reader).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"data kind '{kind}' takes no option(s) {', '.join(unknown)}; its options: {', '.join(accepted)}")
    pairs = reader(root, **options)
    return [dataclasses.replace(p, meta={**p.meta, "kind": kind, "root": str(root)}) for p in pairs]
