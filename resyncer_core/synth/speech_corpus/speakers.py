"""Synthetic speakers: a voice, a speaking style and a face shape, all drawn from one seed.

A voice is anything with `name` and `speak(text) -> (waveform, sample_rate, phone timings)`
(phone timings [(phone, start_s, end_s)] in ARPAbet or IPA). espeak-ng voices come with exact
timings; neural voices (voices.py) get theirs from forced alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...face.topology import template_vertices
from ...mouth.viseme_rig import SpeakingStyle, VisemeRig

# Face shapes: per-axis scale and a smooth quadratic deformation of the canonical model, in
# canonical units (cm): enough to vary mouth width, lip thickness and jaw length between speakers.
_AXIS_SCALE_SPREAD = 0.05
_DEFORMATION_CM = 0.25


class Voice(Protocol):
    name: str

    def speak(self, text: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]: ...


def random_face_shape(rng: np.random.Generator) -> np.ndarray:
    """A speaker's neutral face [468, 3]: MediaPipe's canonical model, rescaled and smoothly deformed."""
    base = template_vertices().astype(np.float64)
    centred = (base - base.mean(0)) / np.abs(base).max()
    scaled = base * (1.0 + _AXIS_SCALE_SPREAD * rng.standard_normal(3))
    # Quadratic polynomial field in the normalised coordinates: 10 monomials per output axis.
    x, y, z = centred.T
    monomials = np.stack([np.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, y * z, x * z], axis=1)
    coefficients = rng.standard_normal((10, 3)) * _DEFORMATION_CM / 3.0
    coefficients[0] = 0.0  # no translation
    return (scaled + monomials @ coefficients).astype(np.float32)


@dataclass
class SyntheticSpeaker:
    """One corpus speaker; `rig.rest` is its neutral template (lips closed)."""

    speaker_id: str
    voice: Voice
    style: SpeakingStyle
    rig: VisemeRig

    @classmethod
    def create(cls, speaker_id: str, voice: Voice, rng: np.random.Generator, face_shape: bool = True) -> SyntheticSpeaker:
        template = random_face_shape(rng) if face_shape else template_vertices()
        return cls(speaker_id, voice, SpeakingStyle.sample(rng), VisemeRig(template))
