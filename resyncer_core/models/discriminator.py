"""StyleGAN2 residual discriminator with minibatch standard deviation (paper §3.2 uses
StyleGAN2's discriminator for the adversarial loss)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ResyncerInputError
from .stylegan import ConvLayer, EqualLinear, ResBlock, check_power_of_two_size, stylegan_channels


@dataclass(frozen=True)
class DiscriminatorConfig:
    """size: input resolution (power of two, 8 … 1024). channel_multiplier, narrow: widths as in
    the generator. in_channels: 3 for RGB (more for a conditional discriminator).
    stddev_group: samples per minibatch-stddev group (see `stddev_group_size`)."""

    size: int = 256
    channel_multiplier: int = 2
    narrow: float = 1.0
    in_channels: int = 3
    stddev_group: int = 4

    def __post_init__(self):
        check_power_of_two_size(self.size, "discriminator")
        positive = {"channel_multiplier": self.channel_multiplier, "narrow": self.narrow,
                    "in_channels": self.in_channels, "stddev_group": self.stddev_group}
        for name, value in positive.items():
            if not value > 0:
                raise ResyncerInputError(f"discriminator {name} must be positive, got {value!r}")


def stddev_group_size(batch: int, preferred: int) -> int:
    """The largest divisor of `batch` not above `preferred`; when that is 1 for a batch > 1
    (a prime batch larger than the group), the whole batch forms one group, because a group of
    one has zero variance and would make the statistic a constant."""
    group = min(batch, preferred)
    while batch % group:
        group -= 1
    return batch if group == 1 and batch > 1 else group


def minibatch_stddev(x: torch.Tensor, preferred_group: int) -> torch.Tensor:
    """Appends one channel holding the mean standard deviation of the features across the
    samples of each group, so the discriminator can see a lack of variety (mode collapse)."""
    batch, channels, height, width = x.shape
    group = stddev_group_size(batch, preferred_group)
    # Sample b belongs to group slot b // (batch / group); statistics are over dim 0.
    # In float32: in float16 the 1e-8 underflows to 0, and a zero variance (a batch of one, or
    # identical samples, i.e. the collapse this statistic exists to catch) then gives sqrt(0),
    # whose infinite derivative turns every gradient NaN under mixed-precision training.
    grouped = x.view(group, batch // group, channels, height, width).float()
    stddev = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))
    stddev = stddev.view(-1, 1, 1, 1).repeat(group, 1, height, width)
    return torch.cat([x, stddev.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    """Image [B, in_channels, size, size] in −1..1 → realness logits [B, 1]."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config if config is not None else DiscriminatorConfig()
        size = self.config.size
        channels = stylegan_channels(size, self.config.channel_multiplier, self.config.narrow)
        self.stem = ConvLayer(self.config.in_channels, channels[size], 1)
        self.blocks = nn.ModuleList(
            ResBlock(channels[2 ** i], channels[2 ** (i - 1)])
            for i in range(size.bit_length() - 1, 2, -1)
        )
        self.final_conv = ConvLayer(channels[4] + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activate=True),
            EqualLinear(channels[4], 1),
        )

    def forward_with_features(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [B, 1] and the activations of the stem and of every residual block (fine to
        coarse), for feature-matching losses."""
        size, in_channels = self.config.size, self.config.in_channels
        if image.ndim != 4 or tuple(image.shape[1:]) != (in_channels, size, size):
            raise ResyncerInputError(f"discriminator input must be [B, {in_channels}, {size}, {size}], "
                             f"got {list(image.shape)}")
        x = self.stem(image)
        features = [x]
        for block in self.blocks:
            x = block(x)
            features.append(x)
        x = self.final_conv(minibatch_stddev(x, self.config.stddev_group))
        return self.final_linear(x.flatten(1)), features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(image)[0]
