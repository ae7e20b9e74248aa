"""VGG19 convolutional trunk for the perceptual loss (DESIGN §4: L1 + 0.1 · VGG19 loss).

The trunk is laid out exactly like torchvision's `vgg19().features` (one nn.Sequential of
Conv2d / ReLU / MaxPool2d), so converted ImageNet weights keep their names: torchvision's
`features.N.weight` is our `features.N.weight`. Layers are named the usual way, `reluB_C` is
the ReLU after the C-th convolution of block B (relu1_1 = features.1, relu2_1 = features.6,
relu3_1 = features.11, relu4_1 = features.20, relu5_1 = features.29).

The default outputs are the pix2pixHD / GPEN perceptual-loss set relu1_1 … relu5_1; the loss
weights per layer belong to the loss (train/), not to this network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .frozen import FreezableNetwork

# VGG19 is VGG "configuration E": 2, 2, 4, 4 and 4 convolutions in its five blocks.
CONVS_PER_BLOCK = (2, 2, 4, 4, 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_RANGES = ("-1..1", "0..1")


@dataclass
class VGG19Config:
    """channels: width of each of the five blocks (shrink them for tiny test models).
    output_layers: the ReLU outputs forward returns, in this order.
    input_range: "-1..1" (core crops) or "0..1"; RGB either way.
    frozen: parameters do not require grad and the network stays in eval mode; gradients
    still flow to the input images, which is what a perceptual loss needs."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    output_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    input_range: str = "-1..1"
    frozen: bool = True


def relu_layer_indices() -> dict[str, int]:
    """Maps every `reluB_C` name to its index in `VGG19Features.features`."""
    indices = {}
    index = 0
    for block, convs in enumerate(CONVS_PER_BLOCK, start=1):
        for conv in range(1, convs + 1):
            indices[f"relu{block}_{conv}"] = index + 1  # the ReLU right after the conv
            index += 2
        index += 1  # the block's max-pool
    return indices


class VGG19Features(FreezableNetwork):
    def __init__(self, config: VGG19Config):
        super().__init__()
        if len(config.channels) != len(CONVS_PER_BLOCK):
            raise ValueError(f"VGG19Config.channels needs {len(CONVS_PER_BLOCK)} block widths, got {config.channels}")
        if config.input_range not in INPUT_RANGES:
            raise ValueError(f"VGG19Config.input_range must be one of {INPUT_RANGES}, got {config.input_range!r}")
        known = relu_layer_indices()
        unknown = [name for name in config.output_layers if name not in known]
        if unknown or not config.output_layers:
            raise ValueError(f"VGG19Config.output_layers must name layers among {sorted(known)}, got {config.output_layers}")
        self.config = config

        layers: list[nn.Module] = []
        in_channels = 3
        for width, convs in zip(config.channels, CONVS_PER_BLOCK):
            for _ in range(convs):
                layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self._output_indices = [known[name] for name in config.output_layers]

        # Not persistent: these constants come with the ImageNet weights rather than being
        # learned, torchvision's files do not carry them, and keeping them out of the state
        # dict means no checkpoint can hold stale copies. They still follow .to(device).
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.apply_freeze()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images [B,3,H,W] RGB in the configured range -> the configured ReLU outputs, in
        config order. Runs only as deep as the deepest requested layer."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG19Features expects images [B,3,H,W], got {list(images.shape)}")
        if self.config.input_range == "-1..1":
            images = (images + 1) / 2
        x = (images - self.mean) / self.std
        wanted = set(self._output_indices)
        captured: dict[int, torch.Tensor] = {}
        for index in range(max(wanted) + 1):
            x = self.features[index](x)
            if index in wanted:
                captured[index] = x
        return [captured[index] for index in self._output_indices]
