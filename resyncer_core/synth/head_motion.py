"""Smooth, seeded head motion: in-plane rotation, scale and translation over time.

Each pose component is a sum of a few slow sinusoids (0.1-0.6 Hz) with random frequencies
and phases, which looks like the idle sway of a person talking to a camera and is smooth at
any frame rate. The pose at time t depends only on (seed, motion, t), so any frame can be
rendered on its own and chunked rendering equals one-shot rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ResyncerInputError
from .speech_plan import MOTION_STREAM

_SINUSOIDS_PER_COMPONENT = 3
_FREQUENCY_RANGE_HZ = (0.1, 0.6)


@dataclass(frozen=True)
class MotionAmplitude:
    """Peak deviations: rotation in degrees, scale as a relative change, shift as a fraction of frame height."""

    rotation_deg: float
    scale: float
    shift: float


MOTION_LEVELS = {
    "still": MotionAmplitude(0.0, 0.0, 0.0),
    "gentle": MotionAmplitude(3.0, 0.02, 0.015),
    "lively": MotionAmplitude(8.0, 0.06, 0.04),
}


class HeadMotion:
    """pose(times) -> [n, 4] float64: rotation (degrees, counter-clockwise on screen),
    scale (1 = rest), shift x and shift y (fractions of the frame height)."""

    def __init__(self, motion: str = "gentle", seed: int = 0):
        if motion not in MOTION_LEVELS:
            raise ResyncerInputError(f"motion {motion!r} is unknown; use one of {', '.join(MOTION_LEVELS)}")
        self.amplitude = MOTION_LEVELS[motion]
        rng = np.random.default_rng((seed, MOTION_STREAM))
        shape = (4, _SINUSOIDS_PER_COMPONENT)
        self._frequencies = rng.uniform(*_FREQUENCY_RANGE_HZ, size=shape)
        self._phases = rng.uniform(0, 2 * np.pi, size=shape)
        # Weights sum to 1 per component, so the amplitude is a true bound.
        weights = rng.uniform(0.5, 1.0, size=shape)
        self._weights = weights / weights.sum(axis=1, keepdims=True)

    def pose(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=np.float64)[:, None, None]
        wave = (self._weights * np.sin(2 * np.pi * self._frequencies * times + self._phases)).sum(axis=2)
        a = self.amplitude
        rotation, scale, shift_x, shift_y = wave.T
        return np.stack([a.rotation_deg * rotation, 1 + a.scale * scale, a.shift * shift_x, a.shift * shift_y], axis=1)
