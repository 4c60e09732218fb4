"""Camera-pipeline noise models (METHOD.md section 4.3; Brooks et al. 2019 unprocessing).

- `CameraRandom`: every camera parameter drawn afresh per image from the published ranges,
  as the paper's comparison used such models; optional JPEG with a random quality (CBDNet
  used 60-100).
- `CameraFitted`: the same pipeline at the centre of the published camera (equal mix of the
  four colour matrices, red gain 2.15, blue gain 1.7, brightness 1/0.8), with the sensor noise
  levels (shot, read) fitted on training pairs.

How CameraFitted fits. Its ISP is fixed and invertible, so a pair maps back to raw: unprocess
the clean and the noisy image with plain (not highlight-safe) inverse gains and take each Bayer
site's own channel. Both demosaicking methods keep a site's own value, so the difference is
that site's raw noise, exactly up to 8-bit rounding wherever nothing clipped. Sites are kept
when their clean pixel (never the noisy one, which would bias the fit) stays `margin` noise
std inside every clipping bound (sensor, linear sRGB) and below the highlight-safe gains.
Then E[d^2] = shot * x + read + q, with q the known variance that 8-bit rounding of the noisy
image adds after inversion, is fitted per training image by iteratively reweighted least
squares (weights 1 / Var(d^2) = 1 / (2 v^2)), read constrained >= 0. Over images, log shot is
modelled as normal and log read as a line in log shot plus normal scatter (the family of the
published draws, with fitted parameters). mode "lognormal" draws a level per generated image,
mode "fixed" uses the median level for every image. Only pairs are seen, nothing about how
they were made. Reads at the boundary 0 are left out of the read distribution: on the
published line, read noise at low ISO is far below the 8-bit rounding variance and cannot be
identified from sRGB pairs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from pngan.images import DataError, to_image, to_tensor
from pngan.isp import (
    BROOKS_CAMERAS,
    DEMOSAIC_METHODS,
    SAFE_GAIN_INFLECTION,
    CameraParams,
    add_camera_noise,
    gamma_expand,
    inverse_smoothstep,
    jpeg_noise,
    mosaic,
    random_params,
)
from pngan.noise.base import NoiseModel, TrainPairs, quantize

QUANT_VAR = 1.0 / (12.0 * 255.0**2)  # variance of rounding to 8-bit levels, on the [0, 1] scale


def _apply_jpeg(clean: torch.Tensor, noisy: torch.Tensor, quality: int, subsampling: str) -> torch.Tensor:
    """The in-camera JPEG of `pngan.isp.jpeg_noise` on a (B, 3, H, W) batch (runs on CPU)."""
    coded = [jpeg_noise(c, n, quality, subsampling) for c, n in zip(to_image(clean), to_image(quantize(noisy)))]
    return to_tensor(np.stack(coded)).to(clean.device)


class CameraRandom(NoiseModel):
    """Unprocessing with the published random parameters, a fresh draw per image.

    `demosaic`: "bilinear" (the paper's code) or "malvar"; `jpeg_quality`: None or an
    inclusive (low, high) range, one quality drawn per image.
    """

    name = "camera_random"

    def __init__(self, demosaic: str = "bilinear", jpeg_quality: Sequence[int] | None = None, jpeg_subsampling: str = "4:2:0"):
        if jpeg_quality is not None:
            low, high = (int(q) for q in jpeg_quality)
            if not 1 <= low <= high <= 100:
                raise ValueError(f"camera_random: jpeg_quality must be a range (low, high) within [1, 100], got {jpeg_quality!r}")
            jpeg_quality = (low, high)
        if demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"camera_random: demosaic must be one of {DEMOSAIC_METHODS}, got '{demosaic}'")
        self.demosaic = demosaic
        self.jpeg_quality = jpeg_quality
        self.jpeg_subsampling = jpeg_subsampling

    def draw(self, generator: torch.Generator) -> CameraParams:
        """One camera: colour matrix, gains, brightness and noise levels from the published ranges."""
        return random_params(generator, self.demosaic)

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = []
        for image in clean.split(1):
            sample = add_camera_noise(image, self.draw(generator), generator)
            if self.jpeg_quality is not None:
                low, high = self.jpeg_quality
                quality = int(torch.randint(low, high + 1, (), generator=generator, device=generator.device))
                sample = _apply_jpeg(image, sample, quality, self.jpeg_subsampling)
            noisy.append(sample)
        return torch.cat(noisy)

    def params(self) -> dict[str, Any]:
        quality = list(self.jpeg_quality) if self.jpeg_quality is not None else None
        return {"demosaic": self.demosaic, "jpeg_quality": quality, "jpeg_subsampling": self.jpeg_subsampling}


# ---- fitting the raw noise levels of a known ISP ---------------------------------------------


def _srgb_to_linear_derivative(srgb: torch.Tensor) -> torch.Tensor:
    """d linear / d sRGB of gamma_expand(inverse_smoothstep(.)), by central differences."""
    h = 0.25 / 255.0
    upper = gamma_expand(inverse_smoothstep((srgb + h).clamp(max=1.0)))
    lower = gamma_expand(inverse_smoothstep((srgb - h).clamp(min=0.0)))
    return (upper - lower) / ((srgb + h).clamp(max=1.0) - (srgb - h).clamp(min=0.0))


class RawSites:
    """Raw-domain noise samples of pairs under a known ISP: per Bayer site the clean raw value,
    the raw noise d, the rounding variance q, and what is needed to decide validity."""

    def __init__(self, clean: np.ndarray, noisy: np.ndarray, isp: CameraParams):
        c = to_tensor(clean)[None].double()
        n = to_tensor(noisy)[None].double()
        rgb2cam = torch.tensor(isp.rgb2cam, dtype=torch.float64)
        self.cam2rgb = torch.linalg.inv(rgb2cam)
        self.gains = torch.tensor([isp.red_gain, 1.0, isp.blue_gain], dtype=torch.float64) * isp.brightness
        linear = gamma_expand(inverse_smoothstep(c))
        self.balanced = torch.einsum("ij,bjhw->bihw", rgb2cam, linear)  # clean camera RGB after white balance
        noisy_balanced = torch.einsum("ij,bjhw->bihw", rgb2cam, gamma_expand(inverse_smoothstep(n)))
        raw_gain = self.gains.view(1, 3, 1, 1)
        self.linear = linear
        self.x = mosaic(self.balanced / raw_gain).flatten()
        self.d = mosaic((noisy_balanced - self.balanced) / raw_gain).flatten()
        # rounding of noisy channel k (variance QUANT_VAR) reaches site channel c through
        # rgb2cam[c, k] * dlinear_k / dsrgb_k / gain_c, the slope taken at the noisy value
        slope = _srgb_to_linear_derivative(n)
        per_channel = torch.einsum("ij,bjhw->bihw", rgb2cam**2, slope**2) * QUANT_VAR / raw_gain**2
        self.q = mosaic(per_channel).flatten()

    def valid(self, shot: float, read: float, margin: float) -> torch.Tensor:
        """Sites whose clean pixel keeps `margin` noise std inside every clipping bound."""
        raw_var = (self.balanced / self.gains.view(1, 3, 1, 1)).clamp_min(0.0) * shot + read
        balanced_std = raw_var.sqrt() * self.gains.view(1, 3, 1, 1)
        linear_std = torch.einsum("ij,bjhw->bihw", self.cam2rgb**2, balanced_std**2).sqrt()

        def inside(value: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
            return ((value - margin * std > 0) & (value + margin * std < 1)).all(dim=1)

        ok = inside(self.balanced, balanced_std) & inside(self.linear, linear_std)
        ok &= self.balanced.mean(dim=1) < SAFE_GAIN_INFLECTION
        return ok.flatten()


def fit_noise_levels(x: torch.Tensor, d: torch.Tensor, q: torch.Tensor, iterations: int = 4) -> tuple[float, float]:
    """Weighted least squares of d^2 - q on shot * x + read (read >= 0), reweighted by the
    fitted variance: the maximum-likelihood direction for Gaussian d."""
    target = d * d - q
    weights = torch.ones_like(x)
    shot, read = 0.0, 0.0
    for _ in range(iterations):
        # 2 x 2 normal equations of the weighted fit
        sw, swx, swxx = weights.sum(), (weights * x).sum(), (weights * x * x).sum()
        swy, swxy = (weights * target).sum(), (weights * x * target).sum()
        determinant = sw * swxx - swx * swx
        shot = float((sw * swxy - swx * swy) / determinant)
        read = float((swxx * swy - swx * swxy) / determinant)
        if read < 0:  # constrained optimum on the boundary: read = 0, refit the slope alone
            read, shot = 0.0, float(swxy / swxx)
        weights = 1.0 / (shot * x + read + q).clamp_min(1e-12) ** 2
    return max(shot, 0.0), read


def estimate_noise_levels(sites: RawSites, margin: float, min_sites: int, passes: int = 3) -> tuple[float, float, int]:
    """(shot, read, number of sites used) of one pair; nan levels when fewer than `min_sites`
    sites are usable. The first pass keeps every site inside the clipping bounds; later passes
    apply the margin at the level just fitted."""
    estimate = (0.0, 0.0)
    for _ in range(passes):
        keep = sites.valid(*estimate, margin)
        if int(keep.sum()) < min_sites:
            return math.nan, math.nan, int(keep.sum())
        estimate = fit_noise_levels(sites.x[keep], sites.d[keep], sites.q[keep])
    return estimate[0], estimate[1], int(keep.sum())


class CameraFitted(NoiseModel):
    """Unprocessing at the published camera's centre with the noise levels fitted on pairs.

    The fit models, over training images, log shot ~ N(log_shot_mean, log_shot_std^2) and
    log read = read_log_mean + read_slope (log shot - log_shot_mean) + N(0, read_log_std^2)
    (the family of the published draws, with fitted parameters). mode "lognormal" draws a
    level per generated image from it; mode "fixed" uses its median, shot = exp(log_shot_mean)
    and read = exp(read_log_mean), for every image (on data from one camera at one ISO the
    two coincide). Parameters can be given to the constructor to sample without fitting
    (`shot`/`read`, when given, set the median level); `CameraFitted(**m.params())` rebuilds
    a fitted model.
    """

    name = "camera_fitted"
    fitted_params = ("shot", "read", "log_shot_mean", "log_shot_std", "read_log_mean", "read_slope", "read_log_std")

    def __init__(
        self,
        mode: str = "lognormal",
        camera: dict[str, float] | None = None,
        red_gain: float = 2.15,
        blue_gain: float = 1.7,
        brightness: float = 1.25,
        demosaic: str = "malvar",
        jpeg_quality: int | None = None,
        jpeg_subsampling: str = "4:2:0",
        margin: float = 2.0,
        min_sites: int = 500,
        read_floor: float = 1e-8,
        min_log_shot_spread: float = 0.1,
        log_shot_mean: float | None = None,
        log_shot_std: float = 0.0,
        read_log_mean: float | None = None,
        read_slope: float = 0.0,
        read_log_std: float = 0.0,
        n_images: int = 0,
        n_sites: int = 0,
        shot: float | None = None,
        read: float | None = None,
    ):
        if mode not in ("lognormal", "fixed"):
            raise ValueError(f"camera_fitted: mode must be 'lognormal' or 'fixed', got '{mode}'")
        self.mode = mode
        self.camera = dict(camera) if camera is not None else {name: 1.0 for name in BROOKS_CAMERAS}
        self.isp_settings = {"red_gain": float(red_gain), "blue_gain": float(blue_gain), "brightness": float(brightness), "demosaic": demosaic}
        self.jpeg_quality = jpeg_quality
        self.jpeg_subsampling = jpeg_subsampling
        self.margin, self.min_sites, self.read_floor = float(margin), int(min_sites), float(read_floor)
        self.min_log_shot_spread = float(min_log_shot_spread)
        # shot / read given directly are the median level (fixed mode, or a distribution of zero spread)
        self.log_shot_mean = math.log(shot) if shot is not None else (None if log_shot_mean is None else float(log_shot_mean))
        self.read_log_mean = math.log(read) if read is not None else (None if read_log_mean is None else float(read_log_mean))
        self.log_shot_std, self.read_slope, self.read_log_std = float(log_shot_std), float(read_slope), float(read_log_std)
        self.n_images, self.n_sites = int(n_images), int(n_sites)
        self.isp()  # validates the ISP settings

    def isp(self, shot: float = 0.0, read: float = 0.0) -> CameraParams:
        """The model's camera at the given noise levels."""
        return CameraParams.for_camera(self.camera, shot=shot, read=read, **self.isp_settings)

    @property
    def shot(self) -> float | None:
        return None if self.log_shot_mean is None else math.exp(self.log_shot_mean)

    @property
    def read(self) -> float | None:
        return None if self.read_log_mean is None else math.exp(self.read_log_mean)

    def fit(self, pairs: TrainPairs) -> "CameraFitted":
        if len(pairs) == 0:
            raise DataError("camera_fitted: no training pairs to fit")
        camera = self.isp()
        for index, (clean, noisy) in enumerate(pairs):
            if clean.shape != noisy.shape:
                raise DataError(f"camera_fitted: pair {index}: clean {clean.shape} and noisy {noisy.shape} differ in size")
        per_image = [estimate_noise_levels(RawSites(clean, noisy, camera), self.margin, self.min_sites) for clean, noisy in pairs]
        usable = [(shot, read, used) for shot, read, used in per_image if not math.isnan(shot) and shot > 0]
        levels = np.array([(shot, read) for shot, read, _ in usable])
        if len(levels) == 0:
            most = max(used for _, _, used in per_image)
            raise DataError(f"camera_fitted: no pair has {self.min_sites} unclipped Bayer sites to fit its noise level (best: {most})")
        self.n_images, self.n_sites = len(levels), sum(used for _, _, used in usable)
        log_shot = np.log(levels[:, 0])
        self.log_shot_mean, self.log_shot_std = float(log_shot.mean()), float(log_shot.std())
        identified = levels[:, 1] > self.read_floor  # reads at the boundary 0 carry no level to take a log of
        if not identified.any():
            self.read_log_mean, self.read_slope, self.read_log_std = math.log(self.read_floor), 0.0, 0.0
            return self
        x, y = log_shot[identified] - self.log_shot_mean, np.log(levels[identified, 1])
        # a slope only where the shot levels spread enough to show one
        self.read_slope = float(np.polyfit(x, y, 1)[0]) if len(x) >= 3 and x.std() >= self.min_log_shot_spread else 0.0
        self.read_log_mean = float(y.mean() - self.read_slope * x.mean())
        self.read_log_std = float((y - self.read_log_mean - self.read_slope * x).std())
        return self

    def draw_levels(self, generator: torch.Generator) -> tuple[float, float]:
        """The (shot, read) of one generated image."""
        if self.log_shot_mean is None or self.read_log_mean is None:
            raise ValueError("camera_fitted: not fitted; call fit(pairs) or pass shot and read to the constructor")
        if self.mode == "fixed":
            return self.shot, self.read
        z_shot, z_read = torch.randn(2, generator=generator, device=generator.device).tolist()
        offset = self.log_shot_std * z_shot
        log_read = self.read_log_mean + self.read_slope * offset + self.read_log_std * z_read
        return math.exp(self.log_shot_mean + offset), math.exp(log_read)

    def _sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = []
        for image in clean.split(1):
            sample = add_camera_noise(image, self.isp(*self.draw_levels(generator)), generator)
            if self.jpeg_quality is not None:
                sample = _apply_jpeg(image, sample, self.jpeg_quality, self.jpeg_subsampling)
            noisy.append(sample)
        return torch.cat(noisy)

    def params(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "camera": dict(self.camera), **self.isp_settings,
            "jpeg_quality": self.jpeg_quality, "jpeg_subsampling": self.jpeg_subsampling,
            "margin": self.margin, "min_sites": self.min_sites, "read_floor": self.read_floor,
            "min_log_shot_spread": self.min_log_shot_spread, "shot": self.shot, "read": self.read,
            "log_shot_mean": self.log_shot_mean, "log_shot_std": self.log_shot_std,
            "read_log_mean": self.read_log_mean, "read_slope": self.read_slope, "read_log_std": self.read_log_std,
            "n_images": self.n_images, "n_sites": self.n_sites,
        }
