"""ArcFace identity encoder E_id (paper §3.3: identity loss 1 − cos(E_id(Î'), E_id(I'))).

The network is insightface's arcface_torch IResNet ("improved" pre-activation ResNet) with the
same module names, so a converted `backbone.pth` (ms1mv3 r50 / r100) maps key for key:
conv1, bn1, prelu, layer1..layer4 of IBasicBlock (bn1, conv1, bn2, prelu, conv2, bn3,
downsample), bn2, dropout, fc, features (BatchNorm1d). arcface_torch's `fp16` switch only
wrapped the trunk in autocast; here the network runs in whatever dtype the caller uses.

Input and crop. ArcFace was trained on 112×112 RGB faces in -1..1 aligned by a 5-point
similarity transform to insightface's template (eye centres at about 46 % of the height with
an eye distance of about 31 % of the width, mouth corners at about 82 % of the height).
Our aligned 256² crops (eye-based alignment, StyleSync/GPEN style) leave more margin around
the face: their eye distance is roughly a quarter of the crop width. forward therefore takes
the central square of side `crop_fraction` × the shorter image side (default 0.8, which
brings the eye distance close to ArcFace's scale) and resizes it to `input_size`. The match
is approximate; the identity loss compares two images prepared the same way, which is what
matters. Feed insightface-aligned 112² faces with crop_fraction=1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import FreezableNetwork

# Blocks per stage of insightface's published IResNets.
IRESNET_LAYERS = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
}
_STAGE_WIDTH_MULTIPLIERS = (1, 2, 4, 8)
_DOWNSAMPLING = 2 ** len(_STAGE_WIDTH_MULTIPLIERS)  # every stage halves the resolution
_BATCHNORM_EPS = 1e-5


@dataclass
class ArcFaceConfig:
    """layers: blocks per stage, (3, 4, 14, 3) = iresnet50, (3, 13, 30, 3) = iresnet100.
    stem_width: channels of the stem and the first stage; stages are ×1, ×2, ×4, ×8.
    embedding_size: length of the identity embedding.
    input_size: side of the square face the trunk sees (112 for the published weights;
    must be a multiple of 16).
    crop_fraction: side of the central square crop taken before resizing, as a fraction of
    the shorter image side (see the module docstring).
    dropout: dropout before the fc layer, as in arcface_torch (0 in its published configs).
    frozen: parameters do not require grad and BatchNorm statistics stay fixed."""

    layers: tuple[int, int, int, int] = IRESNET_LAYERS["r50"]
    stem_width: int = 64
    embedding_size: int = 512
    input_size: int = 112
    crop_fraction: float = 0.8
    dropout: float = 0.0
    frozen: bool = True


class IBasicBlock(nn.Module):
    """insightface's pre-activation residual block: BN → conv3×3 → BN → PReLU → conv3×3
    (carrying the stride) → BN, plus an identity or 1×1-conv shortcut. No activation after
    the sum, unlike a torchvision BasicBlock."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=_BATCHNORM_EPS)
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=_BATCHNORM_EPS)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=_BATCHNORM_EPS)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channels, eps=_BATCHNORM_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class ArcFaceIResNet(FreezableNetwork):
    def __init__(self, config: ArcFaceConfig):
        super().__init__()
        if len(config.layers) != len(_STAGE_WIDTH_MULTIPLIERS) or min(config.layers) < 1:
            raise ValueError(f"ArcFaceConfig.layers needs 4 positive block counts, got {config.layers}")
        if config.input_size < _DOWNSAMPLING or config.input_size % _DOWNSAMPLING:
            raise ValueError(f"ArcFaceConfig.input_size must be a multiple of {_DOWNSAMPLING}, got {config.input_size}")
        if not 0.0 < config.crop_fraction <= 1.0:
            raise ValueError(f"ArcFaceConfig.crop_fraction must be in (0, 1], got {config.crop_fraction}")
        self.config = config

        stem = config.stem_width
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, eps=_BATCHNORM_EPS)
        self.prelu = nn.PReLU(stem)
        in_channels = stem
        for stage, (blocks, multiplier) in enumerate(zip(config.layers, _STAGE_WIDTH_MULTIPLIERS), start=1):
            channels = stem * multiplier
            stage_blocks = [IBasicBlock(in_channels, channels, stride=2)]
            stage_blocks += [IBasicBlock(channels, channels, stride=1) for _ in range(blocks - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*stage_blocks))
            in_channels = channels
        self.bn2 = nn.BatchNorm2d(in_channels, eps=_BATCHNORM_EPS)
        self.dropout = nn.Dropout(p=config.dropout)
        final_side = config.input_size // _DOWNSAMPLING
        self.fc = nn.Linear(in_channels * final_side * final_side, config.embedding_size)
        self.features = nn.BatchNorm1d(config.embedding_size, eps=_BATCHNORM_EPS)

        self.apply_freeze()

    def crop_faces(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] -> [B,3,input_size,input_size]: central square crop of side
        crop_fraction × min(H, W), then a bilinear resize (antialiased when shrinking)."""
        height, width = images.shape[-2:]
        side = max(1, round(min(height, width) * self.config.crop_fraction))
        top, left = (height - side) // 2, (width - side) // 2
        faces = images[..., top:top + side, left:left + side]
        size = self.config.input_size
        if side == size:
            return faces
        return F.interpolate(faces, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] RGB in -1..1, any size -> L2-normalised embeddings [B,embedding_size]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ArcFaceIResNet expects images [B,3,H,W], got {list(images.shape)}")
        x = self.prelu(self.bn1(self.conv1(self.crop_faces(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        embedding = self.features(self.fc(x))
        return F.normalize(embedding, dim=1)
