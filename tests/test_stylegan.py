"""StyleGAN2 layers: upfirdn2d against a direct definition, modulated convs against the
per-sample-weight formulation, channel table."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from resyncer_core.models.stylegan import (Blur, ConvLayer, EqualLinear, ModulatedConv2d, ToRGB, Upsample, check_power_of_two_size,
                                           fused_leaky_relu, make_blur_kernel, stylegan_channels, upfirdn2d)


def reference_upfirdn2d(x: np.ndarray, kernel: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """The definition spelled out: zero insertion, (possibly negative) padding, true
    convolution tap by tap, decimation."""
    batch, channels, height, width = x.shape
    stuffed = np.zeros((batch, channels, height * up, width * up))
    stuffed[:, :, ::up, ::up] = x
    pad0, pad1 = pad
    padded_h, padded_w = height * up + pad0 + pad1, width * up + pad0 + pad1
    padded = np.zeros((batch, channels, padded_h, padded_w))
    for y in range(padded_h):
        for x_ in range(padded_w):
            src_y, src_x = y - pad0, x_ - pad0
            if 0 <= src_y < height * up and 0 <= src_x < width * up:
                padded[:, :, y, x_] = stuffed[:, :, src_y, src_x]
    kernel_h, kernel_w = kernel.shape
    out_h, out_w = padded_h - kernel_h + 1, padded_w - kernel_w + 1
    out = np.zeros((batch, channels, out_h, out_w))
    for i in range(kernel_h):
        for j in range(kernel_w):
            out += padded[:, :, i:i + out_h, j:j + out_w] * kernel[kernel_h - 1 - i, kernel_w - 1 - j]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad,kernel_shape", [
    (1, 1, (0, 0), (3, 3)),
    (1, 1, (2, 1), (4, 4)),      # Blur
    (2, 1, (2, 1), (4, 4)),      # Upsample
    (2, 1, (1, 1), (4, 4)),      # after the modulated transposed conv
    (1, 2, (1, 1), (4, 4)),      # Downsample
    (1, 2, (2, 2), (4, 4)),      # blur before a stride-2 3×3 conv
    (2, 1, (-1, 0), (3, 3)),     # negative padding crops
    (3, 1, (0, 4), (2, 5)),      # odd factor, non-square kernel
    (2, 3, (1, 2), (3, 3)),      # both resampling factors
])
def test_upfirdn2d_matches_direct_definition(up, down, pad, kernel_shape):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 9, generator=generator, dtype=torch.float64)
    kernel = torch.randn(*kernel_shape, generator=generator, dtype=torch.float64)  # asymmetric: catches flips
    expected = reference_upfirdn2d(x.numpy(), kernel.numpy(), up, down, pad)
    got = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_resampling_layers_keep_the_expected_sizes():
    x = torch.randn(2, 4, 16, 16)
    assert Upsample((1, 3, 3, 1))(x).shape == (2, 4, 32, 32)
    assert Blur((1, 3, 3, 1), pad=(2, 1))(x).shape == x.shape
    assert ConvLayer(4, 5, 3, downsample=True)(x).shape == (2, 5, 8, 8)
    assert ConvLayer(4, 5, 1, downsample=True, activate=False, bias=False)(x).shape == (2, 5, 8, 8)
    # A constant image stays constant through the normalised blur (away from the borders).
    constant = torch.ones(1, 1, 16, 16)
    assert torch.allclose(Upsample((1, 3, 3, 1))(constant)[..., 4:-4, 4:-4], torch.ones(1, 1, 24, 24))
    assert math.isclose(make_blur_kernel((1, 3, 3, 1)).sum().item(), 1.0, rel_tol=1e-6)


def test_fused_leaky_relu():
    x = torch.tensor([[-1.0, 2.0]]).view(1, 2, 1, 1)
    out = fused_leaky_relu(x, torch.tensor([0.5, -1.0]))
    assert torch.allclose(out.flatten(), torch.tensor([-0.5 * 0.2, 1.0]) * math.sqrt(2))


@pytest.mark.parametrize("bias", [True, False])
def test_equal_linear_activation_is_applied_with_or_without_bias(bias):
    torch.manual_seed(0)
    layer = EqualLinear(5, 4, bias=bias, bias_init=0.3, lr_mul=0.5, activate=True)
    x = torch.randn(3, 5)
    pre_activation = x @ (layer.weight * layer.scale).t() + (0.3 * 0.5 if bias else 0.0)
    expected = F.leaky_relu(pre_activation, 0.2) * math.sqrt(2)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def per_sample_modulated_conv(layer: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's formulation: one modulated (and demodulated) weight per sample."""
    outputs = []
    for sample, sample_style in zip(x, style):
        scales = layer.modulation(sample_style[None])[0]
        weight = layer.weight * layer.scale * scales[None, :, None, None]
        if layer.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if layer.upsample:
            out = layer.blur(F.conv_transpose2d(sample[None], weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(sample[None], weight, padding=layer.padding)
        outputs.append(out)
    return torch.cat(outputs)


@pytest.mark.parametrize("upsample,demodulate,kernel_size", [(False, True, 3), (True, True, 3), (False, False, 1)])
def test_modulated_conv_equals_per_sample_weights(upsample, demodulate, kernel_size):
    torch.manual_seed(0)
    layer = ModulatedConv2d(5, 7, kernel_size, style_dim=6, demodulate=demodulate, upsample=upsample)
    x, style = torch.randn(3, 5, 8, 8), torch.randn(3, 6)
    got = layer(x, style)
    assert got.shape == (3, 7, 16 if upsample else 8, 16 if upsample else 8)
    assert torch.allclose(got, per_sample_modulated_conv(layer, x, style), atol=1e-5)


def test_demodulation_normalises_output_scale():
    torch.manual_seed(0)
    layer = ModulatedConv2d(64, 64, 3, style_dim=8)
    x = torch.randn(2, 64, 16, 16)
    small, large = layer(x, torch.randn(2, 8)), layer(x, 10 * torch.randn(2, 8))
    # The style changes which input channels matter, never the output energy by much.
    assert 0.5 < small.std().item() < 2.0 and 0.5 < large.std().item() < 2.0


def test_to_rgb_adds_the_upsampled_skip():
    torch.manual_seed(0)
    to_rgb = ToRGB(4, style_dim=6)
    x, style, skip = torch.randn(1, 4, 8, 8), torch.randn(1, 6), torch.randn(1, 3, 4, 4)
    assert torch.allclose(to_rgb(x, style, skip) - to_rgb(x, style), to_rgb.upsample(skip), atol=1e-6)


def test_channel_table_and_size_check():
    assert stylegan_channels(256, 2, 1.0) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
    assert stylegan_channels(64, 2, 1 / 32) == {4: 16, 8: 16, 16: 16, 32: 16, 64: 16}
    assert min(stylegan_channels(1024, 1, 1 / 512).values()) == 1
    assert check_power_of_two_size(256, "x") == 8
    for bad in (4, 100, 2048):
        with pytest.raises(ValueError, match="power of two"):
            check_power_of_two_size(bad, "generator")
