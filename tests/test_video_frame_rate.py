from fractions import Fraction

import pytest

from resyncer_core.errors import ResyncerInputError
from resyncer_core.video import as_frame_rate


@pytest.mark.parametrize("given, exact", [
    (25, Fraction(25)),
    (25.0, Fraction(25)),
    (29.97, Fraction(30000, 1001)),
    (23.976, Fraction(24000, 1001)),
    (59.94, Fraction(60000, 1001)),
    (12.5, Fraction(25, 2)),
    ("30000/1001", Fraction(30000, 1001)),
    (Fraction(30000, 1001), Fraction(30000, 1001)),
])
def test_frame_rates_become_exact_fractions(given, exact):
    assert as_frame_rate(given) == exact


@pytest.mark.parametrize("bad", [0, -25, 5000, "fast", float("nan"), True, None])
def test_bad_frame_rates_raise_one_line(bad):
    with pytest.raises(ResyncerInputError) as excinfo:
        as_frame_rate(bad)
    assert "\n" not in str(excinfo.value)
