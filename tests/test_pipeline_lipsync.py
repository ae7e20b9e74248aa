"""Audio-driven lip-sync end to end with tiny random models: frame counts and audio length,
untouched pixels outside the blend mask, length modes, faceless video, cancellation.

Bit-identity outside the mask is checked on the frames the engine hands to the encoder
(the on_frames callback), not on the decoded MP4: H.264 at any CRF, and even the RGB → YUV
conversion before it, changes pixel values, so a decoded comparison could only test the
codec. The frames the callback sees are exactly the ones encoded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _pipeline_media import FPS, faceless_clip, leftovers, speech_wav, talking_clip, tiny_models
from resyncer_core.audio import SAMPLE_RATE, load_audio
from resyncer_core.pipeline import (PipelineCallbacks, PipelineCancelled, RenderOptions, lipsync_video,
                                    load_pipeline_models)
from resyncer_core.pipeline.chunking import pingpong_indices
from resyncer_core.synth import write_synthetic_clip
from resyncer_core.video import probe_video, read_frames

FAST = RenderOptions(x264_preset="ultrafast")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return load_pipeline_models(tiny_models(tmp_path_factory))


def audio_seconds(path) -> float:
    """Seconds of sound a player decodes from the file's audio track."""
    return len(load_audio(path)) / SAMPLE_RATE


AAC_FRAME_SECONDS = 1024 / SAMPLE_RATE  # one AAC frame at 16 kHz, the rate of the test WAVs (muxed at their own rate)


class FrameCheck:
    """on_frames sink: checks every chunk as it passes and keeps only small summaries."""

    def __init__(self):
        self.source_indices, self.inputs_checked, self.changed_frames = [], 0, 0
        self.outside_mismatches = 0
        self.largest_mask_share = 0.0

    def __call__(self, chunk):
        self.source_indices.extend(chunk.source_indices.tolist())
        for before, after, region in zip(chunk.input_frames, chunk.output_frames, chunk.pasted):
            weights = np.zeros(before.shape[:2], np.float32)
            if region is not None:
                weights[region.window.slices()] = region.weights.numpy()
            outside = weights == 0
            self.outside_mismatches += int((after[outside] != before[outside]).sum())
            self.changed_frames += int(not np.array_equal(after, before))
            self.largest_mask_share = max(self.largest_mask_share, float((~outside).mean()))


def test_720p_lipsync_keeps_length_and_the_pixels_outside_the_mask(tmp_path, models):
    video = write_synthetic_clip(tmp_path / "target.mp4", 10.0, FPS, (720, 1280), with_audio=False, preset="ultrafast")
    audio = speech_wav(tmp_path / "speech.wav", 10.0)
    check = FrameCheck()
    result = lipsync_video(video, audio, tmp_path / "out.mp4", models, options=FAST,
                           callbacks=PipelineCallbacks(on_frames=check))
    info = probe_video(tmp_path / "out.mp4")
    assert info.frame_count == result.frames_written == 250
    assert info.frame_rate == FPS and (info.height, info.width) == (720, 1280)
    assert result.frames_without_face == 0
    assert abs(audio_seconds(tmp_path / "out.mp4") - len(load_audio(audio)) / SAMPLE_RATE) <= AAC_FRAME_SECONDS
    assert check.source_indices == list(range(250))
    assert check.outside_mismatches == 0
    assert check.changed_frames == 250
    assert 0 < check.largest_mask_share < 0.05  # the lower face of a 720p head-and-shoulders frame
    assert set(result.stage_seconds) >= {"decode", "track", "audio", "syncformer", "render", "generator", "blend", "encode"}


def test_long_audio_pingpongs_the_video_by_default(tmp_path_factory, tmp_path, models):
    video = talking_clip(tmp_path_factory, 1.2)  # 30 frames
    audio = speech_wav(tmp_path / "long.wav", 3.0)  # 75 frames
    check = FrameCheck()
    result = lipsync_video(video, audio, tmp_path / "out.mp4", models, options=RenderOptions(chunk_size=7),
                           callbacks=PipelineCallbacks(on_frames=check))
    assert result.frames_written == probe_video(tmp_path / "out.mp4").frame_count == 75
    assert check.source_indices == pingpong_indices(75, 30).tolist()
    assert check.source_indices[28:32] == [28, 29, 28, 27]
    assert check.outside_mismatches == 0
    assert abs(audio_seconds(tmp_path / "out.mp4") - 3.0) <= AAC_FRAME_SECONDS


def test_pingpong_reads_backwards_through_keyframes(tmp_path, models):
    video = faceless_clip(tmp_path / "long.mp4", 300, size=(64, 96))  # x264 puts a keyframe at least every 250
    source = read_frames(video)
    seen = {}

    def keep_inputs(chunk):
        for index, frame in zip(chunk.source_indices, chunk.input_frames):
            seen.setdefault(int(index), []).append(frame)

    audio = speech_wav(tmp_path / "long.wav", 20.0)  # 500 frames: forward 300, back 200
    lipsync_video(video, audio, tmp_path / "out.mp4", models, options=RenderOptions(chunk_size=64, x264_preset="ultrafast"),
                  callbacks=PipelineCallbacks(on_frames=keep_inputs))
    assert len(seen) == 300
    for index, frames in seen.items():
        assert all(np.array_equal(frame, source[index]) for frame in frames)


def test_long_audio_trim_cuts_the_audio(tmp_path_factory, tmp_path, models):
    video = talking_clip(tmp_path_factory, 1.2)
    audio = speech_wav(tmp_path / "long.wav", 3.0)
    lipsync_video(video, audio, tmp_path / "out.mp4", models, long_audio="trim", options=FAST)
    assert probe_video(tmp_path / "out.mp4").frame_count == 30
    assert abs(audio_seconds(tmp_path / "out.mp4") - 30 / FPS) <= AAC_FRAME_SECONDS


@pytest.mark.parametrize("mode, frames", [("trim", 20), ("pad", 30)])
def test_short_audio_trims_the_video_or_pads_silence(tmp_path_factory, tmp_path, models, mode, frames):
    video = talking_clip(tmp_path_factory, 1.2)
    audio = speech_wav(tmp_path / "short.wav", 0.8)  # 20 frames
    result = lipsync_video(video, audio, tmp_path / "out.mp4", models, short_audio=mode, options=FAST)
    assert result.frames_written == probe_video(tmp_path / "out.mp4").frame_count == frames
    assert abs(audio_seconds(tmp_path / "out.mp4") - frames / FPS) <= AAC_FRAME_SECONDS


def test_output_audio_keeps_the_driving_audios_own_sample_rate(tmp_path_factory, tmp_path, models):
    import av

    from resyncer_core.synth import synthetic_speech
    from resyncer_core.synth.clip_file import write_wav

    video = talking_clip(tmp_path_factory, 1.2)
    audio = write_wav(tmp_path / "speech44k.wav", synthetic_speech(1.2, 44100, 1), 44100)
    lipsync_video(video, audio, tmp_path / "out.mp4", models, options=FAST)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].rate == 44100
    assert abs(audio_seconds(tmp_path / "out.mp4") - 1.2) <= AAC_FRAME_SECONDS


def test_style_from_another_video(tmp_path_factory, tmp_path, models):
    video = talking_clip(tmp_path_factory, 1.2)
    style = talking_clip(tmp_path_factory, 4.0, seed=5)
    audio = speech_wav(tmp_path / "speech.wav", 1.2)
    result = lipsync_video(video, audio, tmp_path / "out.mp4", models, style_from=style, options=FAST)
    assert result.frames_written == 30


def test_frames_without_a_face_pass_through_and_are_counted(tmp_path, models):
    video = faceless_clip(tmp_path / "faceless.mp4", 12)
    audio = speech_wav(tmp_path / "speech.wav", 12 / FPS)
    check = FrameCheck()
    result = lipsync_video(video, audio, tmp_path / "out.mp4", models, options=FAST,
                           callbacks=PipelineCallbacks(on_frames=check))
    assert result.frames_written == 12 and result.frames_without_face == 12
    assert check.changed_frames == 0
    assert "12 without a face" in result.summary()


class CountingGenerator(torch.nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator, self.calls = generator, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.generator(*args, **kwargs)


def test_cancelling_stops_within_one_generator_batch_and_leaves_no_file(tmp_path_factory, tmp_path, models):
    video = talking_clip(tmp_path_factory, 1.2)
    audio = speech_wav(tmp_path / "speech.wav", 1.2)
    counting = CountingGenerator(models.generator)
    cancelling = type(models)(generator=counting, syncformer=models.syncformer, audio_encoder=models.audio_encoder)
    with pytest.raises(PipelineCancelled):
        lipsync_video(video, audio, tmp_path / "out.mp4", cancelling,
                      options=RenderOptions(batch_size=2, chunk_size=16),
                      callbacks=PipelineCallbacks(should_cancel=lambda: counting.calls >= 1))
    assert counting.calls == 1
    assert leftovers(tmp_path, "out.mp4") == []
