"""Frame rates as exact fractions.

A float frame rate loses the NTSC rates (29.97 is really 30000/1001); carried as a float,
29.97 drifts by a frame every ~17 minutes against the audio. Everything in `video/` therefore
keeps the rate as a `Fraction` and only prints it as a float.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Real

from ..errors import ResyncerInputError

FrameRate = int | float | str | Fraction

_MAX_FPS = 1000
# A float within this distance of an NTSC rate n·1000/1001 is taken to mean that rate:
# people type 29.97 or 23.976, never 30000/1001.
_NTSC_TOLERANCE = 1e-3


def as_frame_rate(fps: FrameRate) -> Fraction:
    """Exact frame rate from an int, a Fraction, a "num/den" string or a float.

    Floats close to an NTSC rate snap to it (29.97 -> 30000/1001, 59.94 -> 60000/1001);
    other floats become the nearest fraction with a denominator up to 1001 (12.5 -> 25/2).
    """
    rate = _parse(fps)
    if not (0 < rate <= _MAX_FPS):
        raise ResyncerInputError(f"fps {fps!r} is out of range; give a frame rate between 0 and {_MAX_FPS}, e.g. 25")
    return rate


def _parse(fps: FrameRate) -> Fraction:
    if isinstance(fps, bool):
        raise ResyncerInputError(f"fps {fps!r} is not a frame rate; give a number such as 25 or 30000/1001")
    if isinstance(fps, (int, Fraction)):
        return Fraction(fps)
    if isinstance(fps, str):
        try:
            return Fraction(fps.strip())
        except (ValueError, ZeroDivisionError):
            raise ResyncerInputError(f"fps {fps!r} is not a frame rate; give a number such as 25 or 30000/1001") from None
    if isinstance(fps, Real) and math.isfinite(fps):
        return _from_float(float(fps))
    raise ResyncerInputError(f"fps {fps!r} is not a frame rate; give a number such as 25 or 30000/1001")


def _from_float(fps: float) -> Fraction:
    ntsc_multiple = round(fps * 1001 / 1000)
    ntsc_rate = Fraction(ntsc_multiple * 1000, 1001)
    if ntsc_multiple > 0 and abs(fps - ntsc_rate) < _NTSC_TOLERANCE and abs(fps - ntsc_multiple) > _NTSC_TOLERANCE:
        return ntsc_rate
    return Fraction(fps).limit_denominator(1001)
