"""Whisper's log-mel front-end (as openai/whisper's log_mel_spectrogram and transformers'
WhisperFeatureExtractor compute it), in torch.

16 kHz audio, 400-sample Hann STFT centred on sample m * 160 (reflect padding), power spectrum,
80 Slaney mel filters from 0 to 8 kHz, log10 floored at 1e-10 and at 8 below the window's
maximum, then (x + 4) / 4. The last STFT frame is dropped, so 30 s give exactly 3000 steps.
"""

from __future__ import annotations

import torch

from .mel_features import MelConfig, mel_filterbank
from .timing import SAMPLE_RATE

WHISPER_HOP_SAMPLES = 160
WHISPER_WINDOW_SAMPLES = 30 * SAMPLE_RATE
WHISPER_MEL = MelConfig(n_mels=80, n_fft=400, hop_length=WHISPER_HOP_SAMPLES, win_length=400, fmin=0.0, fmax=8000.0)
_DYNAMIC_RANGE = 8.0  # log10 units: 80 dB below the loudest bin


def whisper_filterbank() -> torch.Tensor:
    """Mel filters [80, 201] (float32)."""
    return torch.from_numpy(mel_filterbank(WHISPER_MEL))


def whisper_log_mel(waveform: torch.Tensor, filterbank: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """[B,S] 16 kHz -> [B, 80, S // 160]: step m is centred on sample m * 160. The dynamic-range
    floor is per clip, as in Whisper, which feeds one 30 s window at a time."""
    spectrum = torch.stft(waveform, n_fft=WHISPER_MEL.n_fft, hop_length=WHISPER_HOP_SAMPLES, window=window,
                          center=True, pad_mode="reflect", return_complex=True)
    power = spectrum[..., :-1].abs() ** 2
    log_mel = (filterbank @ power).clamp(min=1e-10).log10()
    floor = log_mel.amax(dim=(1, 2), keepdim=True) - _DYNAMIC_RANGE
    return (torch.maximum(log_mel, floor) + 4.0) / 4.0
