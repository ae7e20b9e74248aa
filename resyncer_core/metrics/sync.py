"""LSE-style sync metrics with a supplied SyncNet (models/syncnet.py, Wav2Lip's expert).

The protocol of Wav2Lip's evaluation of LSE-D / LSE-C (syncnet_python): every 5-frame video
window is compared with the audio windows at offsets −max_offset … +max_offset frames; per
offset the distances are averaged over the windows; LSE-D is the smallest mean distance and
LSE-C the median minus that smallest distance (how clearly one offset stands out), with the
distance taken between L2-normalised embeddings. The numbers are only comparable to published
ones when the network is Chung & Zisserman's SyncNet; with Wav2Lip's expert (what
models/syncnet.py holds) they are this pack's own sync scale (lower D / higher C is better).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..audio.mel_features import MelConfig, mel_filterbank, wav2lip_log_mel
from ..errors import ResyncerInputError
from ..models.syncnet import SYNC_FRAMES, syncnet_face_window

DEFAULT_MAX_OFFSET = 15   # frames, syncnet_python's vshift


@dataclass(frozen=True)
class SyncScores:
    lse_distance: float     # LSE-D
    lse_confidence: float   # LSE-C
    offset: int             # frames of the best offset (0: in sync)


def _mel_windows(waveform_16k: np.ndarray, frame_count: int, fps: float) -> torch.Tensor:
    """[frame_count, 1, 80, 16]: the 16 mel steps (0.2 s) starting at each video frame's time."""
    config = MelConfig()
    waveform = torch.as_tensor(np.asarray(waveform_16k, dtype=np.float32))[None]
    filterbank = torch.from_numpy(mel_filterbank(config)).to(torch.float32)
    mel = wav2lip_log_mel(waveform, config, filterbank, torch.hann_window(config.win_length))[0]
    steps_per_second = config.sample_rate / config.hop_length
    mel = F.pad(mel, (0, config.window_steps))
    starts = np.minimum((np.arange(frame_count) / fps * steps_per_second).round().astype(int),
                        mel.shape[1] - config.window_steps)
    return torch.stack([mel[:, start:start + config.window_steps] for start in starts])[:, None]


@torch.no_grad()
def sync_scores(syncnet: torch.nn.Module, crops: torch.Tensor, waveform_16k: np.ndarray, fps: float = 25.0,
                max_offset: int = DEFAULT_MAX_OFFSET, batch_size: int = 32) -> SyncScores:
    """LSE-D / LSE-C of crops [T,3,H,W] (-1..1) against their 16 kHz audio (see the module docstring)."""
    count = len(crops) - SYNC_FRAMES + 1
    if count < 1:
        raise ResyncerInputError(f"sync scores need at least {SYNC_FRAMES} frames, got {len(crops)}")
    device = next(syncnet.parameters()).device
    windows = torch.stack([crops[i:i + SYNC_FRAMES] for i in range(count)])
    mel = _mel_windows(waveform_16k, len(crops), fps)
    # The two encoders run separately: every video window meets every audio offset.
    faces = torch.cat([F.normalize(syncnet.face_encoder(syncnet_face_window(
        windows[i:i + batch_size].to(device, torch.float32))).flatten(1), dim=1).cpu()
        for i in range(0, count, batch_size)])
    audio = torch.cat([F.normalize(syncnet.audio_encoder(mel[i:i + batch_size].to(device)).flatten(1), dim=1).cpu()
                       for i in range(0, len(mel), batch_size)])
    offsets = list(range(-max_offset, max_offset + 1))
    means = []
    for offset in offsets:
        index = torch.arange(count)
        shifted = index + offset
        keep = (shifted >= 0) & (shifted < len(audio))
        means.append(float((faces[index[keep]] - audio[shifted[keep]]).norm(dim=1).mean()) if keep.any() else np.inf)
    means = np.asarray(means)
    best = int(np.argmin(means))
    finite = means[np.isfinite(means)]
    return SyncScores(lse_distance=float(means[best]), lse_confidence=float(np.median(finite) - means[best]),
                      offset=offsets[best])
