"""Mel-window audio features (Wav2Lip / StyleSync): per video frame, the window_steps mel steps
(0.2 s) starting at mel step floor(frame_index * 80 / fps), flattened mel-major to
feature_dim = n_mels * window_steps (80 * 16 = 1280). Windows running past the end of the audio
repeat the last mel step (edge padding). No trainable parameters."""

from __future__ import annotations

from fractions import Fraction

import torch

from .encoder import AudioEncoder, EncodingWindow
from .mel_features import MelConfig, mel_filterbank, wav2lip_log_mel
from .timing import exact_fps


class MelAudioEncoder(AudioEncoder):
    """AudioEncoder over Wav2Lip mel windows; feature_dim = n_mels * window_steps."""

    def __init__(self, config: MelConfig | None = None, window: EncodingWindow | None = None) -> None:
        config = config or MelConfig()
        super().__init__(config.feature_dim, window)
        self.config = config
        # Windows must start on the hop grid for windowed and one-pass mel steps to coincide.
        self.segment_alignment_samples = config.hop_length
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank(config)), persistent=False)
        self.register_buffer("stft_window", torch.hann_window(config.win_length), persistent=False)

    def encode_segment(
        self, segment: torch.Tensor, segment_start: int, frame_indices: torch.Tensor, fps: float
    ) -> torch.Tensor:
        config = self.config
        mel = wav2lip_log_mel(segment.to(self.filterbank.dtype), config, self.filterbank, self.stft_window)
        steps_per_frame = Fraction(config.sample_rate, config.hop_length) / exact_fps(fps)
        first_steps = (frame_indices * steps_per_frame.numerator) // steps_per_frame.denominator
        first_steps = first_steps - segment_start // config.hop_length
        offsets = torch.arange(config.window_steps, device=mel.device)
        steps = (first_steps[:, None] + offsets[None, :]).clamp(max=mel.shape[-1] - 1)  # [T, window_steps]
        windows = mel[:, :, steps]  # [B, n_mels, T, window_steps]
        return windows.permute(0, 2, 1, 3).reshape(mel.shape[0], len(frame_indices), self.feature_dim)
