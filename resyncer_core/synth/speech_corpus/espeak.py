"""espeak-ng through its C library (Debian `espeak-ng` / `libespeak-ng1`): speech with exact phone timing.

The library reports a phoneme event, with its audio position, for every phone it speaks; with
the IPA option the event names the phone in IPA, which phonemes.py maps to visemes. Loaded
with ctypes on first use, so nothing here is a dependency of the pack: without the library
`espeak_available()` is False and the corpus uses other voices (or none).

One process-wide engine (the C library keeps global state); calls are serialised by a lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ResyncerInputError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_EVENT_LIST_TERMINATED, _EVENT_PHONEME, _EVENT_END = 0, 7, 5
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes phonememode: IPA rather than espeak's ASCII names
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "word_gap": 7}
# Variants that do not sound like a human speaker (robots, whisper, creaky effects).
_UNHUMAN_VARIANTS = ("robo", "Robot", "Demonic", "whisper", "croak", "klatt", "Tweaky", "AnxiousAndy", "UniRobot")
ENGLISH_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-us-nyc")


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class EspeakVoice:
    """An espeak-ng voice: language voice + variant, and prosody settings."""

    language: str = "en-us"
    variant: str = ""  # one of variants(), "" for the language's default
    rate: int = 170  # words per minute (espeak's default 175)
    pitch: int = 50  # 0..99
    pitch_range: int = 50  # 0..99, intonation range
    word_gap: int = 0  # extra pause between words, in units of 10 ms

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language


class _Engine:
    def __init__(self, library: ctypes.CDLL):
        self.library = library
        library.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA)
        if self.sample_rate <= 0:
            raise ResyncerInputError("espeak-ng failed to initialise; reinstall espeak-ng (apt-get install espeak-ng)")
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._receive)  # kept referenced: the library calls it
        library.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _receive(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0)
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                self._phonemes.append((event.id.string.decode("utf-8", "replace"), event.audio_position))
            index += 1
        return 0

    def speak(self, text: str, voice: EspeakVoice) -> tuple[np.ndarray, list[tuple[str, int]]]:
        with self.lock:
            if self.library.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise ResyncerInputError(f"espeak-ng has no voice {voice.name!r}; see `espeak-ng --voices`")
            for key, value in (("rate", voice.rate), ("pitch", voice.pitch), ("range", voice.pitch_range),
                               ("word_gap", voice.word_gap), ("volume", 100)):
                self.library.espeak_SetParameter(_PARAMETERS[key], int(value), 0)
            self._chunks, self._phonemes = [], []
            data = text.encode("utf-8") + b"\0"
            self.library.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.library.espeak_Synchronize()
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
            return audio, list(self._phonemes)

    def phonemize(self, text: str, voice: EspeakVoice) -> str:
        """IPA of `text` (words separated by spaces, clauses by ", "), without speaking it."""
        with self.lock:
            if self.library.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise ResyncerInputError(f"espeak-ng has no voice {voice.name!r}; see `espeak-ng --voices`")
            self.library.espeak_TextToPhonemes.restype = ctypes.c_char_p
            buffer = ctypes.c_char_p(text.encode("utf-8"))
            pointer = ctypes.pointer(buffer)
            clauses = []
            while buffer.value:
                clause = self.library.espeak_TextToPhonemes(pointer, _CHARS_UTF8, _PHONEMES_IPA)
                if clause is None:
                    break
                clauses.append(clause.decode("utf-8", "replace").strip())
            return ", ".join(c for c in clauses if c)


@functools.cache
def _engine() -> _Engine | None:
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        return None
    try:
        return _Engine(ctypes.CDLL(name))
    except OSError:
        return None


def espeak_available() -> bool:
    """True when libespeak-ng can be loaded (Debian: apt-get install espeak-ng)."""
    return _engine() is not None


@functools.cache
def variants() -> tuple[str, ...]:
    """espeak-ng's voice variants that sound human (the files in espeak-ng-data/voices/!v)."""
    for root in (Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"), Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data"),
                 Path("/usr/share/espeak-ng-data"), Path("/usr/local/share/espeak-ng-data")):
        folder = root / "voices" / "!v"
        if folder.is_dir():
            return tuple(sorted(p.name for p in folder.iterdir()
                                if p.is_file() and not any(tag.lower() in p.name.lower() for tag in _UNHUMAN_VARIANTS)))
    return ()


def espeak_speak(text: str, voice: EspeakVoice = EspeakVoice()) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """Speak `text`: waveform float32, its sample rate, and phone timings [(ipa, start_s, end_s)].

    Phones run from their event to the next one; the last to the end of the audio. Pauses are
    not phones: the gaps between phones (e.g. at commas) are left for the caller to fill with silence.
    """
    engine = _engine()
    if engine is None:
        raise ResyncerInputError("espeak-ng is not installed; apt-get install espeak-ng (needed only to make corpora)")
    audio, events = engine.speak(text, voice)
    duration = len(audio) / engine.sample_rate
    timings = []
    for (name, start_ms), (_, next_ms) in zip(events, [*events[1:], ("", int(duration * 1000))]):
        name = name.strip()
        if name and next_ms > start_ms:
            timings.append((name, start_ms / 1000.0, min(next_ms / 1000.0, duration)))
    return audio, engine.sample_rate, timings


def espeak_ipa(text: str, voice: EspeakVoice = EspeakVoice()) -> str:
    """The IPA espeak-ng reads `text` with (what Kokoro-style voices are driven by)."""
    engine = _engine()
    if engine is None:
        raise ResyncerInputError("espeak-ng is not installed; apt-get install espeak-ng (needed only to make corpora)")
    return engine.phonemize(text, voice)
