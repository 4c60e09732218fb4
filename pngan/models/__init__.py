"""Networks: one file per architecture, built by registry name with `build(kind, **kwargs)`.

Modules are imported on first use, so importing `pngan.models` stays cheap.
"""

from __future__ import annotations

import torch.nn as nn

from pngan.registry import Registry

REGISTRY = Registry("network", {
    "smnet": "pngan.models.smnet:SMNet",  # PNGAN generator (paper)
    "simnet": "pngan.models.simnet:SIMNet",  # the generator the authors shipped
    "aware_generator": "pngan.models.aware:AwareGenerator",  # noise-aware: shapes noise a level map scales
    "pixel_discriminator": "pngan.models.discriminator:PixelDiscriminator",
    "ridnet": "pngan.models.ridnet:RIDNet",
    "dncnn": "pngan.models.dncnn:DnCNN",
    "mirnet": "pngan.models.mirnet:MIRNet",
    "mprnet": "pngan.models.mprnet:MPRNet",
    "vgg19": "pngan.models.vgg:VGG19Features",  # perceptual features from a local weights file
})


def build(kind: str, /, *, trusted: bool = False, **kwargs) -> nn.Module:
    """A network by registry name; a 'module:Class' path only from the user's own settings."""
    return REGISTRY.build(kind, kwargs, trusted)


def count_parameters(model: nn.Module) -> int:
    """All parameters (trainable or frozen), shared modules counted once."""
    return sum(p.numel() for p in model.parameters())


def final_output(output):
    """The restored image of a forward pass: a multi-stage network (MPRNet) returns a list of
    its stages' images, final stage first."""
    return output[0] if isinstance(output, (list, tuple)) else output
