"""Frame/sample timing: the one rounding rule every audio encoder follows."""

from fractions import Fraction

import numpy as np
import pytest

from resyncer_core.audio import frame_count_for, samples_spanned_by
from resyncer_core.errors import ResyncerInputError

NTSC = 30000 / 1001


@pytest.mark.parametrize(
    ("samples", "fps", "frames"),
    [
        (16000, 25, 25),  # exact multiples do not round up
        (16001, 25, 26),  # a partly covered last frame counts
        (15999, 25, 25),
        (1, 25, 1),
        (0, 25, 0),
        (16016, NTSC, 30),  # 30 NTSC frames last exactly 1.001 s, despite float fps
        (16017, NTSC, 31),
        (int(1.37 * 16000), 24, 33),
        (44100, 30, 30),
    ],
)
def test_frame_count_rounds_up_on_exact_fractions(samples, fps, frames):
    sample_rate = 44100 if samples == 44100 else 16000
    assert frame_count_for(samples, fps, sample_rate) == frames


@pytest.mark.parametrize("fps", [24, 25, 30, NTSC, 12.5])
def test_samples_spanned_by_inverts_frame_count(fps):
    for frames in range(0, 200, 7):
        assert frame_count_for(samples_spanned_by(frames, fps), fps) == frames


@pytest.mark.parametrize("fps", [0, -25, float("nan"), float("inf"), "25", True])
def test_bad_fps_is_rejected_in_one_line(fps):
    with pytest.raises(ResyncerInputError) as caught:
        frame_count_for(16000, fps)
    assert "fps" in str(caught.value) and "\n" not in str(caught.value)


def test_numpy_and_fraction_rates_are_accepted():
    assert frame_count_for(16016, np.float32(NTSC)) == frame_count_for(16016, Fraction(30000, 1001)) == 30


def test_negative_sample_count_is_rejected():
    with pytest.raises(ResyncerInputError):
        frame_count_for(-1, 25)
