"""The shared timeline of a synthetic utterance: syllables, phrases and pauses.

Both the synthetic voice (`speech.py`) and the synthetic mouth (`talking_clip.py`) read the
same `SpeechPlan.envelope`, so a clip and a waveform made from one seed are in sync: the
mouth is open exactly when the voice is loud. This is what lets tests and benchmarks check
lip-sync without recorded data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ResyncerInputError

# Random streams drawn from one user seed: separate streams keep the plan identical whether
# or not the caller also draws head motion or voice noise from the same seed.
PLAN_STREAM, MOTION_STREAM, VOICE_STREAM = 1, 2, 3

VOWEL_COUNT = 5  # a, e, i, o, u; their formants live in speech.py
# The phones a syllable is drawn with (ARPAbet): its vowel, and an onset consonant for the
# voice's noise burst, picked by syllable index so consecutive syllables differ.
VOWEL_PHONES = ("AA", "EH", "IY", "AO", "UW")
ONSET_PHONES = ("M", "T", "K", "S", "L", "B", "D", "F", "N", "W")
_ONSET_SECONDS = 0.05  # at most; a third of a short syllable

# Natural-speech rhythm: syllables of 140-300 ms (3-7 per second), phrases of 3-10
# syllables separated by 0.25-0.7 s pauses, a short silence before the first word.
_SYLLABLE_SECONDS = (0.14, 0.30)
_SYLLABLE_GAP_SECONDS = (0.0, 0.04)
_SYLLABLES_PER_PHRASE = (3, 10)
_PAUSE_SECONDS = (0.25, 0.7)
_LEAD_IN_SECONDS = (0.1, 0.35)
_PEAK_RANGE = (0.5, 1.0)


@dataclass(frozen=True, eq=False)  # array fields: no meaningful == or hash
class SpeechPlan:
    """Syllables as parallel arrays, sorted and non-overlapping, covering `duration` seconds
    (at least one syllable; the last may run past the end).

    Generation is prefix-stable: the plan for 60 s starts with exactly the plan for 10 s, so
    a short and a long clip from the same seed agree on their common part.
    """

    starts: np.ndarray  # float64 [n] seconds
    durations: np.ndarray  # float64 [n] seconds
    peaks: np.ndarray  # float64 [n] in 0.5..1, loudness and mouth opening of the syllable
    vowels: np.ndarray  # int [n] in 0..VOWEL_COUNT-1
    duration: float

    @classmethod
    def generate(cls, duration: float, seed: int = 0) -> SpeechPlan:
        if not duration > 0:
            raise ResyncerInputError(f"speech duration {duration} s must be positive; give a length in seconds")
        rng = np.random.default_rng((seed, PLAN_STREAM))
        starts, durations, peaks, vowels = [], [], [], []
        time = rng.uniform(*_LEAD_IN_SECONDS)
        while time < duration or not starts:  # at least one phrase, even for a blink-long duration
            for _ in range(rng.integers(_SYLLABLES_PER_PHRASE[0], _SYLLABLES_PER_PHRASE[1] + 1)):
                length = rng.uniform(*_SYLLABLE_SECONDS)
                starts.append(time)
                durations.append(length)
                peaks.append(rng.uniform(*_PEAK_RANGE))
                vowels.append(rng.integers(VOWEL_COUNT))
                time += length + rng.uniform(*_SYLLABLE_GAP_SECONDS)
                if time >= duration:
                    break
            time += rng.uniform(*_PAUSE_SECONDS)
        return cls(np.array(starts), np.array(durations), np.array(peaks), np.array(vowels, dtype=np.int64), float(duration))

    def syllable_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the syllable sounding at each time (-1 in pauses) and the phase 0..1 within it."""
        times = np.asarray(times, dtype=np.float64)
        index = np.searchsorted(self.starts, times, side="right") - 1
        safe = np.clip(index, 0, None)
        phase = (times - self.starts[safe]) / self.durations[safe]
        inside = (index >= 0) & (phase < 1.0)
        return np.where(inside, index, -1), np.where(inside, phase, 0.0)

    def phone_timings(self) -> list[tuple[str, float, float]]:
        """ARPAbet phone timings [(phone, start_s, end_s)] of the plan, for the viseme rig: per
        syllable an onset consonant then its vowel, silence between syllables and in pauses."""
        timings, time = [], 0.0
        for index, (start, length, vowel) in enumerate(zip(self.starts, self.durations, self.vowels)):
            if start > time:
                timings.append(("SIL", time, float(start)))
            onset = min(_ONSET_SECONDS, length / 3)
            timings.append((ONSET_PHONES[index % len(ONSET_PHONES)], float(start), float(start + onset)))
            timings.append((VOWEL_PHONES[vowel], float(start + onset), float(start + length)))
            time = float(start + length)
        if time < self.duration:
            timings.append(("SIL", time, self.duration))
        return timings

    def envelope(self, times: np.ndarray) -> np.ndarray:
        """Loudness and mouth opening in 0..1 at `times` (seconds): a raised-cosine bump per
        syllable, zero in pauses, smooth everywhere (no clicks, no jumping jaw)."""
        index, phase = self.syllable_at(times)
        bump = np.sin(np.pi * phase) ** 2
        return np.where(index >= 0, self.peaks[np.clip(index, 0, None)] * bump, 0.0)
