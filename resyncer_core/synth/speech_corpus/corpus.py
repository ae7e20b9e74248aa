"""Synthetic speech clips: a synthetic speaker reads fortune sentences; the viseme rig gives the meshes.

Everything about clip i (its speaker, sentences, pauses, augmentation) is drawn from random
streams keyed by (seed, split, i), and a speaker's voice, style and face from (seed, split,
speaker), so any clip can be made alone, on any machine, in any order: a corpus run can be
sharded and resumed and is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...audio import SAMPLE_RATE, frame_count_for, load_audio
from ...errors import ResyncerInputError
from ...mouth.viseme_rig import RIG_FPS
from .augment import Augmentation, augment
from .speakers import SyntheticSpeaker
from .voices import VOICE_KINDS

_SPLIT_CODES = {"train": 0, "validation": 1}
_CLIP_STREAM, _SPEAKER_STREAM = 11, 12
_LEAD_IN_S = (0.15, 0.6)
_SENTENCE_GAP_S = (0.15, 0.9)
_TAIL_S = (0.3, 0.8)
_MAX_SENTENCE_TRIES = 50
# Gaps between phones at least this long are pauses. They become explicit SIL phones, as
# pocketsphinx labels pauses in the neural voices' alignments and in the real-speech
# evaluation's: the rig closes the mouth through a SIL, while a gap with no phone is left to
# the neighbours' fading dominance and stays half open.
MIN_PAUSE_S = 0.05


@dataclass(frozen=True)
class CorpusPlan:
    """What to make: clips of about `clip_seconds`, `clips_per_speaker` per synthetic speaker,
    voice kinds drawn with the given weights (only installed kinds may be named)."""

    seed: int = 0
    split: str = "train"
    clip_seconds: float = 20.0
    clips_per_speaker: int = 2
    voice_weights: dict[str, float] = field(default_factory=lambda: {"espeak": 1.0})
    augmentation_strength: float = 1.0
    face_shapes: bool = True

    def __post_init__(self):
        if self.split not in _SPLIT_CODES:
            raise ResyncerInputError(f"corpus split must be 'train' or 'validation', got {self.split!r}")
        unknown = set(self.voice_weights) - set(VOICE_KINDS)
        if unknown or not self.voice_weights or min(self.voice_weights.values()) < 0 or sum(self.voice_weights.values()) <= 0:
            raise ResyncerInputError(f"voice weights {self.voice_weights} must name voice kinds of {sorted(VOICE_KINDS)} "
                                     "with non-negative weights")
        if not self.clip_seconds > 0 or self.clips_per_speaker < 1:
            raise ResyncerInputError("clip_seconds must be positive and clips_per_speaker at least 1")

    def clip_id(self, index: int) -> str:
        return f"{self.split}-s{self.seed}-{index:06d}"

    def speaker_id(self, index: int) -> str:
        return f"{self.split}-s{self.seed}-spk{index // self.clips_per_speaker:05d}"

    def speaker(self, index: int) -> SyntheticSpeaker:
        speaker_index = index // self.clips_per_speaker
        rng = np.random.default_rng((self.seed, _SPLIT_CODES[self.split], _SPEAKER_STREAM, speaker_index))
        kinds = sorted(self.voice_weights)
        weights = np.array([self.voice_weights[k] for k in kinds], dtype=np.float64)
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        return SyntheticSpeaker.create(self.speaker_id(index), VOICE_KINDS[kind].sample(rng), rng, self.face_shapes)


@dataclass
class SyntheticSpeechClip:
    """One clip at 25 fps: canonical meshes [T,468,3], the speaker's template [468,3], 16 kHz audio."""

    clip_id: str
    speaker_id: str
    canonical: np.ndarray
    template: np.ndarray
    waveform: np.ndarray
    phones: list[tuple[str, float, float]]
    metadata: dict


def with_pauses(phones: list[tuple[str, float, float]], duration: float,
                min_pause: float = MIN_PAUSE_S) -> list[tuple[str, float, float]]:
    """Phone timings (sorted, non-overlapping) with a SIL phone in every gap of at least
    `min_pause` seconds, before the first phone and after the last one up to `duration`."""
    result: list[tuple[str, float, float]] = []
    time = 0.0
    for phone, start, end in phones:
        if start - time >= min_pause:
            result.append(("SIL", time, start))
        result.append((phone, start, end))
        time = max(time, end)
    if duration - time >= min_pause:
        result.append(("SIL", time, duration))
    return result


def make_clip(plan: CorpusPlan, index: int, sentences: list[str]) -> SyntheticSpeechClip:
    """Clip `index` of the plan, reading sentences drawn from `sentences`."""
    if not sentences:
        raise ResyncerInputError("no sentences to speak; install the fortune databases (apt-get install fortunes)")
    rng = np.random.default_rng((plan.seed, _SPLIT_CODES[plan.split], _CLIP_STREAM, index))
    speaker = plan.speaker(index)
    pieces = [np.zeros(int(rng.uniform(*_LEAD_IN_S) * SAMPLE_RATE), np.float32)]
    phones: list[tuple[str, float, float]] = []
    spoken: list[str] = []
    elapsed = len(pieces[0]) / SAMPLE_RATE
    while elapsed < plan.clip_seconds:
        sentence = _speakable_sentence(speaker, sentences, rng)
        audio, rate, timings = speaker.voice.speak(sentence)
        audio = load_audio(audio, sample_rate=rate) if rate != SAMPLE_RATE else np.asarray(audio, np.float32)
        phones += [(p, elapsed + start, elapsed + end) for p, start, end in timings]
        gap = np.zeros(int(rng.uniform(*_SENTENCE_GAP_S) * SAMPLE_RATE), np.float32)
        pieces += [audio, gap]
        spoken.append(sentence)
        elapsed += (len(audio) + len(gap)) / SAMPLE_RATE
    pieces.append(np.zeros(int(rng.uniform(*_TAIL_S) * SAMPLE_RATE), np.float32))
    settings = Augmentation.sample(rng, plan.augmentation_strength)
    waveform = augment(np.concatenate(pieces), settings, rng)
    frames = frame_count_for(len(waveform), RIG_FPS)
    phones = with_pauses([(p, start / settings.speed, end / settings.speed) for p, start, end in phones],
                         frames / RIG_FPS)
    delta = speaker.rig(phones, frame_count=frames, style=speaker.style).numpy()
    template = speaker.rig.rest.numpy()
    metadata = {"synthetic": True, "voice": speaker.voice.name, "style": speaker.style.as_dict(),
                "augmentation": settings.as_dict(), "sentences": spoken, "seed": plan.seed, "index": index}
    return SyntheticSpeechClip(plan.clip_id(index), speaker.speaker_id, template[None] + delta, template, waveform,
                               phones, metadata)


def _speakable_sentence(speaker: SyntheticSpeaker, sentences: list[str], rng: np.random.Generator) -> str:
    for _ in range(_MAX_SENTENCE_TRIES):
        sentence = sentences[int(rng.integers(len(sentences)))]
        if speaker.voice.can_say(sentence):
            return sentence
    raise ResyncerInputError(f"voice {speaker.voice.name} can say none of {_MAX_SENTENCE_TRIES} sentences drawn")
