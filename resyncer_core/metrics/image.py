"""Image metrics of generated crops against real ones: PSNR and SSIM (paper Tables 1 and 5).

Images are [B,3,H,W] (or [3,H,W]) in -1..1, the core's crop convention; both metrics are
computed on the 0..255 scale the lip-sync papers report, per image and then averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ResyncerInputError

SSIM_WINDOW = 11        # Wang et al. 2004: 11×11 Gaussian window, σ = 1.5
SSIM_SIGMA = 1.5
_PEAK = 255.0


def _pair(generated, real) -> tuple[torch.Tensor, torch.Tensor]:
    generated = torch.as_tensor(generated, dtype=torch.float32)
    real = torch.as_tensor(real, dtype=torch.float32)
    if generated.ndim == 3:
        generated, real = generated[None], real[None]
    if generated.shape != real.shape or generated.ndim != 4:
        raise ResyncerInputError(f"image metrics need two image batches of one shape [B,C,H,W], got "
                                 f"{list(generated.shape)} and {list(real.shape)}")
    to_pixels = lambda images: (images.clamp(-1, 1) + 1) * (_PEAK / 2)  # noqa: E731
    return to_pixels(generated), to_pixels(real)


def psnr(generated, real) -> float:
    """Mean over images of 10·log10(255² / MSE); identical images count as 100 dB."""
    generated, real = _pair(generated, real)
    mse = (generated - real).pow(2).flatten(1).mean(1)
    values = 10 * torch.log10(_PEAK ** 2 / mse.clamp_min(_PEAK ** 2 * 1e-10))
    return float(values.mean())


def ssim(generated, real) -> float:
    """Mean structural similarity (Wang et al. 2004, Gaussian 11×11 window, K1 0.01, K2 0.03),
    per channel, over valid window positions, averaged over channels and images."""
    generated, real = _pair(generated, real)
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float32) - SSIM_WINDOW // 2
    kernel_1d = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    kernel_1d = kernel_1d / kernel_1d.sum()
    channels = generated.shape[1]
    kernel = (kernel_1d[:, None] * kernel_1d[None, :]).expand(channels, 1, -1, -1).contiguous()
    blur = lambda x: F.conv2d(x, kernel, groups=channels)  # noqa: E731
    mu_x, mu_y = blur(generated), blur(real)
    sigma_x = blur(generated * generated) - mu_x ** 2
    sigma_y = blur(real * real) - mu_y ** 2
    sigma_xy = blur(generated * real) - mu_x * mu_y
    c1, c2 = (0.01 * _PEAK) ** 2, (0.03 * _PEAK) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2))
    return float(index.mean())
