"""The embedded default data set: a simulated camera that works offline.

Clean images are the natural colour photographs shipped with scikit-image and matplotlib;
noisy ones come from the camera pipeline of `pngan.isp` under a few fixed, named camera/ISO
profiles. Each profile was calibrated by measurement against the real dev pairs
(`REAL_NOISE_STATISTICS`, METHOD.md section 5, measured with `pngan.stats.image_summary`):

- Phone profiles ("SIDD-like"): Malvar-He-Cutler demosaicking, no noise reduction, no JPEG.
  SIDD's sRGB images were rendered by its authors' pipeline with MATLAB's `demosaic`
  (AbdoKamel/simple-camera-pipeline@1317c706, run_pipeline.m), which is the Malvar-He-Cutler
  gradient-corrected interpolation. Its kernels copy each site's noise into the other two
  channels, which gives SIDD's lag-1 correlation (~0.45), its small lag-2 correlation and
  positive cross-channel correlation with R-B above R-G. Bilinear demosaicking instead gives
  lag-1 ~0.57, lag-2 ~0.13 and *negative* R-G correlation (the colour matrix's negative
  off-diagonal terms act on independent channels).
- DSLR-JPEG profiles ("PolyU-like", "Nam-like"): the same sensor model plus in-camera noise
  reduction (luma and, harder, chroma low-pass) and JPEG. JPEG alone leaves lag-1 near 0.45;
  the smooth, channel-correlated noise of camera JPEGs (lag-1 ~0.7, lag-2 ~0.4) needs the
  noise reduction. PolyU's crops are stored at JPEG quality 75 with 4:2:0 chroma (read from
  the files' quantisation tables), so the PolyU-like profile uses that.

Read noise of every profile sits on the published line log(read) = 2.18 log(shot) + 1.20.
Measured over 20 crops of the embedded images, every profile's median statistics lie inside
its family's real 10-90% range; the phones' lag-2 correlation (~0.05, 0.02-0.04 on some
crops at low ISO) stays below SIDD's 0.07, their R-B correlation (~0.43) below SIDD's 0.53.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from pngan.images import read_image, to_image, to_tensor
from pngan.isp import CameraParams, add_camera_noise, jpeg_noise
from pngan.noise.base import NoiseModel, quantize


# ---- clean sources --------------------------------------------------------------------------

# scikit-image loaders that need no download (pooch), with the scene each image shows.
# colorwheel is left out: a synthetic graphic of saturated colours, not a camera image.
_SKIMAGE_SOURCES = (
    ("astronaut", "astronaut"),
    ("chelsea", "chelsea"),
    ("coffee", "coffee"),
    ("rocket", "rocket"),
    ("hubble_deep_field", "hubble_deep_field"),
    ("immunohistochemistry", "immunohistochemistry"),
    ("retina", "retina"),
)


def embedded_sources() -> list[tuple[str, str, np.ndarray]]:
    """(name, scene, uint8 H x W x 3) for every clean image the kit ships with, offline.

    The two views of scikit-image's stereo_motorcycle share the scene "motorcycle", so a
    split by scene keeps them together.
    """
    import matplotlib.cbook
    import skimage.data

    sources = [(name, scene, np.ascontiguousarray(getattr(skimage.data, name)())) for name, scene in _SKIMAGE_SOURCES]
    left, right, _disparity = skimage.data.stereo_motorcycle()
    sources += [("motorcycle_left", "motorcycle", np.ascontiguousarray(left)), ("motorcycle_right", "motorcycle", np.ascontiguousarray(right))]
    hopper = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    sources.append(("grace_hopper", "grace_hopper", hopper))
    return sources


# ---- real-noise targets ---------------------------------------------------------------------

# (10th percentile, median, 90th percentile) over the images of each family of
# ../shared/data/real_pairs_dev: METHOD.md section 5's columns as `pngan.stats.image_summary`
# measures them (std_255 in 8-bit levels), plus the vertical lag-2 correlation (entry (2, 0) of
# `pngan.stats.autocorrelation`) and the noisy PSNR in dB (`pngan.metrics.psnr`).
REAL_NOISE_STATISTICS: dict[str, dict[str, tuple[float, float, float]]] = {
    "SIDD_small": {
        "std_255": (9.074, 16.441, 32.348), "psnr": (17.757, 23.712, 28.956),
        "lag1_h": (0.419, 0.444, 0.461), "lag1_v": (0.421, 0.445, 0.465),
        "lag2_h": (0.040, 0.070, 0.086), "lag2_v": (0.043, 0.069, 0.087),
        "corr_rg": (0.176, 0.283, 0.393), "corr_gb": (0.175, 0.241, 0.513), "corr_rb": (0.399, 0.530, 0.569),
    },
    "SIDD_medium": {
        "std_255": (6.200, 6.905, 8.052), "psnr": (29.947, 31.309, 32.252),
        "lag1_h": (0.456, 0.459, 0.467), "lag1_v": (0.454, 0.460, 0.471),
        "lag2_h": (0.060, 0.066, 0.078), "lag2_v": (0.061, 0.070, 0.085),
        "corr_rg": (0.271, 0.290, 0.301), "corr_gb": (0.151, 0.168, 0.191), "corr_rb": (0.551, 0.565, 0.573),
    },
    "PolyU": {
        "std_255": (2.841, 3.778, 5.659), "psnr": (32.843, 36.371, 39.034),
        "lag1_h": (0.520, 0.700, 0.797), "lag1_v": (0.503, 0.663, 0.762),
        "lag2_h": (0.228, 0.425, 0.580), "lag2_v": (0.186, 0.329, 0.511),
        "corr_rg": (0.505, 0.679, 0.850), "corr_gb": (0.503, 0.622, 0.813), "corr_rb": (0.457, 0.621, 0.821),
    },
    "Nam_CC60": {
        "std_255": (3.795, 4.658, 6.039), "psnr": (32.520, 34.634, 36.408),
        "lag1_h": (0.622, 0.714, 0.753), "lag1_v": (0.560, 0.703, 0.734),
        "lag2_h": (0.301, 0.382, 0.448), "lag2_v": (0.191, 0.338, 0.415),
        "corr_rg": (0.260, 0.413, 0.524), "corr_gb": (0.182, 0.335, 0.581), "corr_rb": (0.319, 0.409, 0.586),
    },
}


# ---- camera profiles ------------------------------------------------------------------------


def brooks_read_noise(shot: float) -> float:
    """Read noise on the published line log(read) = 2.18 log(shot) + 1.20 (no scatter)."""
    return math.exp(2.18 * math.log(shot) + 1.20)


@dataclass(frozen=True)
class Profile:
    """One fixed camera at one ISO: every setting of the simulated rendering, recorded.

    `family` names the row of REAL_NOISE_STATISTICS the profile is calibrated against;
    `camera` ((name, weight), ...) a convex mix of `pngan.isp.XYZ_TO_CAMERA` colour
    matrices; the rest as in CameraParams,
    plus the JPEG quality (None: no JPEG) and chroma subsampling.
    """

    name: str
    description: str
    family: str
    camera: tuple[tuple[str, float], ...]
    red_gain: float
    blue_gain: float
    brightness: float
    shot: float
    read: float
    demosaic: str
    luma_sigma: float = 0.0
    chroma_sigma: float = 0.0
    jpeg_quality: int | None = None
    jpeg_subsampling: str = "4:2:0"

    def camera_params(self) -> CameraParams:
        return CameraParams.for_camera(
            dict(self.camera), red_gain=self.red_gain, blue_gain=self.blue_gain, brightness=self.brightness,
            shot=self.shot, read=self.read, demosaic=self.demosaic,
            luma_sigma=self.luma_sigma, chroma_sigma=self.chroma_sigma,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The phones' own colour matrices are not published; this mix of two of the paper's matrices
# put every SIDD statistic inside the real 10-90% range (brooks_1 alone: lag-1 0.41, lag-2 0.02).
PHONE_CAMERA = (("brooks_1", 0.6), ("brooks_3", 0.4))


def _phone(name: str, iso: int, shot: float, red_gain: float, blue_gain: float) -> Profile:
    return Profile(
        name=name, description=f"smartphone at ISO {iso}: raw noise, Malvar demosaic, no noise reduction, no JPEG",
        family="SIDD_small", camera=PHONE_CAMERA, red_gain=red_gain, blue_gain=blue_gain, brightness=1.25,
        shot=shot, read=brooks_read_noise(shot), demosaic="malvar",
    )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        _phone("phone_iso3200", 3200, 0.011, red_gain=1.9, blue_gain=2.2),
        _phone("phone_iso1600", 1600, 0.0045, red_gain=2.0, blue_gain=2.0),
        _phone("phone_iso800", 800, 0.002, red_gain=1.9, blue_gain=2.2),
        _phone("phone_iso400", 400, 0.0011, red_gain=2.0, blue_gain=2.0),
        Profile(
            name="dslr_jpeg_iso6400", description="DSLR at ISO 6400, in-camera noise reduction, JPEG quality 75 4:2:0 (PolyU-like)",
            family="PolyU", camera=(("canon_eos_5d_mark_ii", 1.0),), red_gain=2.0, blue_gain=1.5, brightness=1.25,
            shot=0.0007, read=brooks_read_noise(0.0007), demosaic="malvar",
            luma_sigma=1.1, chroma_sigma=3.0, jpeg_quality=75, jpeg_subsampling="4:2:0",
        ),
        Profile(
            name="dslr_jpeg_iso3200", description="DSLR at ISO 3200, in-camera noise reduction, JPEG quality 95 4:2:2 (Nam-like)",
            family="Nam_CC60", camera=(("nikon_d800", 1.0),), red_gain=2.1, blue_gain=1.6, brightness=1.25,
            shot=0.001, read=brooks_read_noise(0.001), demosaic="malvar",
            luma_sigma=0.8, chroma_sigma=2.0, jpeg_quality=95, jpeg_subsampling="4:2:2",
        ),
    )
}


def get_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown camera profile '{profile}'; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


# ---- the simulator --------------------------------------------------------------------------


class SimulatorNoise(NoiseModel):
    """The true noise law of the simulated camera, as a noise model: two independent draws of
    it give the oracle reference (what a perfect generator would score)."""

    name = "simulator"

    def __init__(self, profile: str | Profile) -> None:
        self.profile = get_profile(profile)
        self.camera = self.profile.camera_params()

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = quantize(add_camera_noise(clean, self.camera, generator))
        if self.profile.jpeg_quality is None:
            return noisy
        clean_u8, noisy_u8 = to_image(clean), to_image(noisy)
        coded = [jpeg_noise(c, n, self.profile.jpeg_quality, self.profile.jpeg_subsampling) for c, n in zip(clean_u8, noisy_u8)]
        return to_tensor(np.stack(coded)).to(clean.device)

    def params(self) -> dict[str, Any]:
        return self.profile.as_dict()


def simulate(clean: np.ndarray, profile: str | Profile, seed: int) -> np.ndarray:
    """Noisy uint8 H x W x 3 version of `clean` under a camera profile; bit-identical for a
    given seed (on CPU), independent for different seeds."""
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"simulate expects an H x W x 3 uint8 image, got {clean.shape} {clean.dtype}")
    generator = torch.Generator().manual_seed(int(seed))
    noisy = SimulatorNoise(profile).sample(to_tensor(clean)[None], generator)
    return to_image(noisy[0])
