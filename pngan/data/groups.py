"""Metadata groups of pairs: the camera setting a noise level belongs to.

The camera setting is the simulated profile ('phone_iso3200'), or camera and ISO as the real
data sets' readers parse them from file names ('GP ISO 800'), or the camera alone. These are
the keys of `kind@camera` (pngan.stages.generate.group_of, which must agree: tests check it)
and of a noise-aware generator's trained levels (pngan.train.aware).
"""

from __future__ import annotations

from typing import Any

from pngan.data.pairs import Pair


def camera_key(camera: str, iso: int | str | None = None) -> str:
    """The camera-setting key of a camera (or simulated profile) and its ISO."""
    return str(camera) if iso is None else f"{camera} ISO {iso}"


def camera_setting(meta: dict[str, Any]) -> str | None:
    """What a camera noise profile is calibrated for: the simulated profile, or camera and ISO."""
    if "profile" in meta:
        return str(meta["profile"])
    if "camera" in meta:
        return f"{meta['camera']} ISO {meta['iso']}" if "iso" in meta else str(meta["camera"])
    return None


def group_of(pair: Pair, key: str) -> str | None:
    """The metadata group of a pair: `camera` is the camera setting, any other key is read as is."""
    value = camera_setting(pair.meta) if key == "camera" else pair.meta.get(key)
    return None if value is None else str(value)
