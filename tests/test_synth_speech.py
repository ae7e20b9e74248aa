"""The synthetic voice and its shared timeline."""

from __future__ import annotations

import numpy as np
import pytest

from resyncer_core.errors import ResyncerInputError
from resyncer_core.synth import SpeechPlan, synthetic_speech


def test_speech_has_requested_duration_and_is_not_silent():
    waveform = synthetic_speech(2.5, sample_rate=16000, seed=0)
    assert waveform.shape == (40000,) and waveform.dtype == np.float32
    assert np.abs(waveform).max() <= 1.0
    assert np.sqrt(np.mean(waveform ** 2)) > 0.02


def test_speech_is_deterministic_and_prefix_stable():
    short = synthetic_speech(1.5, seed=7)
    np.testing.assert_array_equal(short, synthetic_speech(1.5, seed=7))
    np.testing.assert_array_equal(synthetic_speech(3.0, seed=7)[: len(short)], short)
    assert not np.array_equal(short, synthetic_speech(1.5, seed=8))


def test_loudness_follows_the_plan_envelope():
    sample_rate, window = 16000, 320  # 20 ms
    waveform = synthetic_speech(6.0, sample_rate, seed=1)
    rms = np.sqrt(np.mean(waveform.reshape(-1, window) ** 2, axis=1))
    centres = (np.arange(len(rms)) + 0.5) * window / sample_rate
    plan = SpeechPlan.generate(6.0, seed=1)
    assert np.corrcoef(rms, plan.envelope(centres))[0, 1] > 0.9
    # Windows with no syllable sounding within 20 ms either side are exactly silent.
    nearby = plan.envelope(centres[:, None] + np.linspace(-0.02, 0.02, 41)[None, :]).max(axis=1)
    assert (nearby == 0).sum() > 20 and rms[nearby == 0].max() == 0


def test_speech_has_formant_energy_in_the_speech_band():
    sample_rate = 16000
    spectrum = np.abs(np.fft.rfft(synthetic_speech(4.0, sample_rate, seed=2))) ** 2
    frequencies = np.fft.rfftfreq(4 * sample_rate, 1 / sample_rate)
    speech_band = spectrum[(frequencies > 150) & (frequencies < 3500)].sum()
    assert speech_band / spectrum.sum() > 0.9


def test_plan_has_syllables_and_pauses_at_a_speech_rate():
    plan = SpeechPlan.generate(20.0, seed=0)
    rate = np.sum(plan.starts < 20.0) / 20.0
    assert 2.0 < rate < 7.0  # syllables per second
    gaps = plan.starts[1:] - (plan.starts[:-1] + plan.durations[:-1])
    assert gaps.min() >= 0 and gaps.max() >= 0.25  # no overlap, and real pauses


@pytest.mark.parametrize("duration, sample_rate", [(0, 16000), (-1, 16000), (1.0, 100)])
def test_bad_speech_arguments_raise(duration, sample_rate):
    with pytest.raises(ResyncerInputError):
        synthetic_speech(duration, sample_rate)
