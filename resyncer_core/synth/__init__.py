"""Procedural audio-visual corpus for tests, the demo and benchmarks: a real face photo that
talks (head motion, opening mouth) in sync with a synthetic voice, all from one seed; and the
viseme rig (phone timings → ΔM) with the synthetic speech corpus for stage 1 (speech_corpus/)."""

from .clip_file import write_synthetic_clip
from .speech import synthetic_speech
from .speech_plan import SpeechPlan
from .talking_clip import SyntheticClipInfo, iter_synthetic_talking_clip, synthetic_talking_clip
from ..mouth.viseme_rig import RIG_FPS, SpeakingStyle, VisemeRig, articulation_curves

__all__ = ["RIG_FPS", "SpeakingStyle", "SpeechPlan", "SyntheticClipInfo", "VisemeRig", "articulation_curves",
           "iter_synthetic_talking_clip", "synthetic_speech", "synthetic_talking_clip", "write_synthetic_clip"]
