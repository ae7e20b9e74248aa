"""The viseme rig: phone timings → ΔM on the canonical mesh (closure, opening, rounding, coarticulation, style)."""

import numpy as np
import pytest
import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import lips
from resyncer_core.face.topology import NUM_VERTICES, template_vertices
from resyncer_core.mouth.phonemes import phone_segments, phone_visemes
from resyncer_core.mouth.viseme_rig import RIG_FPS, SpeakingStyle, VisemeRig, articulation_curves, frame_times

CMU_PHONES = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH").split()


@pytest.fixture(scope="module")
def rig():
    return VisemeRig()


def held(rig, phone, style=SpeakingStyle()):
    """The mesh in the middle of `phone` held for 0.4 s between silences."""
    delta = rig([("SIL", 0.0, 0.4), (phone, 0.4, 0.8), ("SIL", 0.8, 1.2)], frame_count=30, style=style)
    return rig.rest + delta[15]


def test_rest_pose_has_closed_lips_and_zero_displacement_in_silence(rig):
    assert lips.lip_aperture(torch.tensor(template_vertices())) > 0.3  # MediaPipe's model: lips parted
    assert abs(float(lips.lip_aperture(rig.rest))) < 1e-4
    delta = rig([("SIL", 0.0, 1.0)], frame_count=25)
    assert delta.shape == (25, NUM_VERTICES, 3)
    assert float(delta.abs().max()) < 1e-5


def test_bilabial_closes_open_vowel_opens_rounded_vowel_narrows(rig):
    rest_width = float(lips.mouth_width(rig.rest))
    assert abs(float(lips.lip_aperture(held(rig, "M")))) < 0.05
    assert float(lips.lip_aperture(held(rig, "AA"))) > 1.0
    assert float(lips.mouth_width(held(rig, "UW"))) < 0.85 * rest_width
    assert float(lips.mouth_width(held(rig, "IY"))) > 1.08 * rest_width
    # The jaw moves the chin, not the forehead.
    delta = held(rig, "AA") - rig.rest
    assert float(delta[152].norm()) > 1.0 and float(delta[10].norm()) < 1e-4


def test_bilabial_between_open_vowels_still_closes(rig):
    timings = [("SIL", 0.0, 0.2), ("AA", 0.2, 0.32), ("M", 0.32, 0.40), ("AA", 0.40, 0.52), ("SIL", 0.52, 1.0)]
    aperture = lips.lip_aperture(rig.rest + rig(timings, frame_count=25)).numpy()
    closure_frame = int(0.36 * RIG_FPS)
    assert aperture[closure_frame] < 0.1 * aperture.max()
    assert aperture[: closure_frame].max() > 0.6 and aperture[closure_frame + 1:].max() > 0.6


def test_coarticulation_is_smooth_and_anticipates_rounding():
    times = np.arange(0.0, 1.2, 0.005)  # 200 Hz: well above the frame rate
    timings = [("SIL", 0.0, 0.3), ("S", 0.3, 0.42), ("UW", 0.42, 0.62), ("N", 0.62, 0.7), ("SIL", 0.7, 1.2)]
    curves = articulation_curves(timings, times)
    steps = np.abs(np.diff(curves, axis=0)).max()
    assert steps < 0.08  # no jumps at phone boundaries (at most 0.08 per 5 ms)
    rounding = curves[:, 1]
    during_s = rounding[(times > 0.33) & (times < 0.40)]
    assert during_s.max() > 0.2  # the "s" of "soon" is already rounded
    assert rounding[times < 0.1].max() < 0.05  # but not in the middle of the pause before it


def test_style_amplitude_orders_the_opening_and_other_style_parameters_act(rig):
    apertures = [float(lips.lip_aperture(held(rig, "AA", SpeakingStyle(amplitude=a)))) for a in (0.55, 1.0, 1.5)]
    assert apertures[0] < apertures[1] < apertures[2]
    lips_heavy = held(rig, "UW", SpeakingStyle(jaw_lip_ratio=0.6))
    jaw_heavy = held(rig, "UW", SpeakingStyle(jaw_lip_ratio=1.7))
    assert lips.mouth_width(lips_heavy) < lips.mouth_width(jaw_heavy)
    asymmetric = held(rig, "AA", SpeakingStyle(asymmetry=0.3)) - rig.rest
    assert float(asymmetric[291].norm()) != pytest.approx(float(asymmetric[61].norm()), rel=0.05)
    resting = rig([("SIL", 0.0, 1.0)], frame_count=25, style=SpeakingStyle(rest_opening=0.15))
    assert float(lips.lip_aperture(rig.rest + resting[12])) > 0.1
    with pytest.raises(ResyncerInputError):
        SpeakingStyle(amplitude=0.0)
    rng = np.random.default_rng(0)
    assert len({SpeakingStyle.sample(rng) for _ in range(5)}) == 5


def test_rig_works_on_another_identity_shape():
    rng = np.random.default_rng(1)
    template = template_vertices() * np.array([1.1, 0.95, 1.0]) + rng.normal(0, 0.03, (NUM_VERTICES, 3))
    rig = VisemeRig(template.astype(np.float32))
    assert abs(float(lips.lip_aperture(held(rig, "B")))) < 0.05
    assert float(lips.lip_aperture(held(rig, "AA"))) > 1.0


def test_phone_tables_cover_arpabet_ipa_and_fillers():
    for phone in CMU_PHONES:
        assert phone_visemes(phone + "1") == phone_visemes(phone) == phone_visemes(phone.lower())
    assert len(phone_visemes("AY")) == 2
    for ipa, arpabet in [("ð", "DH"), ("ˈaɪ", "AY"), ("tʃ", "CH"), ("ɹ", "R"), ("iː", "IY"), ("ʊ", "UH"), ("ɚ", "ER")]:
        assert phone_visemes(ipa) == phone_visemes(arpabet), ipa
    for filler in ("SIL", "sil", "+NSN+", "+SPN+", "_", "<s>"):
        assert phone_visemes(filler) == ("sil",)
    with pytest.raises(ResyncerInputError, match="unknown phone"):
        phone_visemes("QQ")
    with pytest.raises(ResyncerInputError):
        phone_segments([("AA", 1.0, 0.5)])


def test_frame_times_are_frame_centres():
    assert np.allclose(frame_times(3), [0.02, 0.06, 0.10])
