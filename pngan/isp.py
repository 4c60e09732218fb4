"""A differentiable camera pipeline and its inverse (Brooks et al. 2019, "Unprocessing images
for learned raw denoising", CVPR), in torch on (B, 3, H, W) float32 tensors on any device.

Forward (`process`): white balance and brightening -> colour correction (camera -> linear sRGB)
-> gamma 2.2 -> smoothstep tone curve. `unprocess` inverts each step in reverse order, with
the highlight-preserving inverse gains of the paper. Noise lives in the raw (RGGB mosaic)
domain: heteroscedastic Gaussian with variance `shot * x + read` (the paper's approximation of
Poisson-Gaussian sensor noise), then white balance, demosaicking and the rest of the ISP.

`add_camera_noise` treats the given clean image as the camera's noise-free rendering: it
renders the noisy raw and the noise-free raw with the same ISP and adds their difference to
the clean image. Demosaicking is linear, so only the noise is demosaicked: the clean image
keeps its own detail and a noise-free draw returns the input exactly, while the noise carries
the spatial and cross-channel correlation the ISP gives it. Constants from the paper's code:
google-research/google-research@0c1bbe5fc971a1de1a427debc814e66ab4f1e7fa, unprocessing/.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# XYZ (D65) -> camera matrices (Adobe DNG ColorMatrix, rows = camera R, G, B), as facts.
# "brooks_1".."brooks_4": the four matrices of unprocess.py (cameras not named there);
# the named ones: dcraw.c rev. 1.477 adobe_coeff() table (x 1e-4), Soreil/dcraw@af4985e0.
XYZ_TO_CAMERA: dict[str, tuple[tuple[float, float, float], ...]] = {
    "brooks_1": ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    "brooks_2": ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    "brooks_3": ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    "brooks_4": ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
    "canon_eos_5d_mark_ii": ((0.4716, 0.0603, -0.0830), (-0.7798, 1.5474, 0.2480), (-0.1496, 0.1937, 0.6651)),
    "canon_eos_5d_mark_iii": ((0.6722, -0.0635, -0.0963), (-0.4287, 1.2460, 0.2028), (-0.0908, 0.2162, 0.5668)),
    "nikon_d800": ((0.7866, -0.2108, -0.0555), (-0.4869, 1.2483, 0.2681), (-0.1176, 0.2069, 0.7501)),
}
BROOKS_CAMERAS = ("brooks_1", "brooks_2", "brooks_3", "brooks_4")

# linear sRGB (D65) -> XYZ, as in unprocess.py
SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))

# Published ranges of the random draws (unprocess.py: random_gains, random_noise_levels)
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
BRIGHTNESS_MEAN, BRIGHTNESS_STD = 0.8, 0.1  # rgb_gain = 1 / N(0.8, 0.1)
SHOT_RANGE = (1e-4, 0.012)  # log-uniform
READ_SLOPE, READ_INTERCEPT, READ_LOG_STD = 2.18, 1.20, 0.26  # log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26^2)

DEMOSAIC_METHODS = ("bilinear", "malvar")
SAFE_GAIN_INFLECTION = 0.9  # grey level above which the safe inverse gains fade to 1 (unprocess.py)
Matrix = tuple[tuple[float, float, float], ...]


def mix_cameras(weights: Mapping[str, float]) -> Matrix:
    """Convex combination of XYZ_TO_CAMERA matrices (how the paper draws a random camera)."""
    unknown = [name for name in weights if name not in XYZ_TO_CAMERA]
    if unknown:
        raise ValueError(f"unknown camera {', '.join(unknown)}; known: {', '.join(XYZ_TO_CAMERA)}")
    if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
        raise ValueError(f"camera weights must be non-negative and not all zero, got {dict(weights)}")
    total = sum(weights.values())
    mixed = sum(w / total * np.asarray(XYZ_TO_CAMERA[name], dtype=np.float64) for name, w in weights.items())
    return tuple(tuple(float(v) for v in row) for row in mixed)


def rgb_to_camera_matrix(xyz_to_camera: Matrix) -> Matrix:
    """linear sRGB -> camera matrix, rows normalised to sum 1 so that white stays white."""
    m = np.asarray(xyz_to_camera, dtype=np.float64) @ np.asarray(SRGB_TO_XYZ, dtype=np.float64)
    m = m / m.sum(axis=1, keepdims=True)
    return tuple(tuple(float(v) for v in row) for row in m)


@dataclass(frozen=True)
class CameraParams:
    """Everything that fixes one camera rendering: colour, white balance, brightness, noise.

    `rgb2cam` maps linear sRGB to camera RGB (rows sum to 1); `brightness` is the paper's
    `rgb_gain` (the ISP brightens by it); `shot`/`read` set the raw noise variance
    `shot * x + read` on the [0, 1] raw scale; `demosaic` is "bilinear" or "malvar";
    `luma_sigma` / `chroma_sigma` (pixels, 0 = off) model in-camera noise reduction as
    Gaussian low-passes of the luma and chroma parts of the noise (see `add_camera_noise`).
    """

    rgb2cam: Matrix
    red_gain: float
    blue_gain: float
    brightness: float = 1.0
    shot: float = 0.0
    read: float = 0.0
    demosaic: str = "bilinear"
    luma_sigma: float = 0.0
    chroma_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic must be one of {DEMOSAIC_METHODS}, got '{self.demosaic}'")
        if min(self.red_gain, self.blue_gain, self.brightness) <= 0:
            raise ValueError(f"gains must be positive, got red {self.red_gain}, blue {self.blue_gain}, brightness {self.brightness}")
        if self.luma_sigma < 0 or self.chroma_sigma < 0:
            raise ValueError(f"noise-reduction sigmas must be >= 0, got luma {self.luma_sigma}, chroma {self.chroma_sigma}")
        if self.shot < 0 or self.read < 0:
            raise ValueError(f"noise levels must be >= 0, got shot {self.shot}, read {self.read}")

    @classmethod
    def for_camera(cls, camera: str | Mapping[str, float], **kwargs) -> "CameraParams":
        """Parameters with the colour matrix of a camera of XYZ_TO_CAMERA, or of a convex
        mix of several given as {name: weight}."""
        weights = {camera: 1.0} if isinstance(camera, str) else dict(camera)
        return cls(rgb2cam=rgb_to_camera_matrix(mix_cameras(weights)), **kwargs)


# ---- tone curve and gamma -------------------------------------------------------------------


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Global tone curve 3x^2 - 2x^3 on [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Exact inverse of `smoothstep` on [0, 1]: 0.5 - sin(asin(1 - 2x) / 3)."""
    x = x.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)


def gamma_compress(x: torch.Tensor, gamma: float = 2.2, eps: float = 1e-8) -> torch.Tensor:
    """Linear -> gamma space; the epsilon keeps gradients finite at 0."""
    return x.clamp_min(eps) ** (1.0 / gamma)


def gamma_expand(x: torch.Tensor, gamma: float = 2.2, eps: float = 1e-8) -> torch.Tensor:
    """Gamma -> linear space."""
    return x.clamp_min(eps) ** gamma


# ---- colour and white balance ---------------------------------------------------------------


def apply_ccm(image: torch.Tensor, ccm: torch.Tensor | Matrix) -> torch.Tensor:
    """Multiply every pixel's RGB vector by a 3x3 matrix."""
    ccm = torch.as_tensor(ccm, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,bjhw->bihw", ccm, image)


def _matrices(params: CameraParams, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rgb2cam = torch.tensor(params.rgb2cam, dtype=torch.float64)
    return rgb2cam.to(like), torch.linalg.inv(rgb2cam).to(like)


def _gain_vector(params: CameraParams, like: torch.Tensor) -> torch.Tensor:
    gains = torch.tensor([params.red_gain, 1.0, params.blue_gain], dtype=like.dtype, device=like.device)
    return (gains * params.brightness).view(1, 3, 1, 1)


def apply_gains(image: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """White balance (red, blue gains) and brightening, camera RGB -> white-balanced RGB."""
    return image * _gain_vector(params, image)


def safe_invert_gains(image: torch.Tensor, params: CameraParams, inflection: float = SAFE_GAIN_INFLECTION) -> torch.Tensor:
    """Inverse gains that fade to 1 near white (mean above `inflection`), so highlights stay
    saturated after the forward gains instead of turning grey."""
    gains = 1.0 / _gain_vector(params, image)
    gray = image.mean(dim=1, keepdim=True)
    mask = ((gray - inflection).clamp_min(0.0) / (1.0 - inflection)) ** 2
    return image * torch.maximum(mask + (1.0 - mask) * gains, gains)


# ---- Bayer mosaic ---------------------------------------------------------------------------


def bayer_masks(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(3, H, W) boolean masks of the red, green and blue sites of an RGGB mosaic."""
    rows = torch.arange(height, device=device).view(-1, 1) % 2
    cols = torch.arange(width, device=device).view(1, -1) % 2
    red = (rows == 0) & (cols == 0)
    blue = (rows == 1) & (cols == 1)
    return torch.stack([red, ~(red | blue), blue])


def mosaic(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) RGGB raw: each site keeps its own colour."""
    masks = bayer_masks(image.shape[-2], image.shape[-1], image.device).to(image.dtype)
    return (image * masks).sum(dim=1, keepdim=True)


def mosaic_gains(params: CameraParams, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) white-balance gain of every Bayer site."""
    return mosaic(_gain_vector(params, like).expand(1, 3, height, width))


def _kernel(rows: list[list[float]], scale: float) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64) / scale


# 5x5 interpolation kernels, one per case: green at red/blue sites; red (blue) at green sites
# whose same-colour neighbours are left/right ("row") or above/below ("col"); red at blue and
# blue at red sites ("diag").
_BILINEAR = {
    "green": _kernel([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], 4),
    "row": _kernel([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], 2),
    "diag": _kernel([[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], 4),
}
# Malvar, He, Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned
# color images", ICASSP 2004, Fig. 2 (gradient-corrected bilinear; the MATLAB `demosaic` method).
_MALVAR = {
    "green": _kernel([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], 8),
    "row": _kernel([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], 8),
    "diag": _kernel([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], 8),
}


def demosaic(raw: torch.Tensor, method: str = "bilinear") -> torch.Tensor:
    """(B, 1, H, W) RGGB raw -> (B, 3, H, W), bilinear or Malvar-He-Cutler.

    Mirror padding keeps the Bayer phase at the borders (it reflects by an even offset), so a
    constant-colour mosaic is reconstructed exactly everywhere. Needs H, W >= 3.
    """
    if method not in DEMOSAIC_METHODS:
        raise ValueError(f"demosaic method must be one of {DEMOSAIC_METHODS}, got '{method}'")
    if raw.ndim != 4 or raw.shape[1] != 1:
        raise ValueError(f"demosaic expects a (B, 1, H, W) mosaic, got {tuple(raw.shape)}")
    kernels = _BILINEAR if method == "bilinear" else _MALVAR
    stack = np.stack([kernels["green"], kernels["row"], kernels["row"].T, kernels["diag"]])
    weight = torch.as_tensor(stack, dtype=raw.dtype, device=raw.device).unsqueeze(1)
    green_at_rb, along_row, along_col, diagonal = F.conv2d(F.pad(raw, (2, 2, 2, 2), mode="reflect"), weight).unbind(1)
    height, width = raw.shape[-2:]
    rows = torch.arange(height, device=raw.device).view(-1, 1) % 2
    cols = torch.arange(width, device=raw.device).view(1, -1) % 2
    own = raw[:, 0]
    is_red, is_blue = (rows == 0) & (cols == 0), (rows == 1) & (cols == 1)
    green_in_red_row, green_in_blue_row = (rows == 0) & (cols == 1), (rows == 1) & (cols == 0)
    red = torch.where(is_red, own, torch.where(green_in_red_row, along_row, torch.where(green_in_blue_row, along_col, diagonal)))
    blue = torch.where(is_blue, own, torch.where(green_in_blue_row, along_row, torch.where(green_in_red_row, along_col, diagonal)))
    green = torch.where(is_red | is_blue, green_at_rb, own)
    return torch.stack([red, green, blue], dim=1)


def reduce_noise(noise: torch.Tensor, luma_sigma: float, chroma_sigma: float) -> torch.Tensor:
    """Low-pass the luma (channel mean) and chroma (the rest) of an RGB noise field separately.

    In-camera noise reduction smooths chroma much harder than luma, which is what makes
    camera-JPEG noise blotchy and strongly correlated across channels."""
    luma = noise.mean(dim=1, keepdim=True)
    return gaussian_blur(luma, luma_sigma) + gaussian_blur(noise - luma, chroma_sigma)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Depthwise separable Gaussian low-pass (radius ceil(3 sigma), mirror padding); sigma 0 is a no-op."""
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3.0 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image)
    channels = image.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    image = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
    return F.conv2d(F.pad(image, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)


# ---- noise ----------------------------------------------------------------------------------


def raw_noise(raw: torch.Tensor, shot: float, read: float, generator: torch.Generator) -> torch.Tensor:
    """Zero-mean sensor noise with variance `shot * max(raw, 0) + read` per site."""
    std = (raw.clamp_min(0.0) * shot + read).sqrt()
    return torch.randn(raw.shape, generator=generator, device=raw.device, dtype=raw.dtype) * std


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, device=generator.device))


def _normal(generator: torch.Generator, mean: float, std: float) -> float:
    return mean + std * float(torch.randn((), generator=generator, device=generator.device))


def random_noise_levels(generator: torch.Generator) -> tuple[float, float]:
    """(shot, read): shot log-uniform on SHOT_RANGE, log(read) on the published line + N(0, 0.26^2)."""
    log_shot = _uniform(generator, math.log(SHOT_RANGE[0]), math.log(SHOT_RANGE[1]))
    log_read = READ_SLOPE * log_shot + READ_INTERCEPT + _normal(generator, 0.0, READ_LOG_STD)
    return math.exp(log_shot), math.exp(log_read)


def random_rgb_to_camera(generator: torch.Generator) -> Matrix:
    """A random convex combination of the four published XYZ -> camera matrices, to sRGB -> camera."""
    weights = torch.rand(len(BROOKS_CAMERAS), generator=generator, device=generator.device).tolist()
    return rgb_to_camera_matrix(mix_cameras(dict(zip(BROOKS_CAMERAS, weights))))


def random_params(generator: torch.Generator, demosaic: str = "bilinear") -> CameraParams:
    """A draw of every camera parameter from the published distributions."""
    rgb2cam = random_rgb_to_camera(generator)
    brightness = 1.0 / max(_normal(generator, BRIGHTNESS_MEAN, BRIGHTNESS_STD), 1e-3)
    red = _uniform(generator, *RED_GAIN_RANGE)
    blue = _uniform(generator, *BLUE_GAIN_RANGE)
    shot, read = random_noise_levels(generator)
    return CameraParams(rgb2cam, red, blue, brightness, shot, read, demosaic)


# ---- the pipeline ---------------------------------------------------------------------------


def unprocess(rgb: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """sRGB (B, 3, H, W) in [0, 1] -> linear camera RGB before white balance, in [0, 1]."""
    rgb2cam, _ = _matrices(params, rgb)
    linear = gamma_expand(inverse_smoothstep(rgb))
    camera = apply_ccm(linear, rgb2cam)
    return safe_invert_gains(camera, params).clamp(0.0, 1.0)


def camera_to_linear_srgb(balanced: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """Colour correction of white-balanced camera RGB (no clipping)."""
    return apply_ccm(balanced, _matrices(params, balanced)[1])


def finish(linear: torch.Tensor) -> torch.Tensor:
    """Linear sRGB -> display sRGB: clip, gamma, tone curve."""
    return smoothstep(gamma_compress(linear.clamp(0.0, 1.0)))


def render(balanced: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """White-balanced camera RGB -> sRGB: clip, colour correction, clip, gamma, tone curve."""
    return finish(camera_to_linear_srgb(balanced.clamp(0.0, 1.0), params))


def process(camera: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """Linear camera RGB (as from `unprocess`) -> sRGB in [0, 1]."""
    return render(apply_gains(camera, params), params)


def add_camera_noise(clean: torch.Tensor, params: CameraParams, generator: torch.Generator) -> torch.Tensor:
    """Clean sRGB (B, 3, H, W) -> noisy sRGB through raw: unprocess, raw noise, ISP.

    The noise is the difference between the ISP renderings of the noisy and the noise-free
    raw; sensor clipping at 0 and 1 (after white balance) is applied per Bayer site before
    demosaicking. In-camera noise reduction (`luma_sigma`, `chroma_sigma`, in linear sRGB)
    is linear here, so like the demosaic it acts on the noise alone: the clean image stands
    for the filtered rendering.
    Not clipped or quantised: `pngan.noise.base.quantize` does that.
    """
    balanced = apply_gains(unprocess(clean, params), params)
    sites = mosaic(balanced)
    gains = mosaic_gains(params, *clean.shape[-2:], like=clean)
    noise = raw_noise(sites / gains, params.shot, params.read, generator) * gains
    site_noise = (sites + noise).clamp(0.0, 1.0) - sites.clamp(0.0, 1.0)
    linear = camera_to_linear_srgb(balanced.clamp(0.0, 1.0), params)
    noise = camera_to_linear_srgb(demosaic(site_noise, params.demosaic), params)
    noise = reduce_noise(noise, params.luma_sigma, params.chroma_sigma)
    return clean + finish(linear + noise) - finish(linear)


def jpeg_roundtrip(image: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """Encode an H x W x 3 uint8 image as JPEG at `quality` (1-100) and decode it again."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"jpeg_roundtrip expects an H x W x 3 uint8 array, got {image.shape} {image.dtype}")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality), subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()


def jpeg_noise(clean: np.ndarray, noisy: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """The in-camera JPEG applied to a noisy rendering and its clean reference alike: returns
    clean + JPEG(noisy) - JPEG(clean), clipped, uint8. Real JPEG pairs have both images
    compressed, so the codec shapes the noise without adding its error on the clean signal."""
    difference = jpeg_roundtrip(noisy, quality, subsampling).astype(np.int16) - jpeg_roundtrip(clean, quality, subsampling)
    return np.clip(clean.astype(np.int16) + difference, 0, 255).astype(np.uint8)
