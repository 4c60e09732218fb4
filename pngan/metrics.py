"""Noise and image metrics, exactly as METHOD.md section 2 defines them.

Noise realism: `akld` (DANet's average KL divergence between local Gaussian noise models) and
`kld_histogram` (KL divergence between noise histograms). Image quality: `psnr`, `ssim_rgb`,
`ssim_y`. Images are (B, C, H, W) float tensors in [0, 1]; the noise metrics accept L generator
draws of the fake image as (L, B, C, H, W). AKLD, KLD and PSNR are batched torch code that runs
on any device without host-device synchronisation; SSIM goes through scikit-image on the CPU.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

# cv2.getGaussianKernel(n, sigma <= 0) returns this fixed table for odd n <= 7 instead of a sampled
# Gaussian (opencv modules/imgproc/src/smooth.dispatch.cpp, `small_gaussian_tab`). DANet's AKLD code
# (zsyOAOA/DANet utils.py, commit 07349e1) calls cv2.getGaussianKernel(7, sigma=-1), so published
# AKLD numbers used the size-7 row; `sigma <= 0` selects it here.
_OPENCV_SMALL_GAUSSIAN = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}

# MATLAB rgb2ycbcr luma row (ITU-R BT.601, studio range) for R, G, B in [0, 1] -> Y in [16, 235].
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

# Chunk budget of `akld` / `kld_histogram` in elements of one (draws, images, C, H, W) piece. CPU:
# pieces of 4 MiB (five 256 x 256 RGB images) keep the ~25 passes in cache. Measured on 2 cores:
# pieces of one image were about as fast on one thread, but on two threads of a loaded machine up to
# 10x slower (one OpenMP barrier per pass, four times as many passes). GPU: large pieces amortise
# kernel launches within bounded memory.
CHUNK_ELEMENTS = {"cpu": 2**20, "cuda": 2**25}


def gaussian_taps(size: int = 7, sigma: float = 1.4) -> torch.Tensor:
    """1-D Gaussian window (float64, sums to 1).

    `sigma <= 0` follows cv2.getGaussianKernel(size, sigma): OpenCV's fixed table for odd
    size <= 7, otherwise sigma = 0.3 ((size - 1) / 2 - 1) + 0.8.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")
    if sigma <= 0 and size in _OPENCV_SMALL_GAUSSIAN:
        taps = torch.tensor(_OPENCV_SMALL_GAUSSIAN[size], dtype=torch.float64)
    else:
        if sigma <= 0:
            sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
        x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        taps = torch.exp(-(x**2) / (2 * sigma**2))
    return taps / taps.sum()


def gaussian_kernel(size: int = 7, sigma: float = 1.4) -> torch.Tensor:
    """2-D Gaussian window (size, size), float64, normalised to sum 1 (outer product of the taps)."""
    taps = gaussian_taps(size, sigma)
    return torch.outer(taps, taps)


@functools.lru_cache(maxsize=16)
def _taps_tuple(size: int, sigma: float) -> tuple[float, ...]:
    return tuple(gaussian_taps(size, sigma).tolist())


def _correlate1d(x: torch.Tensor, taps: tuple[float, ...], dim: int, size: int) -> torch.Tensor:
    """Valid 1-D correlation along `dim` as a sum of shifted views: on the CPU this was 8x faster
    than conv2d with 1 x k and k x 1 kernels (and 5x faster than one k x k conv2d), measured on
    150 planes of 256 x 256 on 2 cores."""
    out = x.narrow(dim, 0, size) * taps[0]
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, size), alpha=taps[k])
    return out


def local_variance(
    noise: torch.Tensor, kernel_size: int = 7, sigma: float = 1.4, eps: float = 1e-10
) -> torch.Tensor:
    """Local noise energy max(G * n^2, eps) per channel, (..., H, W) -> same shape.

    G is the normalised `kernel_size` Gaussian window, applied separably with reflect padding in
    torch's sense (edge pixel not repeated; SciPy's 'mirror'). The local mean is not subtracted
    (DANet's estimator: the noise is assumed zero-mean).
    """
    return _smooth_energy(noise.square(), kernel_size, sigma, eps)


def _smooth_energy(energy: torch.Tensor, kernel_size: int, sigma: float, eps: float) -> torch.Tensor:
    """`local_variance` of already squared noise."""
    if energy.ndim < 2:
        raise ValueError(f"local_variance: expected (..., H, W), got shape {tuple(energy.shape)}")
    height, width = energy.shape[-2:]
    pad = kernel_size // 2
    if min(height, width) <= pad:
        raise ValueError(
            f"local_variance: images must be larger than {pad} pixels per side for reflect padding, "
            f"got shape {tuple(energy.shape)}"
        )
    taps = _taps_tuple(kernel_size, sigma)
    padded = F.pad(energy.reshape(-1, 1, height, width), (pad, pad, pad, pad), mode="reflect")
    rows = _correlate1d(padded, taps, dim=-1, size=width)
    smooth = _correlate1d(rows, taps, dim=-2, size=height)
    return smooth.clamp_(min=eps).reshape(energy.shape)


def _gauss_kl(v_fake: torch.Tensor, v_real: torch.Tensor, clip: tuple[float, float]) -> torch.Tensor:
    """KL between zero-mean Gaussians with variance ratio r = clip(v_fake / v_real): 0.5 (r - 1 - ln r)."""
    ratio = (v_fake / v_real).clamp(clip[0], clip[1])
    return 0.5 * (ratio - ratio.log() - 1.0)


def _check_images(fn: str, clean: torch.Tensor, real_noisy: torch.Tensor, fake_noisy: torch.Tensor) -> None:
    if clean.ndim != 4:
        raise ValueError(f"{fn}: clean must be (B, C, H, W), got shape {tuple(clean.shape)}")
    if real_noisy.shape != clean.shape:
        raise ValueError(
            f"{fn}: real_noisy shape {tuple(real_noisy.shape)} does not match clean shape {tuple(clean.shape)}"
        )
    if fake_noisy.ndim not in (4, 5) or fake_noisy.shape[-4:] != clean.shape:
        raise ValueError(
            f"{fn}: fake_noisy shape {tuple(fake_noisy.shape)} must be clean's shape {tuple(clean.shape)} "
            f"or (L, {', '.join(map(str, clean.shape))}) for L draws"
        )


def _prepare_fake(fake_noisy: torch.Tensor, quantize_fake: bool) -> torch.Tensor:
    """METHOD.md: generated images are clamped to [0, 1], and by default rounded to 8 bit like real
    data (the levels of pngan.noise.base.quantize, computed in place on the clamped copy)."""
    fake = fake_noisy.clamp(0.0, 1.0)
    return fake.mul_(255.0).round_().div_(255.0) if quantize_fake else fake


def _as_draws(fake_noisy: torch.Tensor) -> torch.Tensor:
    return fake_noisy if fake_noisy.ndim == 5 else fake_noisy.unsqueeze(0)


def _chunks(draws: torch.Tensor, max_chunk_elements: int | None):
    """(draw slice, image slice) pairs that cover (L, B, ...) draws in pieces of about
    `max_chunk_elements` elements (at least one image of one draw each)."""
    if max_chunk_elements is None:
        max_chunk_elements = CHUNK_ELEMENTS.get(draws.device.type, CHUNK_ELEMENTS["cpu"])
    n_draws, batch, per_image = draws.shape[0], draws.shape[1], draws[0, 0].numel()
    images = max(1, min(batch, max_chunk_elements // per_image))
    draws_per_chunk = max(1, max_chunk_elements // (images * per_image))
    for b0 in range(0, batch, images):
        for l0 in range(0, n_draws, draws_per_chunk):
            yield slice(l0, l0 + draws_per_chunk), slice(b0, b0 + images)


def akld_map(
    clean: torch.Tensor,
    real_noisy: torch.Tensor,
    fake_noisy: torch.Tensor,
    clip: tuple[float, float] = (0.1, 10.0),
    kernel_size: int = 7,
    sigma: float = 1.4,
    eps: float = 1e-10,
) -> torch.Tensor:
    """Per-pixel, per-channel KL map 0.5 (r - 1 - ln r), r = clip(V_fake / V_real), (B, C, H, W).

    The images are used as given (no clamping or rounding); `akld` applies the fake-image protocol.
    """
    _check_images("akld_map", clean, real_noisy, fake_noisy)
    if fake_noisy.ndim != 4:
        raise ValueError(f"akld_map: fake_noisy must be (B, C, H, W), got shape {tuple(fake_noisy.shape)}")
    v_real = local_variance(real_noisy - clean, kernel_size, sigma, eps)
    v_fake = local_variance(fake_noisy - clean, kernel_size, sigma, eps)
    return _gauss_kl(v_fake, v_real, clip)


@torch.no_grad()
def akld(
    clean: torch.Tensor,
    real_noisy: torch.Tensor,
    fake_noisy: torch.Tensor,
    clip: tuple[float, float] = (0.1, 10.0),
    kernel_size: int = 7,
    sigma: float = 1.4,
    eps: float = 1e-10,
    quantize_fake: bool = True,
    max_chunk_elements: int | None = None,
) -> torch.Tensor:
    """Per-image AKLD (B,): the `akld_map` mean over pixels and channels, then over draws.

    `fake_noisy` is (B, C, H, W) or (L, B, C, H, W) for L generator draws (DANet uses L = 50),
    processed in chunks of about `max_chunk_elements` elements (default: `CHUNK_ELEMENTS` of the
    device type). The fake is clamped to [0, 1] and, when `quantize_fake`, rounded to 8-bit levels
    first. The window is METHOD.md's sampled Gaussian (sigma 1.4); `sigma=-1` gives the window that
    DANet's code really used, OpenCV's fixed 7-tap table (see `gaussian_taps`): about 2 % apart.
    """
    _check_images("akld", clean, real_noisy, fake_noisy)
    draws = _as_draws(fake_noisy)
    v_real = local_variance(real_noisy - clean, kernel_size, sigma, eps)
    total = torch.zeros(clean.shape[0], dtype=v_real.dtype, device=v_real.device)
    for drawn, imgs in _chunks(draws, max_chunk_elements):
        energy = _prepare_fake(draws[drawn, imgs], quantize_fake).sub_(clean[imgs]).square_()
        # _gauss_kl in place and without the factor 0.5, applied once at the end (no autograd here)
        ratio = _smooth_energy(energy, kernel_size, sigma, eps).div_(v_real[imgs]).clamp_(*clip)
        total[imgs] += ratio.sub_(ratio.log()).sub_(1.0).mean(dim=(-3, -2, -1)).sum(dim=0)
    return total * (0.5 / draws.shape[0])


def _histogram_edges(bins: int, limit: float, device: torch.device) -> torch.Tensor:
    # i * (2 limit / bins) - limit puts the middle edge exactly at 0.0, where 8-bit noise sits.
    step = 2.0 * limit / bins
    return torch.arange(bins + 1, dtype=torch.float64, device=device) * step - limit


def _noise_histograms(noise: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(N, ...) noise -> (N, len(edges) + 1) counts, all channels pooled.

    Bin 0 holds n < edges[0], bin j holds edges[j-1] <= n < edges[j], the last bin n >= edges[-1]
    (the binning of NoiseFlow's KLD: inner bins [a, b), overflow bins on both sides).
    """
    index = torch.bucketize(noise.reshape(noise.shape[0], -1).double(), edges, right=True)
    counts = torch.zeros(noise.shape[0], edges.numel() + 1, dtype=torch.float64, device=noise.device)
    return counts.scatter_add_(1, index, torch.ones(1, dtype=torch.float64, device=noise.device).expand_as(index))


def _histogram_kl(p_counts: torch.Tensor, q_counts: torch.Tensor, eps: float) -> torch.Tensor:
    p = p_counts / p_counts.sum(dim=-1, keepdim=True) + eps
    q = q_counts / q_counts.sum(dim=-1, keepdim=True) + eps
    return (p * (p / q).log()).sum(dim=-1)


@torch.no_grad()
def kld_histogram(
    clean: torch.Tensor,
    real_noisy: torch.Tensor,
    fake_noisy: torch.Tensor,
    bins: int = 64,
    limit: float = 0.1,
    eps: float = 1e-12,
    quantize_fake: bool = True,
    max_chunk_elements: int | None = None,
) -> torch.Tensor:
    """Per-image histogram KL(real || fake) of the noise y - x, (B,) float64.

    `bins` equal bins on [-limit, limit] plus one overflow bin each side, the channels pooled,
    each histogram normalised to sum 1 and then `eps` added to every bin. The fake is clamped
    (and, when `quantize_fake`, rounded to 8 bit) first. For (L, B, C, H, W) draws: the mean of
    the per-draw KLs. Never report it without AKLD: it ignores spatial structure.
    """
    _check_images("kld_histogram", clean, real_noisy, fake_noisy)
    draws = _as_draws(fake_noisy)
    edges = _histogram_edges(bins, limit, clean.device)
    p_counts = _noise_histograms(real_noisy - clean, edges)
    total = torch.zeros(clean.shape[0], dtype=torch.float64, device=clean.device)
    for drawn, imgs in _chunks(draws, max_chunk_elements):
        fake = _prepare_fake(draws[drawn, imgs], quantize_fake)
        q_counts = _noise_histograms((fake - clean[imgs]).flatten(0, 1), edges).view(*fake.shape[:2], -1)
        total[imgs] += _histogram_kl(p_counts[imgs], q_counts, eps).sum(dim=0)
    return total / draws.shape[0]


def _check_pair(fn: str, x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{fn}: expected (B, 3, H, W) images, got shape {tuple(x.shape)}")
    if y.shape != x.shape:
        raise ValueError(f"{fn}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image RGB PSNR in dB (B,), float64: both clamped to [0, data_range], MSE over pixels and
    channels (inf for identical images)."""
    _check_pair("psnr", x, y)
    diff = x.double().clamp(0.0, data_range) - y.double().clamp(0.0, data_range)
    mse = diff.square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """MATLAB rgb2ycbcr luma on the 0-255 scale, (B, 3, H, W) in [0, 1] -> (B, 1, H, W) in [16, 235]."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"rgb_to_y: expected (B, 3, H, W) images, got shape {tuple(img.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * weights).sum(dim=1, keepdim=True) + _Y_OFFSET


def _to_numpy(img: torch.Tensor) -> np.ndarray:
    return img.detach().to("cpu", torch.float64).numpy()


def _skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """scikit-image SSIM, 11 x 11 Gaussian window sigma 1.5 (truncate 3.5 -> radius 5), population
    covariances (Wang et al. 2004), channels first and averaged."""
    return float(
        structural_similarity(
            x, y, channel_axis=0, data_range=data_range,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
    )


def ssim_rgb(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM protocol (a): RGB in [0, 1] (clamped), per channel, mean over channels (B,)."""
    _check_pair("ssim_rgb", x, y)
    xs, ys = _to_numpy(x.clamp(0.0, 1.0)), _to_numpy(y.clamp(0.0, 1.0))
    return torch.tensor([_skimage_ssim(a, b, 1.0) for a, b in zip(xs, ys)], dtype=torch.float64)


def ssim_y(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM protocol (b), the PNGAN authors' test code: MATLAB-style Y on the 0-255 scale (B,)."""
    _check_pair("ssim_y", x, y)
    xs, ys = _to_numpy(rgb_to_y(x.clamp(0.0, 1.0))), _to_numpy(rgb_to_y(y.clamp(0.0, 1.0)))
    return torch.tensor([_skimage_ssim(a, b, 255.0) for a, b in zip(xs, ys)], dtype=torch.float64)


def image_metrics(clean: torch.Tensor, denoised: torch.Tensor) -> dict[str, list[float]]:
    """Per-image PSNR (dB), SSIM (RGB) and SSIM (Y) of `denoised` against `clean`."""
    return {
        "psnr": psnr(denoised, clean).tolist(),
        "ssim_rgb": ssim_rgb(denoised, clean).tolist(),
        "ssim_y": ssim_y(denoised, clean).tolist(),
    }
