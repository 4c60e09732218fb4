"""Noise models: classical baselines (fitted on the training split) and their registry.

`build(kind, **params)` makes a model by its registry name; `REGISTRY` lists them.
Modules are imported on first use, so importing `pngan.noise` stays cheap.
"""

from __future__ import annotations

from pngan.noise.base import NoiseModel, quantize
from pngan.registry import Registry, RegistryError

REGISTRY = Registry("noise model", {
    "awgn": "pngan.noise.gaussian:AWGN",  # fixed sigma (the paper's Setting 1: 50/255)
    "awgn_fitted": "pngan.noise.gaussian:FittedAWGN",
    "heteroscedastic": "pngan.noise.gaussian:Heteroscedastic",  # Var = a_c x + b_c per channel
    "correlated": "pngan.noise.gaussian:CorrelatedGaussian",  # i.i.d. noise blurred by a small kernel
    "camera_random": "pngan.noise.camera:CameraRandom",  # unprocessing with published ranges
    "camera_fitted": "pngan.noise.camera:CameraFitted",  # unprocessing with fitted noise levels
})


# Display names for tables and figures, best references first, the paper's fixed input last.
LABELS: dict[str, str] = {
    "oracle": "Oracle: the true simulator, an independent draw",
    "pngan_aware": "Noise-aware PNGAN (this kit), at the camera setting's level",
    "pngan_aware@reference": "Noise-aware PNGAN (this kit), level from a reference image",
    "heteroscedastic@level": "Heteroscedastic Gaussian, at the noise-aware generator's camera-setting level",
    "pngan": "PNGAN (this kit)",
    "camera_fitted": "Camera pipeline, noise levels fitted",
    "heteroscedastic": "Heteroscedastic Gaussian, fitted",
    "correlated": "Spatially correlated Gaussian, fitted",
    "awgn_fitted": "AWGN, σ fitted",
    "camera_random": "Camera pipeline, published random ranges",
    "heteroscedastic@reference": "Heteroscedastic Gaussian, level from a reference image",
    "awgn@reference": "AWGN, σ from a reference image",
    "awgn": "AWGN σ = 50/255 (the paper's Setting 1 input)",
}


def label(key: str) -> str:
    """Display name of a model key; `kind@meta` is the kind fitted once per metadata group
    (`kind@reference`: set by a level estimated from a reference image, named in LABELS)."""
    if key in LABELS:
        return LABELS[key]
    kind, _, group = key.partition("@")
    name = LABELS.get(kind, kind)
    per = "camera setting" if group == "camera" else group  # `@camera`: simulated profile or camera + ISO
    return f"{name.replace(', fitted', '')}, fitted per {per}" if group else name


def build(kind: str, /, *, trusted: bool = False, **params) -> NoiseModel:
    """A noise model by registry name; a 'module:Class' path only from the user's own settings."""
    return REGISTRY.build(kind, params, trusted)


__all__ = ["NoiseModel", "RegistryError", "quantize", "build", "label", "LABELS", "REGISTRY"]
