"""Audio augmentation for the speech corpus: what microphones, rooms and speakers do to speech.

Every transform keeps the phone timings valid: speed changes scale them (returned factor), the
rest (noise, reverberation with its direct path at time 0, level, band limits) do not move
sound in time. All randomness comes from the generator passed in, so a corpus is reproducible
from its seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...audio import SAMPLE_RATE, load_audio


@dataclass(frozen=True)
class Augmentation:
    """One utterance's augmentation settings (see `sample`)."""

    speed: float = 1.0  # tape-style: > 1 faster and higher
    gain_db: float = 0.0
    snr_db: float | None = None  # None: no added noise
    noise_colour: float = 0.0  # 0 white, 1 pink, 2 brown (spectral slope exponent)
    reverb_rt60_s: float | None = None
    reverb_wet: float = 0.0
    low_cut_hz: float | None = None
    high_cut_hz: float | None = None

    @classmethod
    def sample(cls, rng: np.random.Generator, strength: float = 1.0) -> Augmentation:
        """Random settings; strength 0 gives the identity, 1 the corpus default mix."""
        if strength <= 0 or rng.uniform() < 0.15:  # some utterances stay clean
            return cls(speed=float(rng.uniform(0.92, 1.08)) if strength > 0 else 1.0)
        band = rng.uniform()
        return cls(
            speed=float(rng.uniform(0.88, 1.12)),
            gain_db=float(rng.uniform(-18.0, 0.0)),
            snr_db=float(rng.uniform(8.0, 40.0)) if rng.uniform() < 0.6 * strength else None,
            noise_colour=float(rng.uniform(0.0, 2.0)),
            reverb_rt60_s=float(rng.uniform(0.15, 0.8)) if rng.uniform() < 0.4 * strength else None,
            reverb_wet=float(rng.uniform(0.1, 0.5)),
            low_cut_hz=float(rng.uniform(80, 350)) if band < 0.35 else None,
            high_cut_hz=float(rng.choice([3400.0, 4000.0, 5500.0, 7000.0])) if band > 0.7 else None,
        )

    def as_dict(self) -> dict:
        return asdict(self)


def change_speed(waveform: np.ndarray, factor: float) -> np.ndarray:
    """Play 16 kHz `waveform` `factor` times faster (and higher), like a tape: duration / factor."""
    if factor == 1.0:
        return waveform
    return load_audio(waveform, sample_rate=int(round(SAMPLE_RATE * factor)))


def coloured_noise(length: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectrum ∝ 1/f^colour."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    spectrum *= 1.0 / np.maximum(frequencies, 20.0) ** (colour / 2.0)
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def room_impulse_response(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: the direct path at sample 0, then exponentially decaying noise."""
    length = int(rt60_s * SAMPLE_RATE)
    decay = np.exp(-6.9 * np.arange(length) / length)  # -60 dB over rt60
    tail = rng.standard_normal(length) * decay
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive after a few milliseconds
    return tail / (np.sqrt(np.sum(tail ** 2)) + 1e-12)


def _fft_convolve(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    size = len(signal) + len(kernel) - 1
    n = 1 << (size - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(signal, n) * np.fft.rfft(kernel, n), n)[: len(signal)]


def band_limit(waveform: np.ndarray, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """Smooth (raised-cosine, 1/4-octave) high-pass and/or low-pass in the frequency domain."""
    spectrum = np.fft.rfft(waveform)
    frequencies = np.fft.rfftfreq(len(waveform), 1.0 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(frequencies, 1.0))
    gain = np.ones_like(frequencies)
    for edge, rising in ((low_hz, True), (high_hz, False)):
        if edge is not None:
            position = np.clip((octaves - np.log2(edge)) / 0.25 + 0.5, 0.0, 1.0)
            ramp = 0.5 - 0.5 * np.cos(np.pi * position)
            gain *= ramp if rising else 1.0 - ramp
    return np.fft.irfft(spectrum * gain, n=len(waveform))


def augment(waveform: np.ndarray, settings: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Apply `settings` to a 16 kHz waveform (speed first: scale phone times by 1/settings.speed)."""
    audio = change_speed(np.asarray(waveform, dtype=np.float32), settings.speed).astype(np.float64)
    if settings.reverb_rt60_s is not None and len(audio):
        wet = _fft_convolve(audio, room_impulse_response(settings.reverb_rt60_s, rng))
        audio = audio + settings.reverb_wet * wet * np.sqrt(np.mean(audio ** 2) / (np.mean(wet ** 2) + 1e-12))
    if settings.low_cut_hz is not None or settings.high_cut_hz is not None:
        audio = band_limit(audio, settings.low_cut_hz, settings.high_cut_hz)
    if settings.snr_db is not None and len(audio):
        signal_rms = np.sqrt(np.mean(audio ** 2)) + 1e-9
        audio = audio + coloured_noise(len(audio), settings.noise_colour, rng) * signal_rms * 10 ** (-settings.snr_db / 20)
    peak = np.max(np.abs(audio)) if len(audio) else 0.0
    target_peak = 0.9 * 10 ** (settings.gain_db / 20)
    if peak > 0:
        audio = audio * (target_peak / peak)
    return audio.astype(np.float32)
