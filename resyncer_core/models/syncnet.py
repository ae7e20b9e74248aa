"""Wav2Lip's expert lip-sync discriminator (SyncNet_color), used as a frozen sync-loss critic.

Two convolutional encoders map a 0.2 s audio-visual window to unit-length embeddings:
- faces: the lower halves of 5 consecutive frames, each resized to 96×96 and stacked on the
  channel axis (frame-major: f0 B,G,R, f1 B,G,R, …) -> [B,15,48,96], in 0..1 and in **BGR**
  order, because Wav2Lip read its frames with OpenCV. `syncnet_face_window` prepares this
  from our RGB -1..1 crops.
- audio: a window of 16 frames of Wav2Lip's log-mel spectrogram (80 mels, 16 kHz, hop 200,
  i.e. 80 frames per second, values normalised to -4..4) -> [B,1,80,16].
Module names match Wav2Lip's `lipsync_expert.pth` (`face_encoder.N.conv_block.0` conv,
`.conv_block.1` BatchNorm, same for `audio_encoder`).

Not the evaluation metric: the LSE-C / LSE-D numbers in lip-sync papers (and the SyncNet
confidence in ReSyncer's tables) come from Chung & Zisserman's original SyncNet as released
in joonson/syncnet_python, a different network trained on different features (MFCC, grey
mouth crops). This expert is only a training signal; porting syncnet_python for the metric is
future work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import FreezableNetwork

SYNC_FRAMES = 5  # video frames per window: 0.2 s at 25 fps
FACE_SIZE = 96  # Wav2Lip's square face size; the expert sees its lower half
FACE_INPUT_SHAPE = (3 * SYNC_FRAMES, FACE_SIZE // 2, FACE_SIZE)
MEL_INPUT_SHAPE = (1, 80, 16)  # 80 mel bins × 16 mel frames = 0.2 s at 80 mel frames per second


@dataclass
class SyncNetConfig:
    """face_widths: channels of the face encoder's five stages.
    audio_widths: channels of the audio encoder's four stages.
    embedding_size: length of both embeddings (the encoders' last layers).
    frozen: parameters do not require grad and BatchNorm statistics stay fixed (a loss
    critic); set False to train an expert of your own."""

    face_widths: tuple[int, int, int, int, int] = (32, 64, 128, 256, 512)
    audio_widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    embedding_size: int = 512
    frozen: bool = True


class ConvBlock(nn.Module):
    """Wav2Lip's Conv2d unit: conv -> BatchNorm (-> + input when residual) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int | tuple[int, int] = 1, padding: int = 1, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return F.relu(out + x if self.residual else out)


def _residual_blocks(channels: int, count: int) -> list[ConvBlock]:
    return [ConvBlock(channels, channels, 3, residual=True) for _ in range(count)]


def _face_encoder(widths: tuple[int, ...], embedding_size: int) -> nn.Sequential:
    """[B,15,48,96] -> [B,embedding_size,1,1]."""
    w1, w2, w3, w4, w5 = widths
    return nn.Sequential(
        ConvBlock(FACE_INPUT_SHAPE[0], w1, 7, padding=3),
        ConvBlock(w1, w2, 5, stride=(1, 2)), *_residual_blocks(w2, 2),  # 46×47: make it squarer
        ConvBlock(w2, w3, 3, stride=2), *_residual_blocks(w3, 3),
        ConvBlock(w3, w4, 3, stride=2), *_residual_blocks(w4, 2),
        ConvBlock(w4, w5, 3, stride=2), *_residual_blocks(w5, 2),
        ConvBlock(w5, embedding_size, 3, stride=2),  # 3×3
        ConvBlock(embedding_size, embedding_size, 3, padding=0),  # 1×1
        ConvBlock(embedding_size, embedding_size, 1, padding=0),
    )


def _audio_encoder(widths: tuple[int, ...], embedding_size: int) -> nn.Sequential:
    """[B,1,80,16] -> [B,embedding_size,1,1]."""
    w1, w2, w3, w4 = widths
    return nn.Sequential(
        ConvBlock(MEL_INPUT_SHAPE[0], w1, 3), *_residual_blocks(w1, 2),
        ConvBlock(w1, w2, 3, stride=(3, 1)), *_residual_blocks(w2, 2),  # 27×16
        ConvBlock(w2, w3, 3, stride=3), *_residual_blocks(w3, 2),  # 9×6
        ConvBlock(w3, w4, 3, stride=(3, 2)), *_residual_blocks(w4, 2),  # 3×3
        ConvBlock(w4, embedding_size, 3, padding=0),  # 1×1
        ConvBlock(embedding_size, embedding_size, 1, padding=0),
    )


class SyncNet(FreezableNetwork):
    def __init__(self, config: SyncNetConfig):
        super().__init__()
        if len(config.face_widths) != 5 or len(config.audio_widths) != 4:
            raise ValueError("SyncNetConfig needs 5 face_widths and 4 audio_widths, "
                             f"got {config.face_widths} and {config.audio_widths}")
        self.config = config
        self.face_encoder = _face_encoder(config.face_widths, config.embedding_size)
        self.audio_encoder = _audio_encoder(config.audio_widths, config.embedding_size)
        self.apply_freeze()

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [B,1,80,16], faces [B,15,48,96] (BGR, 0..1) -> (audio_embedding, face_embedding),
        each [B,embedding_size] and L2-normalised. Argument order follows Wav2Lip."""
        if tuple(mel.shape[1:]) != MEL_INPUT_SHAPE or mel.ndim != 4:
            raise ValueError(f"SyncNet expects mel windows [B,{','.join(map(str, MEL_INPUT_SHAPE))}], got {list(mel.shape)}")
        if tuple(faces.shape[1:]) != FACE_INPUT_SHAPE or faces.ndim != 4:
            raise ValueError(f"SyncNet expects face windows [B,{','.join(map(str, FACE_INPUT_SHAPE))}], got {list(faces.shape)}")
        audio_embedding = F.normalize(self.audio_encoder(mel).flatten(1), dim=1)
        face_embedding = F.normalize(self.face_encoder(faces).flatten(1), dim=1)
        return audio_embedding, face_embedding


def syncnet_face_window(crops: torch.Tensor, face_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)) -> torch.Tensor:
    """Our crops [B,5,3,H,W] (RGB, -1..1) -> the expert's face input [B,15,48,96] (BGR, 0..1).

    face_box (left, top, right, bottom, as fractions of the crop) selects the part of each
    crop that plays the role of Wav2Lip's face box: an S3FD detection from forehead to chin,
    padded 10 px downwards. The resize is plain bilinear without antialiasing, like the
    cv2.resize Wav2Lip trained with; the expert then sees only the lower half.
    """
    if crops.ndim != 5 or crops.shape[1] != SYNC_FRAMES or crops.shape[2] != 3:
        raise ValueError(f"syncnet_face_window expects crops [B,{SYNC_FRAMES},3,H,W], got {list(crops.shape)}")
    batch, _, _, height, width = crops.shape
    left, top, right, bottom = face_box
    faces = crops[..., round(top * height):round(bottom * height), round(left * width):round(right * width)]
    faces = F.interpolate(faces.flatten(0, 1), size=(FACE_SIZE, FACE_SIZE), mode="bilinear", align_corners=False)
    lower_half = faces[:, :, FACE_SIZE // 2:, :]
    bgr_01 = (lower_half.flip(1) + 1) / 2
    return bgr_01.reshape(batch, *FACE_INPUT_SHAPE)


def sync_score(audio_embedding: torch.Tensor, face_embedding: torch.Tensor) -> torch.Tensor:
    """Cosine similarity per window, [B]. The expert's embeddings come out of a ReLU, so the
    score lies in 0..1 and Wav2Lip reads it as the probability of being in sync."""
    return F.cosine_similarity(audio_embedding, face_embedding, dim=1)


def sync_loss(audio_embedding: torch.Tensor, face_embedding: torch.Tensor, in_sync: bool | torch.Tensor = True) -> torch.Tensor:
    """Wav2Lip's sync loss: binary cross-entropy of the cosine score against the label (all
    ones for a generator's frames with their own audio). The score is clamped to 0..1
    because rounding can push a cosine of unit vectors a hair past 1, which BCE rejects."""
    probability = sync_score(audio_embedding, face_embedding).clamp(0.0, 1.0)
    target = torch.as_tensor(in_sync, dtype=probability.dtype, device=probability.device).expand_as(probability)
    return F.binary_cross_entropy(probability, target)
