"""Networks: one file per architecture, built by registry name with `build(kind, **kwargs)`.

Modules are imported on first use, so importing `pngan.models` stays cheap.
"""

from __future__ import annotations

import importlib

import torch.nn as nn

# registry name -> "module:Class"
REGISTRY: dict[str, str] = {
    "smnet": "pngan.models.smnet:SMNet",  # PNGAN generator (paper)
    "simnet": "pngan.models.simnet:SIMNet",  # the generator the authors shipped
    "pixel_discriminator": "pngan.models.discriminator:PixelDiscriminator",
    "ridnet": "pngan.models.ridnet:RIDNet",
    "dncnn": "pngan.models.dncnn:DnCNN",
    "mirnet": "pngan.models.mirnet:MIRNet",
    "mprnet": "pngan.models.mprnet:MPRNet",
    "vgg19": "pngan.models.vgg:VGG19Features",  # perceptual features from a local weights file
}


def build(kind: str, **kwargs) -> nn.Module:
    if kind not in REGISTRY:
        raise KeyError(f"unknown network '{kind}'; known: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, shared modules counted once."""
    return sum(p.numel() for p in model.parameters())


def final_output(output):
    """The restored image of a forward pass: a multi-stage network (MPRNet) returns a list of
    its stages' images, final stage first."""
    return output[0] if isinstance(output, (list, tuple)) else output
