"""How audio samples and video frames line up in time.

Convention used by every audio encoder: video frame j is shown from j/fps to (j+1)/fps, and
a clip of S samples spans ceil(S * fps / sample_rate) frames. Rounding up means every sample
of audio falls inside some frame (the last frame may be only partly covered; the encoders
treat the missing part as silence), and any non-empty clip has at least one frame.
Arithmetic is done on exact fractions so that 25 fps * 1 s is 25 frames, not 26, and NTSC
rates given as floats (30000/1001 = 29.97002997...) round the same way as their fractions.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

from ..errors import ResyncerInputError

SAMPLE_RATE = 16000

# Large enough to recover 30000/1001 and 24000/1001 exactly from their float values.
_FPS_MAX_DENOMINATOR = 1_000_000


def exact_fps(fps: float) -> Fraction:
    """The frame rate as a fraction; raises ResyncerInputError unless it is finite and > 0."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise ResyncerInputError(f"fps must be a number, got {type(fps).__name__}; pass the video frame rate.")
    if not math.isfinite(fps) or fps <= 0:
        raise ResyncerInputError(f"fps must be a positive frame rate, got {fps}; pass the video frame rate (e.g. 25).")
    exact = fps if isinstance(fps, Fraction) else Fraction(float(fps))
    return exact.limit_denominator(_FPS_MAX_DENOMINATOR)


def frame_count_for(num_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of video frames at `fps` that `num_samples` samples at `sample_rate` span.

    ceil(num_samples * fps / sample_rate): the last, partly covered frame counts.
    """
    if num_samples < 0:
        raise ResyncerInputError(f"num_samples must be >= 0, got {num_samples}.")
    if sample_rate <= 0:
        raise ResyncerInputError(f"sample_rate must be positive, got {sample_rate}; pass the audio rate in Hz.")
    return math.ceil(Fraction(int(num_samples)) * exact_fps(fps) / int(sample_rate))


def samples_spanned_by(frame_count: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """floor(frame_count * sample_rate / fps): the samples before frame `frame_count` starts,
    i.e. the longest clip that frame_count_for maps back to `frame_count` frames; it is also
    the index of the first sample of frame `frame_count`."""
    return math.floor(Fraction(int(frame_count)) * int(sample_rate) / exact_fps(fps))
