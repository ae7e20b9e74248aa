"""Speaking style controls for stage 1 (DESIGN §4, "Speaking style when the target does not
speak"): shipped style presets, the speech-motion test that decides when a style reference
carries no style, the closed neutral template and the motion strength.

A style preset is the viseme rig's ΔM of a fixed sentence (closures, open and round vowels,
pauses) spoken by one rig speaker, on MediaPipe's canonical face: a style reference like the
one a talking video gives, with no video needed. The rig's reference speaker opens about half as
wide as a real reader (open vowels ≈ 0.05 IOD against 0.1-0.3), so the presets' amplitudes are
set to real readers' sizes.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.lips import aperture_iod
from .articulation import ArticulationRig
from .viseme_rig import RIG_FPS, SpeakingStyle, VisemeRig

STYLE_PRESETS = {
    "subdued": SpeakingStyle(amplitude=1.4, jaw_lip_ratio=1.0),
    "natural": SpeakingStyle(amplitude=2.0, jaw_lip_ratio=1.1),
    "expressive": SpeakingStyle(amplitude=2.7, jaw_lip_ratio=1.2),
}
DEFAULT_STYLE_PRESET = "natural"
# A style reference whose inner-lip aperture spans less than this (p10-p90, inter-ocular
# distances) shows no speech: a still gives 0, a re-encoded static clip about 0.003 of tracker
# noise, while the demo clip spans 0.07 and a real reader 0.09.
MIN_STYLE_MOTION_IOD = 0.02
# "The quick brown fox jumps over the lazy dog, my mama said." in ARPAbet with plain durations
# (consonants 70 ms, vowels 140 ms, "_" a 200 ms pause): closures, open and round vowels.
_STYLE_SENTENCE = "DH AH K W IH K B R AW N F AA K S JH AH M P S OW V ER DH AH L EY Z IY D AO G _ M AY M AA M AH S EH D"
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def style_sentence_phones() -> list[tuple[str, float, float]]:
    """The fixed style sentence as phone timings (seconds), with 0.3 s of silence around it."""
    timings, time = [("SIL", 0.0, 0.3)], 0.3
    for phone in _STYLE_SENTENCE.split():
        length = 0.2 if phone == "_" else 0.14 if phone in _VOWELS else 0.07
        timings.append(("SIL" if phone == "_" else phone, time, time + length))
        time += length
    return timings + [("SIL", time, time + 0.3)]


def check_style_preset(name: str) -> str:
    if name not in STYLE_PRESETS:
        raise ResyncerInputError(f"style preset {name!r} is unknown; choose one of {', '.join(STYLE_PRESETS)}")
    return name


@functools.cache
def _preset_delta(name: str) -> torch.Tensor:
    return VisemeRig()(style_sentence_phones(), style=STYLE_PRESETS[name], fps=RIG_FPS)


def preset_style_reference(name: str, length: int) -> torch.Tensor:
    """ΔM_ref [length,468,3] at 25 fps of preset `name`: its sentence from the opening pause
    (which shows the speaker's rest), repeated if the sentence is shorter than `length`."""
    delta = _preset_delta(check_style_preset(name))
    return delta.repeat(-(-length // len(delta)), 1, 1)[:length].clone()


def style_motion_iod(template: np.ndarray | torch.Tensor, style_reference: torch.Tensor) -> float:
    """How much a style reference ΔM_ref [T,468,3] on its `template` [468,3] speaks: the
    p10-p90 spread of its inner-lip aperture, in inter-ocular distances."""
    meshes = torch.as_tensor(template, dtype=torch.float32)[None] + torch.as_tensor(style_reference, dtype=torch.float32)
    apertures = aperture_iod(meshes.numpy())
    apertures = apertures[np.isfinite(apertures)]
    return float(np.ptp(np.percentile(apertures, [10, 90]))) if len(apertures) else 0.0


def no_style_reason(template: np.ndarray | torch.Tensor, style_reference: torch.Tensor) -> str | None:
    """Why a style reference ΔM_ref [T,468,3] on `template` gives no speaking style, so the
    default preset speaks instead (the end of a sentence naming the reference), or None when
    it shows speech (MIN_STYLE_MOTION_IOD)."""
    motion = style_motion_iod(template, style_reference)
    if motion >= MIN_STYLE_MOTION_IOD:
        return None
    return (f"shows no speech motion to take a speaking style from (lip spread {motion:.3f} < "
            f"{MIN_STYLE_MOTION_IOD} inter-ocular distances): speaking in the shipped '{DEFAULT_STYLE_PRESET}' style")


def closed_neutral(template: np.ndarray | torch.Tensor) -> np.ndarray:
    """The template [468,3] with its inner lip contours brought together by the rig's closure
    field (each lip half the gap, the lips' surroundings following): a smiling portrait with
    parted lips or a still caught mid-word gets a mouth that silence and P/B/M can close. A
    closed template comes back (nearly) unchanged."""
    return ArticulationRig(template).rest.numpy()


def with_strength(meshes: torch.Tensor, closed_template: torch.Tensor, strength: float) -> torch.Tensor:
    """Meshes [T,468,3] whose motion from `closed_template` [468,3] is scaled by `strength`."""
    closed_template = torch.as_tensor(closed_template, dtype=meshes.dtype)
    return closed_template + check_strength(strength) * (meshes - closed_template)


def check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 3.0:
        raise ResyncerInputError(f"mouth-motion strength {strength:g} is out of range; use 0 (still) … 3 (1 is the model's own)")
    return float(strength)
