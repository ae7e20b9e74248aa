"""StyleGAN2 building blocks in pure PyTorch, shared by the generator and the discriminator.

The layer set follows the StyleGAN2 / GPEN code lineage (equalised learning rate, FIR
resampling, modulated convolutions with demodulation), rewritten without the CUDA extensions:
`upfirdn2d` runs on `conv2d` / `conv_transpose2d`, and the fused leaky ReLU is plain tensor
math, so importing this module compiles nothing and every op works on CPU, CUDA, under
autocast and under `torch.inference_mode`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ResyncerInputError

LEAKY_RELU_SLOPE = 0.2
# Gain that keeps the activation variance of a leaky ReLU close to 1 (StyleGAN's choice).
LEAKY_RELU_GAIN = math.sqrt(2.0)

_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512}
_MULTIPLIED_CHANNELS = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def stylegan_channels(size: int, channel_multiplier: int, narrow: float) -> dict[int, int]:
    """Channel count per resolution 4 … size (a size checked by check_power_of_two_size), as in
    StyleGAN2: 512 up to 32², then halving with `channel_multiplier`; every count scaled by
    `narrow` and kept at least 1."""
    table = dict(_BASE_CHANNELS)
    table.update({res: base * channel_multiplier for res, base in _MULTIPLIED_CHANNELS.items()})
    return {res: max(1, int(count * narrow)) for res, count in table.items() if res <= size}


def check_power_of_two_size(size: int, owner: str) -> int:
    """Returns log2(size) after checking that `size` is a power of two in 8 … 1024."""
    if not isinstance(size, int) or size < 8 or size > 1024 or size & (size - 1):
        raise ResyncerInputError(f"{owner} size must be a power of two from 8 to 1024, got {size!r}")
    return size.bit_length() - 1


def make_blur_kernel(taps: Sequence[int]) -> torch.Tensor:
    """2-D FIR kernel from 1-D taps (outer product), normalised to sum 1."""
    kernel = torch.tensor(taps, dtype=torch.float32)
    kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with `kernel` (a true convolution), downsample.

    Same semantics as StyleGAN2's upfirdn2d with equal factors and padding on both axes;
    negative padding crops. Every channel is filtered independently, as one depthwise
    (grouped) convolution over all channels: CPU and GPU kernels run that directly, where a
    reshape to one-channel planes falls back to slow generic kernels. The zero insertion and
    the filtering are one `conv_transpose2d` (stride `up`), and the filtering and the
    decimation are one strided `conv2d`, so no zero-stuffed tensor is ever materialised; equal
    padding on both sides goes into the convolution's own padding (no padded copy).
    """
    channels = x.shape[1]
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    kernel_h, kernel_w = kernel.shape
    pad0, pad1 = pad
    if up > 1:
        # conv_transpose2d computes the full convolution of the zero-stuffed input with the
        # kernel; the upfirdn window starts k - 1 - pad0 samples into it and ends
        # k - up - pad1 samples before its end (negative values extend it with zeros).
        weight = kernel[None, None].expand(channels, 1, kernel_h, kernel_w)
        crop0, crop1 = kernel_w - 1 - pad0, kernel_w - up - pad1
        if crop0 == crop1 >= 0 and kernel_h == kernel_w:
            out = F.conv_transpose2d(x, weight, stride=up, padding=crop0, groups=channels)
        else:
            out = F.conv_transpose2d(x, weight, stride=up, groups=channels)
            out = F.pad(out, [pad0 - kernel_w + 1, up + pad1 - kernel_w, pad0 - kernel_h + 1, up + pad1 - kernel_h])
        return out[:, :, ::down, ::down] if down > 1 else out
    weight = torch.flip(kernel, [0, 1])[None, None].expand(channels, 1, kernel_h, kernel_w)
    if pad0 == pad1 >= 0:
        return F.conv2d(x, weight, stride=down, padding=pad0, groups=channels)
    return F.conv2d(F.pad(x, [pad0, pad1, pad0, pad1]), weight, stride=down, groups=channels)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = LEAKY_RELU_SLOPE,
                     scale: float = LEAKY_RELU_GAIN) -> torch.Tensor:
    """Bias add (along dim 1), leaky ReLU and gain: StyleGAN2's fused_bias_act in plain ops.

    Two passes over x instead of three: the gain goes in before the activation (a leaky ReLU
    commutes with a positive factor), fused with the bias add, and the activation runs in
    place on that fresh tensor. The bias takes x's dtype so autocast keeps bf16 activations."""
    bias = bias.to(x.dtype).view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu_(torch.add(bias * scale, x, alpha=scale), negative_slope)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    """Normalises each vector to unit root-mean-square along dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights are stored N(0, 1/lr_mul²) and scaled
    at run time, so Adam's per-parameter step is the same for every layer; `lr_mul` < 1 slows
    a layer down (the mapping MLP)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            out = F.linear(x, self.weight * self.scale)
            if bias is None:  # activate without a bias: still the leaky ReLU and its gain
                return F.leaky_relu(out, LEAKY_RELU_SLOPE) * LEAKY_RELU_GAIN
            return fused_leaky_relu(out, bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activate={self.activate}"


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate (see EqualLinear)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_channels, in_channels, kernel, _ = self.weight.shape
        return f"{in_channels}, {out_channels}, {kernel}, stride={self.stride}, padding={self.padding}"


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding; `gain` compensates the energy lost to zero
    insertion when it follows a stride-2 transposed convolution."""

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel(taps) * gain, persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2× FIR upsampling (used on the RGB skip path)."""

    def __init__(self, taps: Sequence[int], factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel(taps) * factor ** 2, persistent=False)
        self.factor = factor
        excess = len(taps) - factor
        self.pad = ((excess + 1) // 2 + factor - 1, excess // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution, optionally 2× upsampling.

    The style scales the input channels of the weight; demodulation rescales each output
    channel to unit expected variance. It is computed by scaling the activations instead of
    building one weight per sample (StyleGAN2's non-fused form): the result is the same, and
    plain conv2d with a shared weight is what cuDNN, CPU kernels and autocast handle best.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        # bias_init=1: an untrained style leaves the weight unchanged instead of zeroing it.
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        if upsample:
            factor = 2
            excess = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((excess + 1) // 2 + factor - 1, excess // 2 + 1),
                             gain=factor ** 2)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # The equalised-lr scale rides on the per-channel style: [B, in_channels] numbers
        # instead of a scaled copy of the whole weight.
        channel_scales = self.modulation(style) * self.scale
        weight = self.weight
        if x.shape[0] == 1 and weight.numel() < x.numel():
            # One sample: scaling the weight's input channels is the same product and touches
            # fewer numbers than scaling the activations (true at the high resolutions).
            weight_used = weight * channel_scales.view(1, -1, 1, 1)
        else:
            weight_used = weight
            x = x * channel_scales.view(*channel_scales.shape, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight_used.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight_used, padding=self.padding)
        if self.demodulate:
            # ‖w'_o‖² = Σ_i s_i² Σ_k w_oik²: one small matmul instead of a per-sample weight.
            energy = channel_scales.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t()
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return out

    def extra_repr(self) -> str:
        out_channels, in_channels, kernel, _ = self.weight.shape
        return (f"{in_channels}, {out_channels}, {kernel}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}")


class NoiseInjection(nn.Module):
    """Feeds a spatial map in where StyleGAN adds per-pixel noise.

    `concat=True` (GPEN): the map, times a learned gain, is concatenated to the features as
    extra channels, so the next layer decides how to use it. `concat=False`: it is added
    (StyleGAN), which needs as many map channels as feature channels. The gain starts at 1,
    not at GPEN's 0: GPEN starts from a pretrained StyleGAN whose prior it must not disturb,
    while this generator trains from scratch and needs the spatial input from the first step.
    """

    def __init__(self, concat: bool = True):
        super().__init__()
        self.concat = concat
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, feature_map: torch.Tensor) -> torch.Tensor:
        injected = self.weight * feature_map
        return torch.cat([x, injected], dim=1) if self.concat else x + injected


class ConstantInput(nn.Module):
    """The learned 4×4 tensor the synthesis network starts from."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv → spatial map injection → bias + leaky ReLU. With concatenation the
    output has 2 × out_channels channels (features, then the injected map)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1),
                 concat_noise: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection(concat=concat_noise)
        self.activate = FusedLeakyReLU(out_channels * (2 if concat_noise else 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, feature_map: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), feature_map))


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to RGB, added to the upsampled RGB of the
    previous resolution (StyleGAN2's skip architecture)."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.upsample = Upsample(blur_kernel) if upsample else None
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConvLayer(nn.Module):
    """Equalised conv, optionally preceded by a blur and strided by 2 (anti-aliased
    downsampling), optionally followed by bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), bias: bool = True, activate: bool = True):
        super().__init__()
        if downsample:
            excess = (len(blur_kernel) - 2) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((excess + 1) // 2, excess // 2))
            stride, padding = 2, 0
        else:
            self.blur = None
            stride, padding = 1, kernel_size // 2
        # With an activation the bias lives in FusedLeakyReLU.
        self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                padding=padding, bias=bias and not activate)
        self.activate = FusedLeakyReLU(out_channels) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = self.conv(x)
        return x if self.activate is None else self.activate(x)


class ResBlock(nn.Module):
    """Discriminator residual block: two 3×3 convs (the second downsampling) plus a 1×1
    downsampling skip, summed with 1/√2 to keep the variance."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel,
                              bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)
