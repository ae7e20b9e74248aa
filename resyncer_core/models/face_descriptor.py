"""dlib's ResNet face descriptor (128-d), ported from the TFJS weights of `@vladmandic/face-api` (MIT).

The offline identity network E_id (paper §3.3: identity loss 1 − cos(E_id(Î'), E_id(I')), and the
identity-similarity metric) when no ArcFace weights are supplied. It is dlib's
dlib_face_recognition_resnet_model_v1 (a ResNet-29-like network trained for face verification,
128-d embeddings compared by distance) as face-api.js re-implemented and re-exported it; the
converted weights ship as resyncer_core/weights/face_descriptor.safetensors
(tools/convert_face_api.py) with a NOTICE.

Network, exactly as face-api's FaceRecognitionNet:
- input 150×150 RGB, minus the mean RGB (122.782, 117.001, 104.298) in 0..255, divided by 255;
- 7×7 stride-2 conv (VALID), 3×3 stride-2 max-pool (VALID);
- residual stages of [3×3 conv → scale → ReLU → 3×3 conv → scale] + shortcut, then ReLU: three
  at 32 channels; then at 64, 128 and 256 channels a "down" block (first conv stride 2 VALID,
  shortcut 2×2 average pool with zero channels appended; when the strided conv comes out one
  pixel smaller the residual is zero-padded at the bottom and right) followed by 3, 2 and 2
  plain blocks, and one more down block at 256 (`conv256_down_out`);
- global average, 256 → 128 linear map without bias.
Every convolution has a bias and is followed by a per-channel scale layer (weights, biases):
dlib's affine layers, the frozen batch norm. Module names mirror the TFJS weight names
(`conv32_1/conv1/conv/filters` → `conv32_1.conv1.conv.weight`).

Crop. dlib (and face-api with useDlibAlignment) feeds a square chip around the eyes and the
mouth: side = mean eye-to-mouth distance / 0.45, the three points' centroid at 50 % across and
43 % down. Our aligned 256² crops put the canonical face's eyes and mouth at fixed places, so
that chip is a fixed box of the crop, `chip_box` (left, top, side as fractions of the crop side,
computed from MediaPipe's canonical face in resyncer_core/face/alignment.py's crop); forward cuts
it out and resizes it to 150². Pass chip_box (0, 0, 1) for inputs that already are dlib chips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import FreezableNetwork

MEAN_RGB = (122.782, 117.001, 104.298)  # face-api FaceRecognitionNet, 0..255 scale
# (stage name prefix, plain blocks after the stage's first block) — fixed by the weight names.
_STAGE_BLOCKS = ((32, 3), (64, 3), (128, 2), (256, 2))


@dataclass
class FaceDescriptorConfig:
    """widths: channels of the four stages (32, 64, 128, 256 for the published weights; the
    weight names keep the published numbers, e.g. `conv64_1`, whatever the width).
    embedding_size: descriptor length (128).
    input_size: chip side the network sees (150).
    chip_box: (left, top, side) of the dlib chip as fractions of the input image side.
    frozen: parameters do not require grad; gradients still flow to the images."""

    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    embedding_size: int = 128
    input_size: int = 150
    chip_box: tuple[float, float, float] = (0.121, 0.138, 0.757)
    frozen: bool = True


class ScaleLayer(nn.Module):
    """Per-channel y = x·weight + bias (dlib's affine layer)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConvScale(nn.Module):
    """conv (with bias) → scale; padding 'same' (stride 1) or 'valid' (strided)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2 if stride == 1 else 0)
        self.scale = ScaleLayer(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.conv(x))


class ResidualBlock(nn.Module):
    """face-api's residual / residualDown (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, down: bool):
        super().__init__()
        self.conv1 = ConvScale(in_channels, out_channels, 3, stride=2 if down else 1)
        self.conv2 = ConvScale(out_channels, out_channels, 3)
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        extra_rows, extra_cols = shortcut.shape[-2] - out.shape[-2], shortcut.shape[-1] - out.shape[-1]
        out = F.pad(out, (0, extra_cols, 0, extra_rows))
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out.shape[1] - shortcut.shape[1]))
        return F.relu(out + shortcut)


class FaceDescriptorResNet(FreezableNetwork):
    def __init__(self, config: FaceDescriptorConfig):
        super().__init__()
        if len(config.widths) != len(_STAGE_BLOCKS) or min(config.widths) < 1:
            raise ValueError(f"FaceDescriptorConfig.widths needs 4 positive widths, got {config.widths}")
        left, top, side = config.chip_box
        if not (0 <= left and 0 <= top and 0 < side and left + side <= 1 and top + side <= 1):
            raise ValueError(f"FaceDescriptorConfig.chip_box must lie inside the image, got {config.chip_box}")
        self.config = config
        widths = config.widths
        self.conv32_down = ConvScale(3, widths[0], 7, stride=2)
        in_channels = widths[0]
        for stage, ((name, plain), width) in enumerate(zip(_STAGE_BLOCKS, widths)):
            if stage:
                setattr(self, f"conv{name}_down", ResidualBlock(in_channels, width, down=True))
            for index in range(1, plain + 1):
                setattr(self, f"conv{name}_{index}", ResidualBlock(width, width, down=False))
            in_channels = width
        self.conv256_down_out = ResidualBlock(in_channels, in_channels, down=True)
        self.fc = nn.Linear(in_channels, config.embedding_size, bias=False)
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1) / 255.0, persistent=False)
        self.apply_freeze()

    def _blocks(self):
        for stage, (name, plain) in enumerate(_STAGE_BLOCKS):
            if stage:
                yield getattr(self, f"conv{name}_down")
            for index in range(1, plain + 1):
                yield getattr(self, f"conv{name}_{index}")
        yield self.conv256_down_out

    def chips(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] -> [B,3,input_size,input_size]: the chip_box region, bilinear resize
        (antialiased when shrinking)."""
        height, width = images.shape[-2:]
        left, top, side = self.config.chip_box
        side_px = max(1, round(side * min(height, width)))
        x0, y0 = round(left * width), round(top * height)
        chip = images[..., y0:y0 + side_px, x0:x0 + side_px]
        size = self.config.input_size
        if chip.shape[-1] == size and chip.shape[-2] == size:
            return chip
        return F.interpolate(chip, size=(size, size), mode="bilinear", align_corners=False, antialias=side_px > size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] RGB in -1..1 (aligned crops) -> descriptors [B,embedding_size]
        (not normalised: dlib compares them by Euclidean distance, about 0.6 between people;
        cosine similarity normalises them itself)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FaceDescriptorResNet expects images [B,3,H,W], got {list(images.shape)}")
        x = (self.chips(images) + 1) / 2 - self.mean
        x = F.max_pool2d(F.relu(self.conv32_down(x)), 3, 2)
        for block in self._blocks():
            x = block(x)
        return self.fc(x.mean((2, 3)))
