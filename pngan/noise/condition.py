"""The condition of a noise-aware generator: the noise levels it was trained with, per camera setting.

Stored as the `condition` entry of its generator file (pngan.models.files):

    {"kind": "level", "knots": [...], "group_key": "camera" | "all",
     "groups": {camera setting: NoiseLevel.to_dict()},     # fitted on the training split, all on one axis
     "fallback": NoiseLevel.to_dict(),                     # fitted on all training pairs
     "iso_law": None | IsoLaw.to_dict(),                   # group_key "iso_law": level = fallback * exp(offset(camera, ISO))
     "range": {"min_std": ..., "max_std": ...},            # RMS std of those levels, in /255
     "hold_level": bool,                                   # G's field rescaled to unit RMS
     "estimator": {"options": {...}, "calibration": [r, g, b]}}  # the blind estimator of reference mode

The groups are camera settings (`camera_setting`): the simulated profile ('phone_iso3200'), or
camera and ISO as the real data sets' readers parse them from file names ('GP ISO 800'), or the
camera alone: the key of `kind@camera` (pngan.noise_models.group_of, which must agree: tests
check it).

With `group_key: iso_law` (real data sets, whose pairs carry camera and ISO) a setting's level is
not its own fit but the all-pairs level scaled by a per-camera ISO law, log std = a_camera +
slope * log ISO, fitted on the training images' level offsets (`fit_iso_law`). Real data sets
meet each setting in one or two scenes, whose own fits are poor (docs/METHOD.md §8.5), and the
law also gives a level to a trained camera at an ISO it was not trained at.

Files are shared, so `LevelCondition.from_dict` treats the entry as untrusted: every level goes
through `NoiseLevel.from_dict`, the range must be the one its levels give, and the estimator's
options must be plain values that `estimate_level` takes. Nothing in it names code.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from pngan.errors import DataError, ParamsError
from pngan.noise.level import NoiseLevel, estimate_level, fit_level

KIND = "level"
GROUP_KEYS = ("camera", "iso_law", "all")  # per camera setting; per camera, scaled by ISO; one level for every pair
RANGE_TOLERANCE = 1e-6  # relative: the stored range against the one recomputed from the levels
_PLAIN = (bool, int, float, str, type(None))


def camera_key(camera: str, iso: int | str | None = None) -> str:
    """The camera-setting key of a camera (or simulated profile) and its ISO."""
    return str(camera) if iso is None else f"{camera} ISO {iso}"


def camera_setting(meta: Mapping[str, Any]) -> str | None:
    """The camera setting of a pair's metadata: the simulated profile, or camera and ISO."""
    if "profile" in meta:
        return str(meta["profile"])
    if "camera" in meta:
        return camera_key(meta["camera"], meta["iso"]) if "iso" in meta else str(meta["camera"])
    return None


def rms_std_255(level: NoiseLevel) -> float:
    """A level in one number: its RMS std over channels and clean intensities in [0, 1], in 8-bit levels."""
    return level.mean_std() * 255


@dataclass(frozen=True)
class IsoLaw:
    """log(std / fallback std) = cameras[camera] + slope * log(ISO), for ISO within `iso_range`
    (the training images' ISOs); one slope for every camera, one offset per camera."""

    slope: float
    cameras: dict[str, float]
    iso_range: tuple[float, float]

    def __post_init__(self) -> None:
        numbers = [self.slope, *self.cameras.values(), *self.iso_range]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            raise DataError(f"ISO law: slope, camera offsets and ISO range must be finite numbers, got {self.to_dict()!r:.200}")
        if not self.cameras or not all(isinstance(k, str) and k for k in self.cameras):
            raise DataError("ISO law: cameras must map at least one camera name to its offset")
        if not 0 < self.iso_range[0] <= self.iso_range[1]:
            raise DataError(f"ISO law: the ISO range must be 0 < low <= high, got {list(self.iso_range)}")

    def factor(self, camera: str, iso: float, extrapolate: bool = False, any_camera: bool = False) -> float:
        """The std of `camera` at `iso` relative to the fallback level; an unknown camera (unless
        `any_camera`: the cameras' mean offset), or an ISO beyond the trained range (unless
        `extrapolate`), is an error naming what is known."""
        if camera not in self.cameras and any_camera:
            return math.exp(sum(self.cameras.values()) / len(self.cameras) + self.slope * math.log(iso))
        if camera not in self.cameras:
            raise ParamsError(f"camera '{camera}' is not one the generator was trained on; known: {', '.join(map(repr, sorted(self.cameras)))}")
        low, high = self.iso_range
        if not extrapolate and not low <= iso <= high:
            raise ParamsError(f"ISO {iso:g} is outside the ISOs the generator was trained on, {low:g}-{high:g}")
        return math.exp(self.cameras[camera] + self.slope * math.log(iso))

    def to_dict(self) -> dict[str, Any]:
        return {"slope": self.slope, "cameras": dict(sorted(self.cameras.items())), "iso_range": list(self.iso_range)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "ISO law") -> "IsoLaw":
        entry = _mapping(data, where, {"slope", "cameras", "iso_range"})
        if not isinstance(entry["cameras"], dict) or not isinstance(entry["iso_range"], list) or len(entry["iso_range"]) != 2:
            raise DataError(f"{where}: cameras must be a mapping and iso_range a [low, high] list")
        try:
            return cls(entry["slope"], dict(entry["cameras"]), tuple(entry["iso_range"]))
        except DataError as err:
            raise DataError(f"{where}: {err}") from None


def fit_iso_law(images: Sequence[tuple[str, float, list[tuple[np.ndarray, np.ndarray]]]], fallback: NoiseLevel) -> IsoLaw:
    """The ISO law of training images (camera, ISO, their (clean, noisy) pairs): each image's
    offset is the log ratio of its own level's RMS std to the fallback's, both over its own
    pixels; least squares fits one offset per camera and a common slope on log ISO (0 when every
    image has the same ISO)."""
    cameras = sorted({camera for camera, _, _ in images})
    rows, offsets = [], []
    for camera, iso, pairs in images:
        own = fit_level(pairs, knots=len(fallback.knots), axis=fallback.axis)
        energy = [(own.mean_std(clean) ** 2, fallback.mean_std(clean) ** 2) for clean, _ in pairs]
        offsets.append(0.5 * math.log(sum(e for e, _ in energy) / sum(f for _, f in energy)))
        rows.append([float(camera == c) for c in cameras] + [math.log(iso)])
    design, offsets = np.asarray(rows), np.asarray(offsets)
    isos = design[:, -1]
    if np.ptp(isos) == 0:
        design = design[:, :-1]
    coef = np.linalg.lstsq(design, offsets, rcond=None)[0]
    slope = float(coef[-1]) if design.shape[1] > len(cameras) else 0.0
    trained = [float(iso) for _, iso, _ in images]
    return IsoLaw(slope, {c: float(v) for c, v in zip(cameras, coef)}, (min(trained), max(trained)))


def iso_of(meta: Mapping[str, Any]) -> float | None:
    """A pair's ISO as a number (None when it has none, or none readable)."""
    try:
        iso = float(meta["iso"])
    except (KeyError, TypeError, ValueError):
        return None
    return iso if math.isfinite(iso) and iso > 0 else None


def has_camera_and_iso(meta: Mapping[str, Any]) -> bool:
    """Whether a pair can take an ISO law's level: a camera name and a readable ISO (a table's
    missing camera reads as NaN, not a string)."""
    return isinstance(meta.get("camera"), str) and iso_of(meta) is not None


@dataclass(frozen=True)
class LevelCondition:
    """What a noise-aware generator was trained on, and the checks generation makes against it."""

    fallback: NoiseLevel
    groups: dict[str, NoiseLevel] = field(default_factory=dict)
    group_key: str = "camera"
    hold_level: bool = True
    estimator: dict[str, Any] = field(default_factory=lambda: {"options": {}, "calibration": None})
    iso_law: IsoLaw | None = None

    def __post_init__(self) -> None:
        if self.group_key not in GROUP_KEYS:
            raise DataError(f"group_key must be one of {', '.join(GROUP_KEYS)}, got {self.group_key!r}")
        if (self.group_key == "iso_law") != (self.iso_law is not None):
            raise DataError(f"group_key '{self.group_key}' {'needs' if self.group_key == 'iso_law' else 'takes no'} ISO law")
        other = [key for key, level in self.groups.items() if tuple(level.knots) != tuple(self.fallback.knots)]
        if other:
            raise DataError(f"the levels of {', '.join(map(repr, other[:3]))} lie on other knots than the fallback's {list(self.fallback.knots)}")
        other = [key for key, level in self.groups.items() if level.axis != self.fallback.axis]
        if other:
            raise DataError(f"the levels of {', '.join(map(repr, other[:3]))} are functions of another intensity than the fallback's ({self.fallback.axis})")

    @property
    def knots(self) -> tuple[float, ...]:
        return tuple(self.fallback.knots)

    @property
    def axis(self) -> str:
        """What the levels are functions of: each channel's clean value, or the clean luminance."""
        return self.fallback.axis

    @property
    def range(self) -> tuple[float, float]:
        """(min, max) RMS std in /255 of the trained levels (the groups' and the fallback)."""
        stds = [rms_std_255(level) for level in (*self.groups.values(), self.fallback)]
        return min(stds), max(stds)

    @property
    def input_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(low, high) per channel R, G, B: the least and greatest level values (in [0, 1] units)
        of the trained levels' tables, so of any level the networks saw in training (a level
        map interpolates its table). The networks read the level clamped to them: a learned
        function of the level extrapolates arbitrarily beyond its training range (docs/METHOD.md §8.5)."""
        rows = [level.sigma for level in (*self.groups.values(), self.fallback)]
        return (tuple(min(min(table[c]) for table in rows) for c in range(3)),
                tuple(max(max(table[c]) for table in rows) for c in range(3)))

    def describe_groups(self) -> str:
        if self.iso_law is not None:
            low, high = self.iso_law.iso_range
            return f"cameras {', '.join(map(repr, sorted(self.iso_law.cameras)))} at ISO {low:g}-{high:g}"
        if not self.groups:
            return "none (trained with one level for every pair)"
        return ", ".join(f"'{key}'" for key in sorted(self.groups))

    def level_of(self, key: str) -> NoiseLevel:
        """The trained level of a camera setting; an unknown one is an error naming the known ones."""
        if key not in self.groups:
            raise ParamsError(f"camera setting '{key}' is not one the generator was trained on; known: {self.describe_groups()}")
        return self.groups[key]

    def level_at(self, camera: str, iso: float | None) -> NoiseLevel:
        """The level of a camera at an ISO: with an ISO law, any trained camera at an ISO within
        the trained range; else a trained camera setting."""
        if self.iso_law is None:
            return self.level_of(camera_key(camera, iso))
        if iso is None:
            raise ParamsError(f"camera '{camera}' needs an ISO: the generator's level follows the ISO ({self.describe_groups()})")
        return self.fallback.scaled(self.iso_law.factor(camera, iso))

    def level_for(self, meta: Mapping[str, Any]) -> NoiseLevel:
        """The level of a pair by its metadata, for scoring and training: its camera setting's;
        with an ISO law and an ISO, its camera's level at that ISO (extrapolated beyond the
        trained ISOs; a camera not in training takes the cameras' mean offset); else the
        all-pairs level."""
        if self.iso_law is not None and "profile" not in meta and has_camera_and_iso(meta):
            return self.fallback.scaled(self.iso_law.factor(meta["camera"], iso_of(meta), extrapolate=True, any_camera=True))
        return self.groups.get(camera_setting(meta), self.fallback)

    def check_level(self, level: NoiseLevel, margin: float | None, what: str, error: type[Exception] = ParamsError) -> NoiseLevel:
        """`level` if its RMS std lies within the trained range widened by `margin` (x / margin to
        x * margin; None: any level). A zero level always passes: it gives the clean image
        whatever G does."""
        std = rms_std_255(level)
        low, high = self.range
        if margin is None or std == 0 or low / margin <= std <= high * margin:
            return level
        raise error(
            f"{what}: noise level {std:.2f}/255 (RMS) is outside what the generator was trained on, "
            f"{low:.2f}-{high:.2f}/255 (accepted with margin {margin:g}x: {low / margin:.2f}-{high * margin:.2f}/255)"
        )

    def estimate(self, noisy: Any) -> NoiseLevel:
        """The level of noisy images (no clean image): the blind estimator with the file's options
        and calibration."""
        return estimate_level(noisy, knots=len(self.knots), calibration=self.estimator.get("calibration"), axis=self.axis,
                              **self.estimator.get("options", {}))

    # ---- the file entry ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        low, high = self.range
        return {
            "kind": KIND,
            "knots": [float(k) for k in self.knots],
            "group_key": self.group_key,
            "groups": {key: self.groups[key].to_dict() for key in sorted(self.groups)},
            "fallback": self.fallback.to_dict(),
            "range": {"min_std": low, "max_std": high},
            "hold_level": self.hold_level,
            "estimator": {"options": dict(self.estimator.get("options", {})), "calibration": self.estimator.get("calibration")},
            "iso_law": None if self.iso_law is None else self.iso_law.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "condition") -> "LevelCondition":
        """Validate an untrusted entry (a generator file's); any fault is a DataError naming it."""
        keys = {"kind", "knots", "group_key", "groups", "fallback", "range", "hold_level", "estimator"}
        entry = _mapping(data, where, keys | {"iso_law"} if isinstance(data, dict) and "iso_law" in data else keys)  # files before the law lack it
        if entry["kind"] != KIND:
            raise DataError(f"{where}: kind must be '{KIND}', got {entry['kind']!r}")
        if not isinstance(entry["group_key"], str) or entry["group_key"] not in GROUP_KEYS:
            raise DataError(f"{where}: group_key must be one of {', '.join(GROUP_KEYS)}, got {entry['group_key']!r}")
        if not isinstance(entry["hold_level"], bool):
            raise DataError(f"{where}: hold_level must be true or false, got {entry['hold_level']!r}")
        groups = entry["groups"]
        if not isinstance(groups, dict) or not all(isinstance(k, str) and k for k in groups):
            raise DataError(f"{where}: groups must map camera-setting names to noise levels")
        fallback = NoiseLevel.from_dict(entry["fallback"], where=f"{where}: fallback")
        levels = {key: NoiseLevel.from_dict(value, where=f"{where}: group '{key}'") for key, value in groups.items()}
        estimator = _estimator(entry["estimator"], f"{where}: estimator")
        law = entry.get("iso_law")
        law = None if law is None else IsoLaw.from_dict(law, f"{where}: iso_law")
        try:
            condition = cls(fallback, levels, entry["group_key"], entry["hold_level"], estimator, law)
        except DataError as err:
            raise DataError(f"{where}: {err}") from None
        if not _same_numbers(entry["knots"], condition.knots):
            raise DataError(f"{where}: knots {entry['knots']!r} are not its levels' knots {list(condition.knots)}")
        stored = _mapping(entry["range"], f"{where}: range", {"min_std", "max_std"})
        if not _same_numbers([stored["min_std"], stored["max_std"]], condition.range, RANGE_TOLERANCE):
            raise DataError(f"{where}: range {stored!r} is not the one its levels give ({condition.range[0]:.4g}-{condition.range[1]:.4g}/255)")
        return condition


def _mapping(data: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a mapping, got {type(data).__name__}")
    missing, extra = sorted(keys - data.keys()), sorted(map(str, data.keys() - keys))
    if missing or extra:
        raise DataError(f"{where}: " + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}", extra and f"unknown {', '.join(extra)}"])))
    return data


def _same_numbers(values: Any, expected: tuple[float, ...], tolerance: float = 0.0) -> bool:
    if not isinstance(values, (list, tuple)) or len(values) != len(expected):
        return False
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    return numbers and all(abs(v - e) <= tolerance * max(abs(e), 1e-12) for v, e in zip(values, expected))


def _estimator(data: Any, where: str) -> dict[str, Any]:
    """{"options", "calibration"}: options are plain scalars that `estimate_level` takes by name
    (it checks their ranges when used), the calibration None or its three factors."""
    entry = _mapping(data, where, {"options", "calibration"})
    options = entry["options"]
    if not isinstance(options, dict):
        raise DataError(f"{where}: options must be a mapping, got {type(options).__name__}")
    set_by_condition = ("noisy", "knots", "calibration", "axis")
    takes = [name for name, p in inspect.signature(estimate_level).parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in set_by_condition]
    for key, value in options.items():
        if key not in takes:
            raise DataError(f"{where}: estimate_level takes no option {key!r}; it takes: {', '.join(takes) or 'none'}")
        if not isinstance(value, _PLAIN) or (isinstance(value, float) and not math.isfinite(value)):
            raise DataError(f"{where}: option {key!r} must be a plain number, flag or string, got {value!r:.60}")
    calibration = entry["calibration"]
    if calibration is not None and not _positive_triple(calibration):
        raise DataError(f"{where}: calibration must be None or three factors > 0 (R, G, B), got {calibration!r:.80}")
    return {"options": dict(options), "calibration": None if calibration is None else [float(v) for v in calibration]}


def _positive_triple(values: Any) -> bool:
    return (isinstance(values, (list, tuple)) and len(values) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values))

