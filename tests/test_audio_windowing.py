"""Long clips are encoded in overlapping windows with exactly one vector per frame."""

import numpy as np
import pytest
import torch

from resyncer_core.audio import AudioEncoder, EncodingWindow, MelAudioEncoder
from resyncer_core.audio.encoder import crossfade_weights, plan_windows
from resyncer_core.errors import ResyncerInputError


@pytest.mark.parametrize(("frame_count", "fps"), [(1, 25), (24, 24), (250, 25), (1001, 30000 / 1001)])
def test_windows_keep_every_frame_once_and_see_context(frame_count, fps):
    window = EncodingWindow(window_seconds=2.0, context_seconds=0.5)
    spans = plan_windows(frame_count, fps, window, alignment=320)
    assert [s.core_start for s in spans] == [0] + [s.core_end for s in spans[:-1]]
    assert spans[-1].core_end == frame_count
    context = int(np.ceil(0.5 * fps))
    for span in spans:
        assert span.frames_start == max(0, span.core_start - context)
        assert span.frames_end == min(frame_count, span.core_end + context)
        assert span.sample_start % 320 == 0 and span.sample_start <= span.frames_start * 16000 / fps
        assert span.sample_end == int(span.frames_end * 16000 / fps)


@pytest.mark.parametrize(("frame_count", "fps"), [(1, 25), (250, 25), (1001, 30000 / 1001)])
def test_crossfade_weights_sum_to_one_and_ramp_across_overlaps(frame_count, fps):
    spans = plan_windows(frame_count, fps, EncodingWindow(window_seconds=2.0, context_seconds=0.5))
    total = torch.zeros(frame_count, dtype=torch.float64)
    for index, span in enumerate(spans):
        weights = crossfade_weights(span, spans[index - 1] if index else None,
                                    spans[index + 1] if index + 1 < len(spans) else None)
        assert (weights > 0).all() and (weights <= 1).all()
        assert all(abs(step) < 0.1 for step in weights.diff().tolist())  # ramps, no jumps
        total[span.frames_start : span.frames_end] += weights
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_windowed_mel_equals_single_pass():
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 5).astype(np.float32)
    encoder = MelAudioEncoder()
    single_pass = encoder.encode(waveform, 30000 / 1001)
    encoder.window = EncodingWindow(window_seconds=1.0, context_seconds=0.3)
    assert torch.equal(encoder.encode(waveform, 30000 / 1001), single_pass)


class FrameIndexEncoder(AudioEncoder):
    """Features that depend on the frame alone, never on the window: blending windows must give
    them back unchanged."""

    crossfade_windows = True

    def encode_segment(self, segment, segment_start, frame_indices, fps):
        values = torch.sin(frame_indices.float()[:, None] * torch.arange(1, self.feature_dim + 1) * 0.01)
        return values[None].expand(segment.shape[0], -1, -1)


@pytest.mark.parametrize("context_seconds", [0.3, 1.5])  # 1.5 s: three windows overlap
def test_crossfaded_windows_put_every_frame_back_in_place(context_seconds):
    encoder = FrameIndexEncoder(feature_dim=3, window=EncodingWindow(window_seconds=1.0, context_seconds=context_seconds))
    features = encoder.encode(np.zeros(16000 * 5, dtype=np.float32), 24)
    expected = torch.sin(torch.arange(120.0)[:, None] * torch.arange(1, 4) * 0.01)
    torch.testing.assert_close(features, expected)


@pytest.mark.parametrize(("window_seconds", "context_seconds"), [(0.0, 1.0), (1.0, -1.0)])
def test_window_settings_are_checked(window_seconds, context_seconds):
    with pytest.raises(ResyncerInputError):
        EncodingWindow(window_seconds, context_seconds)


@pytest.mark.parametrize(
    ("waveform", "frame_count", "fps"),
    [
        (torch.zeros(16000), 25, 25),  # not batched
        (torch.zeros(1, 16000), 0, 25),
        (torch.zeros(1, 16000), 25, 0),
        (torch.zeros(1, 0), 1, 25),
    ],
)
def test_forward_inputs_are_checked(waveform, frame_count, fps):
    with pytest.raises(ResyncerInputError):
        MelAudioEncoder()(waveform, frame_count, fps)


def test_forward_moves_the_waveform_to_the_encoders_device():
    """A CPU waveform given to an encoder on another device (the meta device stands in for a
    GPU here) is moved there instead of failing inside the STFT or the CNN."""
    encoder = MelAudioEncoder().to("meta")
    features = encoder(torch.zeros(1, 16000), 25, 25)
    assert features.device.type == "meta" and tuple(features.shape) == (1, 25, 1280)
