"""Wav2Lip's log-mel spectrogram (also StyleSync's audio front-end), without librosa.

Pipeline: pre-emphasis, |STFT| (Hann window, centred frames, zero padding as librosa >= 0.10
does), Slaney-style mel filterbank (librosa.filters.mel's default: Slaney mel scale and area
normalisation), 20*log10 amplitude in dB relative to ref_level_db, then Wav2Lip's symmetric
normalisation of [min_level_db, 0] dB to [-max_abs_value, max_abs_value].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ResyncerInputError
from .timing import SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """Wav2Lip's hparams; window_steps mel steps (0.2 s) make one video frame's feature."""

    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    n_fft: int = 800
    hop_length: int = 200
    win_length: int = 800
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    max_abs_value: float = 4.0
    window_steps: int = 16

    def __post_init__(self) -> None:
        if self.sample_rate != SAMPLE_RATE:
            raise ResyncerInputError(f"MelConfig.sample_rate must be {SAMPLE_RATE}, the rate load_audio returns.")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ResyncerInputError(f"MelConfig needs 0 <= fmin < fmax <= {self.sample_rate // 2} Hz.")

    @property
    def feature_dim(self) -> int:
        return self.n_mels * self.window_steps


# Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _LINEAR_HZ_PER_MEL
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    frequencies = np.asarray(frequencies, dtype=np.float64)
    linear = frequencies / _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_START_MEL + np.log(np.maximum(frequencies, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(frequencies >= _LOG_START_HZ, logarithmic, linear)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    linear = mels * _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_START_HZ * np.exp(_LOG_STEP * (mels - _LOG_START_MEL))
    return np.where(mels >= _LOG_START_MEL, logarithmic, linear)


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1] with Slaney area normalisation."""
    fft_frequencies = np.linspace(0.0, config.sample_rate / 2, config.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_frequencies[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


def wav2lip_log_mel(
    waveform: torch.Tensor, config: MelConfig, filterbank: torch.Tensor, window: torch.Tensor
) -> torch.Tensor:
    """[B,S] 16 kHz -> normalised log-mel [B, n_mels, 1 + S // hop_length] in
    [-max_abs_value, max_abs_value]; step m is centred on sample m * hop_length."""
    emphasised = torch.cat([waveform[:, :1], waveform[:, 1:] - config.preemphasis * waveform[:, :-1]], dim=1)
    spectrum = torch.stft(
        emphasised,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    mel = filterbank @ spectrum
    min_amplitude = 10.0 ** (config.min_level_db / 20.0)
    decibels = 20.0 * torch.log10(mel.clamp(min=min_amplitude)) - config.ref_level_db
    scaled = 2 * config.max_abs_value * (decibels - config.min_level_db) / -config.min_level_db - config.max_abs_value
    return scaled.clamp(-config.max_abs_value, config.max_abs_value)
