"""Mel-window features (Wav2Lip / StyleSync front-end)."""

import numpy as np
import pytest
import torch
from _audio_media import sine

from resyncer_core.audio import MelAudioEncoder, MelConfig, frame_count_for
from resyncer_core.audio.mel_features import mel_filterbank, wav2lip_log_mel
from resyncer_core.errors import ResyncerInputError

# Computed with librosa 0.11 (filters.mel, stft) and Wav2Lip's audio.py formulas.
LIBROSA_ROW_SUMS = {0: 0.0493640862, 20: 0.0493640825, 40: 0.0499235541, 60: 0.0501447618, 79: 0.0499795564}
LIBROSA_ROW_PEAK_BINS = {0: 5, 20: 40, 40: 86, 60: 181, 79: 366}
# Mel step 20 of a 0.5 s, 0.5-amplitude 1 kHz sine: bins 0, 10, 20, 24, 25, 26, 40, 79.
LIBROSA_1KHZ_STEP_20 = [-4.0, -4.0, -4.0, 1.0494496215, 2.5503499523, 2.1533696067, -4.0, -4.0]


@pytest.fixture(scope="module")
def encoder():
    return MelAudioEncoder().eval()


def log_mel(waveform):
    config = MelConfig()
    return wav2lip_log_mel(
        torch.as_tensor(waveform)[None], config, torch.from_numpy(mel_filterbank(config)), torch.hann_window(800)
    )[0]


def test_filterbank_matches_librosa_slaney():
    filters = mel_filterbank(MelConfig())
    assert filters.shape == (80, 401) and (filters >= 0).all()
    for row, total in LIBROSA_ROW_SUMS.items():
        assert filters[row].sum() == pytest.approx(total, rel=1e-5)
        assert filters[row].argmax() == LIBROSA_ROW_PEAK_BINS[row]


def test_log_mel_matches_wav2lip_reference():
    mel = log_mel(sine(1000, 0.5, 16000))
    assert mel.shape == (80, 41)
    np.testing.assert_allclose(mel[[0, 10, 20, 24, 25, 26, 40, 79], 20].numpy(), LIBROSA_1KHZ_STEP_20, atol=1e-3)


@pytest.mark.parametrize("fps", [24, 25, 30000 / 1001])
@pytest.mark.parametrize("seconds", [1.37, 0.09])
def test_shape_range_and_determinism(encoder, fps, seconds):
    waveform = sine(440, seconds, 16000) + 0.01 * np.random.default_rng(0).standard_normal(round(seconds * 16000))
    features = encoder.encode(waveform.astype(np.float32), fps)
    assert features.shape == (frame_count_for(len(waveform), fps), 1280)
    assert features.abs().max() <= 4.0
    assert torch.equal(features, encoder.encode(waveform.astype(np.float32), fps))


def test_frame_windows_start_at_wav2lip_index_and_repeat_the_last_step_at_the_end(encoder):
    waveform = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    features = encoder.encode(waveform, 25).reshape(-1, 80, 16)
    mel = log_mel(waveform)  # 81 steps
    for frame in (0, 7, 19):
        start = int(80 * frame / 25)
        torch.testing.assert_close(features[frame], mel[:, start : start + 16])
    last = features[24]  # starts at step 76: steps 76..80, then edge padding
    torch.testing.assert_close(last[:, :5], mel[:, 76:81])
    torch.testing.assert_close(last[:, 5:], mel[:, 80:81].expand(80, 11))


def test_silence_is_the_floor(encoder):
    assert torch.equal(encoder.encode(np.zeros(8000, np.float32), 25), torch.full((13, 1280), -4.0))


def test_config_is_checked():
    with pytest.raises(ResyncerInputError):
        MelConfig(sample_rate=22050)
    with pytest.raises(ResyncerInputError):
        MelConfig(fmax=9000.0)
