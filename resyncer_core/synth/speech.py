"""A synthetic voice: vowel-like formant tones following a `SpeechPlan`.

Each syllable is a harmonic tone (a female-range pitch with slow intonation) whose harmonics
are weighted by the formant resonances of one vowel, shaped by the plan's envelope and
started by a short noise burst standing in for a consonant. It is not intelligible speech,
but it has speech's spectral shape and syllable rhythm, which is what audio encoders, sync
metrics and the lip-sync pipeline need to be exercised end to end.
"""

from __future__ import annotations

import numpy as np

from ..errors import ResyncerInputError
from .speech_plan import VOICE_STREAM, SpeechPlan

# Formant frequencies and bandwidths (Hz) of a, e, i, o, u: textbook averages for a female voice.
_FORMANTS_HZ = np.array([[850, 1220, 2810], [550, 2100, 2900], [310, 2790, 3310], [560, 920, 2830], [370, 950, 2670]],
                        dtype=np.float64)
_BANDWIDTHS_HZ = np.array([90.0, 110.0, 170.0])
_FORMANT_GAINS = np.array([1.0, 0.5, 0.25])
_PITCH_RANGE_HZ = (180.0, 230.0)
_INTONATION_DEPTH = 0.06  # ± relative pitch swing of the slow intonation contour
_INTONATION_RATE_HZ = (0.3, 0.8)
_STRESS_PITCH_RISE = 0.05  # relative pitch rise at a syllable's loudest point, as on stressed syllables
_VOICE_LEVEL = 0.3  # peak amplitude of the loudest syllable, headroom left for the bursts
_BURST_SECONDS = 0.03
_BURST_LEVEL = 0.06
_BLOCK_SAMPLES = 8192  # harmonics are summed block by block to bound memory on long clips


def synthetic_speech(duration_s: float, sample_rate: int = 16000, seed: int = 0,
                     plan: SpeechPlan | None = None) -> np.ndarray:
    """Mono float32 waveform of round(duration_s * sample_rate) samples in -1..1.

    With the same `seed` (or the same `plan`) as `synthetic_talking_clip`, the voice is loud
    exactly when the clip's mouth is open.
    """
    if not duration_s > 0 or sample_rate < 8000:
        raise ResyncerInputError(f"synthetic speech needs a positive duration and a sample rate of at least 8000 Hz, "
                                 f"got {duration_s} s at {sample_rate} Hz")
    plan = plan if plan is not None else SpeechPlan.generate(duration_s, seed)
    rng = np.random.default_rng((seed, VOICE_STREAM))
    times = np.arange(round(duration_s * sample_rate)) / sample_rate
    envelope = plan.envelope(times)
    base_pitch = rng.uniform(*_PITCH_RANGE_HZ)
    intonation_hz, intonation_phase = rng.uniform(*_INTONATION_RATE_HZ), rng.uniform(0, 2 * np.pi)
    intonation = 1 + _INTONATION_DEPTH * np.sin(2 * np.pi * intonation_hz * times + intonation_phase)
    pitch = base_pitch * intonation * (1 + _STRESS_PITCH_RISE * envelope)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    syllable, _ = plan.syllable_at(times)
    vowel = np.where(syllable >= 0, plan.vowels[np.clip(syllable, 0, None)], 0)

    voice = np.empty_like(times)
    for start in range(0, len(times), _BLOCK_SAMPLES):
        block = slice(start, start + _BLOCK_SAMPLES)
        voice[block] = _voiced_block(phase[block], pitch[block], vowel[block], sample_rate)
    waveform = _VOICE_LEVEL * envelope * voice + _consonant_bursts(plan, times, sample_rate, rng)
    return np.clip(waveform, -1.0, 1.0).astype(np.float32)


def _voiced_block(phase: np.ndarray, pitch: np.ndarray, vowel: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sum of harmonics below 0.45·sample_rate, each weighted by the vowel's formant
    resonances at its frequency; the weights have unit norm, so every vowel is equally loud."""
    harmonic_count = int(0.45 * sample_rate / _PITCH_RANGE_HZ[0])
    k = np.arange(1, harmonic_count + 1)[:, None]
    frequency = k * pitch[None, :]
    formants = _FORMANTS_HZ[vowel].T[:, None, :]  # [3, 1, n]
    resonance = _FORMANT_GAINS[:, None, None] / (1 + ((frequency[None] - formants) / _BANDWIDTHS_HZ[:, None, None]) ** 2)
    weights = resonance.sum(axis=0) * (frequency < 0.45 * sample_rate)
    weights /= np.sqrt((weights ** 2).sum(axis=0, keepdims=True)) + 1e-9
    return (weights * np.sin(k * phase[None, :])).sum(axis=0)


def _consonant_bursts(plan: SpeechPlan, times: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A short, decaying, high-passed noise burst at each syllable onset."""
    bursts = np.zeros_like(times)
    length = round(_BURST_SECONDS * sample_rate)
    decay = np.exp(-np.arange(length) / (length / 4))
    for start, peak in zip(plan.starts, plan.peaks, strict=True):
        first = round(start * sample_rate)
        if first >= len(times):
            break  # syllables are sorted: the rest start after the end
        end = min(first + length, len(times))
        noise = np.diff(rng.standard_normal(length + 1))  # first difference: a cheap high-pass
        bursts[first:end] += (_BURST_LEVEL * peak * decay * noise)[: end - first]
    return bursts
