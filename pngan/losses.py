"""PNGAN's losses (METHOD.md section 1.3-1.6), all with mean reductions.

The third-party re-implementation summed its losses, which breaks the scale of the paper's
weights (lambda_p = 6e-3, lambda_Ra = 8e-4); every loss here is a mean.

Pixel-level relativistic average GAN (Cai et al. 2021, Eq. 9-11; Jolicoeur-Martineau 2019):
with C the discriminator's logit map (B, 1, H, W),

    D_Ra(a, b) = sigmoid(C(a) - mean(C(b)))
    L_D = -E log D_Ra(y_r, y_f) - E log(1 - D_Ra(y_f, y_r))
    L_G = -E log(1 - D_Ra(y_r, y_f)) - E log D_Ra(y_f, y_r)

computed from logits as softplus terms (-log sigmoid(z) = softplus(-z)), which stays finite for
any logit magnitude.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

RaMean = Literal["batch_space", "batch"]
FeatureNorm = Literal["channel", "none"]


def _relativistic_mean(logits: torch.Tensor, mean_over: RaMean) -> torch.Tensor:
    """mean(C(b)): over batch and space (a scalar) or, per pixel, over the batch only."""
    if logits.ndim != 4:
        raise ValueError(f"expected a (B, 1, H, W) logit map, got shape {tuple(logits.shape)}")
    if mean_over == "batch_space":
        return logits.mean()
    if mean_over == "batch":
        return logits.mean(dim=0, keepdim=True)
    raise ValueError(f"mean_over must be 'batch_space' or 'batch', got '{mean_over}'")


def _relativistic_logits(c_real: torch.Tensor, c_fake: torch.Tensor, mean_over: RaMean) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of D_Ra(y_r, y_f) and D_Ra(y_f, y_r), in float32 whatever the autocast dtype."""
    if c_real.shape != c_fake.shape:
        raise ValueError(f"real and fake logit maps differ in shape: {tuple(c_real.shape)} vs {tuple(c_fake.shape)}")
    c_real, c_fake = c_real.float(), c_fake.float()
    return c_real - _relativistic_mean(c_fake, mean_over), c_fake - _relativistic_mean(c_real, mean_over)


def relativistic_d_loss(c_real: torch.Tensor, c_fake: torch.Tensor, mean_over: RaMean = "batch_space") -> torch.Tensor:
    """L_D = -E log D_Ra(y_r, y_f) - E log(1 - D_Ra(y_f, y_r)) from logit maps (B, 1, H, W)."""
    real_vs_fake, fake_vs_real = _relativistic_logits(c_real, c_fake, mean_over)
    return F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean()


def relativistic_g_loss(c_real: torch.Tensor, c_fake: torch.Tensor, mean_over: RaMean = "batch_space") -> torch.Tensor:
    """L_G = -E log(1 - D_Ra(y_r, y_f)) - E log D_Ra(y_f, y_r) from logit maps (B, 1, H, W)."""
    real_vs_fake, fake_vs_real = _relativistic_logits(c_real, c_fake, mean_over)
    return F.softplus(real_vs_fake).mean() + F.softplus(-fake_vs_real).mean()


QUANTIZATION_VARIANCE = (1.0 / 255.0) ** 2 / 12.0  # of rounding to 8 bit: real noise is never below it


def level_nll(noise: torch.Tensor, std: torch.Tensor, floor: float = QUANTIZATION_VARIANCE,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (constants dropped) of real `noise` under a per-pixel
    noise std: mean(n^2 / v + log v), v = std^2 + floor. Per pixel it is least at v = E[n^2]
    (a proper scoring rule: the fitted level is the noise's own variance, neither shrunk nor
    inflated); the noise-aware generator's colour gain is trained by it alone. `weight` (B,):
    each image's weight in the mean (0 leaves it out; all 0 gives 0, still a function of `std`)."""
    variance = std.float().square() + floor
    terms = noise.float().square() / variance + variance.log()
    if weight is None:
        return terms.mean()
    weight = weight.to(terms).flatten()
    if weight.numel() != terms.shape[0]:
        raise ValueError(f"level_nll: one weight per image needed, got {weight.numel()} for {terms.shape[0]} images")
    return (terms.flatten(1).mean(dim=1) * weight).sum() / weight.sum().clamp_min(1.0)


def alignment_l1(dd_real: torch.Tensor, dd_fake: torch.Tensor) -> torch.Tensor:
    """Image-domain alignment L_1 = mean |D_d(y_r) - D_d(y_f)|."""
    return F.l1_loss(dd_fake.float(), dd_real.float())


def channel_scale(feat_real: torch.Tensor, feat_fake: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """Per-channel std (1, C, 1, 1) of the real and fake features together, detached.

    Pooling both keeps the scale finite where a channel is dead in one of them; channels dead in
    both are floored at `floor` times the mean channel std (their difference is zero anyway).
    """
    both = torch.cat([feat_real.detach(), feat_fake.detach()]).float()
    std = both.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return torch.maximum(std, floor * std.mean() + 1e-12)  # a tensor floor: no host sync


def perceptual(feat_real: torch.Tensor, feat_fake: torch.Tensor, normalize: FeatureNorm = "channel") -> torch.Tensor:
    """L_p = mean |phi(D_d(y_r)) - phi(D_d(y_f))|^2.

    normalize='channel' divides each channel by its std (`channel_scale`): raw deep features of a
    denoiser are tiny next to image intensities, which made the weighted term ~700x smaller than
    L1 (METHOD.md section 6); unit-scale channels give lambda_p a term of comparable size.
    """
    if feat_real.shape != feat_fake.shape:
        raise ValueError(f"feature maps differ in shape: {tuple(feat_real.shape)} vs {tuple(feat_fake.shape)}")
    diff = feat_fake.float() - feat_real.float()
    if normalize == "channel":
        return (diff / channel_scale(feat_real, feat_fake)).square().mean()
    if normalize == "none":
        return diff.square().mean()
    raise ValueError(f"normalize must be 'channel' or 'none', got '{normalize}'")


class DenoiserFeatures:
    """The frozen denoiser's output together with one inner feature map, in one forward pass.

    A forward hook on the module named `layer` captures its output while D_d denoises, so the
    denoiser's own deep features stand in for phi(D_d(y)) without a second network. `layer='auto'`
    picks the deepest full-resolution feature map (see `auto_feature_layer`).
    """

    def __init__(self, denoiser: nn.Module, layer: str = "auto"):
        self.denoiser = denoiser
        self.layer = auto_feature_layer(denoiser) if layer == "auto" else layer
        modules = dict(denoiser.named_modules())
        if self.layer not in modules:
            raise ValueError(
                f"perceptual_layer '{self.layer}' is not a module of {type(denoiser).__name__}; "
                f"modules: {', '.join(n for n in modules if n)}"
            )
        self._captured: torch.Tensor | None = None
        modules[self.layer].register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs, output) -> None:
        self._captured = output

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._captured = None
        out = self.denoiser(image)
        feat, self._captured = self._captured, None
        if not isinstance(feat, torch.Tensor):
            raise RuntimeError(f"perceptual_layer '{self.layer}' produced no tensor output during the denoiser's forward")
        return out, feat


def auto_feature_layer(denoiser: nn.Module, probe_size: int = 32) -> str:
    """Name of the module whose output, in one probe forward pass, is the last full-resolution
    feature map with more than 3 channels (e.g. RIDNet's last EAM block, DnCNN's last ReLU)."""
    param = next(denoiser.parameters(), None)
    probe = torch.rand(1, 3, probe_size, probe_size, device=param.device if param is not None else "cpu")
    finished: list[str] = []

    def record(name: str):
        def hook(module, inputs, output) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[1] > 3 and output.shape[-2:] == probe.shape[-2:]:
                finished.append(name)

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in denoiser.named_modules() if n]
    was_training = denoiser.training
    try:
        with torch.no_grad():
            denoiser.eval()(probe)  # eval: the probe must not touch batch-norm statistics
    finally:
        denoiser.train(was_training)
        for h in handles:
            h.remove()
    if not finished:
        raise ValueError(f"{type(denoiser).__name__} has no module with a full-resolution feature map of more than 3 channels; set perceptual_layer")
    return finished[-1]
