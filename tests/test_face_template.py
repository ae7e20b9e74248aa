"""The neutral template M̄ (DESIGN §4): the mouth-closed rest face, not the speaking clip's mean."""

from __future__ import annotations

import numpy as np

from resyncer_core.face import topology
from resyncer_core.face.template import mouth_opening, neutral_template
from resyncer_core.synth.mesh_corpus import speaking_meshes
from resyncer_core.synth.speech_plan import SpeechPlan


def test_template_is_the_closed_mouth_face_not_the_clip_mean():
    canonical, rest = speaking_meshes(SpeechPlan.generate(4.0, 0), 100)
    openings = mouth_opening(canonical)
    assert openings.max() > openings.min() + 0.3  # the clip speaks
    template = neutral_template(canonical)
    clip_mean = canonical.mean(0)
    assert mouth_opening(template[None])[0] < np.percentile(openings, 25)
    # Closer to the rest face than the clip mean is, on the lower face where speech moves it.
    lower = topology.lower_face_vertices()
    assert np.abs(template - rest)[lower].mean() < 0.5 * np.abs(clip_mean - rest)[lower].mean()


def test_template_averages_the_most_closed_fifth_of_frames():
    canonical, _ = speaking_meshes(SpeechPlan.generate(2.0, 1), 50)
    closest = np.argsort(mouth_opening(canonical), kind="stable")[:10]
    np.testing.assert_allclose(neutral_template(canonical), canonical[closest].mean(0), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(neutral_template(canonical[:1]), canonical[0])
    np.testing.assert_array_equal(neutral_template(np.zeros((0, 468, 3))), topology.template_vertices())
