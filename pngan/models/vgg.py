"""VGG19 `features` for the perceptual loss, built here (no torchvision), frozen.

Layout of torchvision's VGG19 (`torchvision/models/vgg.py`, cfgs["E"]): 16 3x3 convs with ReLU,
max-pool after blocks 1-5; state-dict keys `features.N.weight/bias` at N = 0, 2, 5, 7, 10, 12,
14, 16, 19, 21, 23, 25, 28, 30, 32, 34 (32 entries, 20,024,384 parameters), so the `features.*`
part of a torchvision VGG19 weights file loads unchanged. Inputs in [0, 1] are normalised with
the ImageNet mean/std inside, as torchvision's weights expect.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn

from pngan.images import DataError
from pngan.models.weights import load_weights, read_state_dict

VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Name of each `features` index: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names, block, conv = [], 1, 1
    for item in VGG19_CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


class VGG19Features(nn.Module):
    """(B, 3, H, W) image in [0, 1] -> VGG19 feature map at `layer` (default conv5_4, before ReLU).

    The constructor gives random weights (for layout checks); use `from_file` for real ones.
    Parameters never train and the module stays in eval mode; gradients flow to the input.
    """

    def __init__(self, layer: str = "conv5_4"):
        super().__init__()
        names = vgg19_layer_names()
        if layer not in names:
            raise ValueError(f"unknown VGG19 layer '{layer}'; choose from {', '.join(names)}")
        self.layer = layer
        self.index = names.index(layer)
        layers: list[nn.Module] = []
        in_ch = 3
        for item in VGG19_CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike, layer: str = "conv5_4") -> "VGG19Features":
        """Load a torchvision-layout VGG19 weights file (classifier.* entries are ignored).

        A file holding only the features stack (keys `0.weight`, `2.weight`, ...) loads too.
        Raises DataError for a missing, corrupt or non-VGG19 file.
        """
        state = read_state_dict(path)
        features = {k: v for k, v in state.items() if k.startswith("features.")}
        if not features and "0.weight" in state:
            features = {f"features.{k}": v for k, v in state.items()}
        if not features:
            keys = ", ".join(list(state)[:5])
            raise DataError(f"{path}: no VGG19 'features.*' weights in this file (keys: {keys} ...)")
        return load_weights(cls(layer), features, name=str(path))

    def train(self, mode: bool = True) -> "VGG19Features":
        """Always eval: the perceptual network is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.mean) / self.std
        for module in self.features[: self.index + 1]:
            h = module(h)
        return h
