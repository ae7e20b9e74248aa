"""Layers shared by the two ported MediaPipe networks (BlazeFace detector, face-mesh landmarks).

Both networks are stacks of "BlazeBlocks": a 3×3 depthwise convolution, a 1×1 pointwise
convolution, a residual shortcut and an activation. They were trained in TensorFlow with
'SAME' padding, which pads stride-2 convolutions asymmetrically (the extra row/column goes at
the bottom/right); `pad_same` reproduces that so the port sees exactly the pixels the TFLite
graph sees.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def pad_same(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Zero-pad an NCHW tensor the way TensorFlow's 'SAME' padding does for this kernel/stride."""
    height, width = x.shape[-2:]
    pad_h = max((math.ceil(height / stride) - 1) * stride + kernel_size - height, 0)
    pad_w = max((math.ceil(width / stride) - 1) * stride + kernel_size - width, 0)
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class SameConv2d(nn.Conv2d):
    """A square-kernel Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        # With stride 1 and an odd kernel, SAME pads equally on both sides: let the conv do it.
        symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2 if symmetric else 0, groups=groups)
        self.pads_asymmetrically = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads_asymmetrically:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        return super().forward(x)


class BlazeBlock(nn.Module):
    """Depthwise 3×3 → pointwise 1×1, plus a shortcut, then ReLU or PReLU.

    With stride 2 the shortcut is 2×2 max-pooled; when the block widens, the shortcut gets zero
    channels appended (the TFLite graph's PAD on the channel axis).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        if stride not in (1, 2) or out_channels < in_channels:
            raise ValueError("BlazeBlock supports stride 1 or 2 and non-shrinking channel counts")
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.depthwise = SameConv2d(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.activation = nn.ReLU() if activation == "relu" else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.activation(self.pointwise(self.depthwise(x)) + shortcut)
