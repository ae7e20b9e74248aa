"""Phone timings → mesh displacements ΔM [T, 468, 3] at 25 fps: the synthetic speech-to-lips mapping.

Coarticulation after Cohen & Massaro (1993): every viseme segment has, per articulation
parameter, a target and a dominance function that is flat over the middle of the segment and
decays before it (anticipation, wider) and after it (carry-over); the parameter at time t is
the dominance-weighted mean of the targets. A weak, ever-present rest dominance lets the mouth
relax in long pauses. Lip rounding is anticipated longest (as measured in speech).

Per-speaker style (`SpeakingStyle`): how far the mouth moves (amplitude), how much of it is jaw
vs lips, left/right asymmetry, a mouth left slightly open at rest, and tempo (how widely the
dominance functions spread: a slurring speaker undershoots). A synthetic speaker is a style
plus an identity shape; `SpeakingStyle.sample` draws one from a seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import ResyncerInputError
from .articulation import ARTICULATION_PARAMETERS, ArticulationRig
from .phonemes import VISEMES, phone_segments

RIG_FPS = 25

# Dominance widths in seconds (e-folding), per parameter in ARTICULATION_PARAMETERS order.
_ANTICIPATION_S = np.array([0.08, 0.16, 0.09, 0.035, 0.05, 0.07])
_CARRY_OVER_S = np.array([0.07, 0.10, 0.08, 0.03, 0.04, 0.06])
_PLATEAU_FRACTION = 0.3  # of the segment length, each side of its centre
_SILENCE_PLATEAU_FRACTION = 0.5  # a pause holds the rest pose all through, relaxing only at its edges
_DOMINANCE_SHAPE = 1.5  # exponent c of exp(-(τ/width)^c)
_REST_DOMINANCE = 0.02
_REACH_S = 0.8  # beyond this distance from a segment its dominance is negligible
_JAW, _CLOSURE = ARTICULATION_PARAMETERS.index("jaw"), ARTICULATION_PARAMETERS.index("closure")
_LIP_PARAMETERS = [i for i, p in enumerate(ARTICULATION_PARAMETERS) if p not in ("jaw", "closure")]


@dataclass(frozen=True)
class SpeakingStyle:
    """How one speaker articulates. Defaults are the rig's reference speaker."""

    amplitude: float = 1.0  # scales every movement except lip closure (0.3 .. 1.6 sensible)
    jaw_lip_ratio: float = 1.0  # > 1: more jaw, less lip movement (lips scaled by 1/ratio)
    asymmetry: float = 0.0  # -0.4 .. 0.4: one side of the mouth moves more
    rest_opening: float = 0.0  # jaw parameter held at rest (lips parted between words)
    tempo: float = 1.0  # > 1 wider dominance functions: smoother, more undershoot
    lead_s: float = 0.0  # the mouth moves this much ahead of the sound (> 0) or behind it

    def __post_init__(self):
        if not 0.0 < self.amplitude <= 3.0 or not 0.2 <= self.jaw_lip_ratio <= 5.0 or not 0.2 <= self.tempo <= 5.0:
            raise ResyncerInputError(f"speaking style out of range: {self}; amplitude in (0, 3], jaw_lip_ratio and tempo in [0.2, 5]")

    @classmethod
    def sample(cls, rng: np.random.Generator) -> SpeakingStyle:
        """A random synthetic speaker's style (amplitudes from subdued to exaggerated)."""
        return cls(
            amplitude=float(np.exp(rng.uniform(np.log(0.55), np.log(1.5)))),
            jaw_lip_ratio=float(np.exp(rng.uniform(np.log(0.6), np.log(1.7)))),
            asymmetry=float(rng.uniform(-0.25, 0.25)),
            rest_opening=float(rng.choice([0.0, rng.uniform(0.0, 0.15)])),
            tempo=float(rng.uniform(0.75, 1.35)),
            lead_s=float(rng.uniform(-0.01, 0.03)),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def frame_times(frame_count: int, fps: float = RIG_FPS) -> np.ndarray:
    """Centres of frames 0..frame_count-1 in seconds (frame j is shown from j/fps to (j+1)/fps)."""
    return (np.arange(frame_count) + 0.5) / fps


def articulation_curves(timings: list[tuple[str, float, float]], times: np.ndarray,
                        style: SpeakingStyle = SpeakingStyle()) -> np.ndarray:
    """Articulation parameters [T, 6] at `times` (seconds) for phone timings [(phone, start_s, end_s)]."""
    times = np.asarray(times, dtype=np.float64) + style.lead_s
    rest = np.zeros(len(ARTICULATION_PARAMETERS))
    rest[_JAW] = style.rest_opening
    weighted = np.tile(_REST_DOMINANCE * rest, (len(times), 1))
    total = np.full((len(times), len(ARTICULATION_PARAMETERS)), _REST_DOMINANCE)
    anticipation, carry_over = _ANTICIPATION_S * style.tempo, _CARRY_OVER_S * style.tempo
    for viseme, start, end in phone_segments(timings):
        first, last = np.searchsorted(times, [start - _REACH_S, end + _REACH_S])
        if first == last:
            continue
        t = times[first:last, None]
        silence = viseme is VISEMES["sil"]
        centre = 0.5 * (start + end)
        plateau = (_SILENCE_PLATEAU_FRACTION if silence else _PLATEAU_FRACTION) * (end - start)
        before = np.clip(centre - plateau - t, 0.0, None) / anticipation
        after = np.clip(t - centre - plateau, 0.0, None) / carry_over
        dominance = np.asarray(viseme.dominance) * np.exp(-((before + after) ** _DOMINANCE_SHAPE))
        target = rest if silence else np.asarray(viseme.target)
        weighted[first:last] += dominance * target
        total[first:last] += dominance
    curves = weighted / total
    return _apply_style(curves, style)


def _apply_style(curves: np.ndarray, style: SpeakingStyle) -> np.ndarray:
    styled = curves.copy()
    styled[:, _JAW] *= style.amplitude * style.jaw_lip_ratio
    styled[:, _LIP_PARAMETERS] *= style.amplitude / style.jaw_lip_ratio
    return styled


class VisemeRig:
    """Phone timings → ΔM on one mesh (default MediaPipe's canonical face model)."""

    def __init__(self, template: np.ndarray | torch.Tensor | None = None):
        if template is None:
            from ..face.topology import template_vertices
            template = template_vertices()
        self.articulation = ArticulationRig(template)

    @property
    def rest(self) -> torch.Tensor:
        """The closed-lip rest mesh [V, 3] that ΔM is relative to (the speaker's neutral template)."""
        return self.articulation.rest

    def displacements(self, parameters: np.ndarray | torch.Tensor, style: SpeakingStyle = SpeakingStyle()) -> torch.Tensor:
        """ΔM [T, V, 3] for articulation parameters [T, 6], with the style's asymmetry."""
        meshes = self.articulation.deform(torch.as_tensor(np.asarray(parameters), dtype=torch.float32))
        delta = meshes - self.rest
        if style.asymmetry:
            x = self.rest[:, 0]
            side = (x - x.mean()) / x.abs().max()
            delta = delta * (1.0 + style.asymmetry * side)[None, :, None]
        return delta

    def __call__(self, timings: list[tuple[str, float, float]], frame_count: int | None = None,
                 style: SpeakingStyle = SpeakingStyle(), fps: float = RIG_FPS) -> torch.Tensor:
        """ΔM [T, V, 3] at `fps` for phone timings; T defaults to the frames up to the last phone's end."""
        if frame_count is None:
            end = max((t[2] for t in timings), default=0.0)
            frame_count = max(1, int(np.ceil(end * fps)))
        return self.displacements(articulation_curves(timings, frame_times(frame_count, fps), style), style)
