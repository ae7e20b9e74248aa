"""metrics.visible_sync: aperture per phone class, spread, lag and the lower-face sharpness ratio."""

from __future__ import annotations

import numpy as np

from resyncer_core.face.topology import template_vertices
from resyncer_core.metrics.visible_sync import frame_phones, sharpness_ratio, visible_sync

PHONES = [("SIL", 0.0, 0.4), ("M", 0.4, 0.6), ("AA", 0.6, 1.0), ("B", 1.0, 1.2), ("AE1", 1.2, 1.6)]


def test_classes_differences_and_lag():
    labels = frame_phones(PHONES, 45, 25.0)
    assert labels[0] == "SIL" and labels[12] == "M" and labels[20] == "AA" and labels[35] == "AE" and labels[44] == "SIL"
    openness = np.isin(labels, ["AA", "AE"]).astype(float)
    late = np.roll(0.02 + 0.1 * openness, 2)  # the mouth opens 2 frames after the sound
    result = visible_sync(late, labels, openness)
    assert result.best_lag == 2 and result.best_lag_correlation > result.correlation
    on_time = visible_sync(0.02 + 0.1 * openness, labels, openness)
    assert np.isclose(on_time.open_minus_bilabial, 0.1) and np.isclose(on_time.open_minus_silence, 0.1)
    assert on_time.visible and not visible_sync(0.02 + 0.01 * openness, labels, openness).visible
    with_gap = 0.02 + 0.1 * openness
    with_gap[:5] = np.nan  # untracked frames do not count
    assert visible_sync(with_gap, labels).frames == 40


def test_sharpness_ratio_of_a_blurred_lower_face():
    rng = np.random.default_rng(0)
    frame = rng.uniform(0, 255, (200, 200, 3))
    landmarks = template_vertices()[:, :2] * [8, -8] + [100, 100]  # a face in the middle, y down
    blurred = (frame + np.roll(frame, 1, 0) + np.roll(frame, 1, 1) + np.roll(frame, (1, 1), (0, 1))) / 4
    assert np.isclose(sharpness_ratio(frame, frame, landmarks), 1.0)
    assert sharpness_ratio(blurred, frame, landmarks) < 0.5
