"""Which source frame each output frame shows, when audio and video lengths differ.

The output has one frame per frame the driving signal (audio, or a driver video) spans:

    driving longer than the video   "pingpong": the video plays forward, then backward, then
                                    forward again … (no jump cut at the loop point);
                                    "trim": the output stops with the video, the audio is cut
    driving shorter than the video  "trim": the output stops with the audio;
                                    "pad": the whole video plays, the audio is padded with silence

Default modes keep the output exactly as long as the driving audio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..audio.loading import load_soundtrack
from ..audio.timing import samples_spanned_by
from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..stages.progress import PipelineCallbacks, StageClock
from ..stages.tracking import track_video
from ..video import VideoInfo

LONG_AUDIO_MODES = ("pingpong", "trim")
SHORT_AUDIO_MODES = ("trim", "pad")


def pingpong_indices(count: int, video_frames: int) -> np.ndarray:
    """Source frames for `count` output frames over a video of `video_frames`: 0, 1, …, n-1,
    n-2, …, 1, 0, 1, … (each end frame shown once per bounce)."""
    if video_frames == 1:
        return np.zeros(count, np.int64)
    period = 2 * (video_frames - 1)
    phase = np.arange(count, dtype=np.int64) % period
    return np.where(phase < video_frames, phase, period - phase)


@dataclass(frozen=True)
class FramePlan:
    """source_indices [N]: the source video frame shown at each of the N output frames."""

    source_indices: np.ndarray
    driving_frames: int

    @property
    def frame_count(self) -> int:
        return len(self.source_indices)

    @property
    def source_frames_needed(self) -> int:
        """How many leading frames of the source video the plan reads (and pass 1 tracks)."""
        return int(self.source_indices.max()) + 1

    def fit_audio(self, waveform: np.ndarray, fps: float, sample_rate: int) -> np.ndarray:
        """The driving audio ([samples] or [channels, samples]) cut or silence-padded to the
        output's length; unchanged when the output spans exactly the driving frames."""
        if self.frame_count == self.driving_frames:
            return waveform
        samples = samples_spanned_by(self.frame_count, fps, sample_rate)
        if samples <= waveform.shape[-1]:
            return waveform[..., :samples]
        padding = [(0, 0)] * (waveform.ndim - 1) + [(0, samples - waveform.shape[-1])]
        return np.pad(waveform, padding)


def soundtrack_for(plan: FramePlan, path: str | os.PathLike, fps: float) -> tuple[np.ndarray, int]:
    """The output video's audio: `path`'s sound at its own sample rate and channels (the models
    hear 16 kHz mono, viewers should not), cut or padded to the plan's length."""
    waveform, rate = load_soundtrack(path)
    return plan.fit_audio(waveform, fps, rate), rate


def plan_frames(video_frames: int, driving_frames: int, long_audio: str = "pingpong",
                short_audio: str = "trim") -> FramePlan:
    """The FramePlan for a video of `video_frames` driven by `driving_frames` frames of audio
    (or driver video) at the video's frame rate; modes as in the module docstring."""
    if long_audio not in LONG_AUDIO_MODES:
        raise ResyncerInputError(f"long-audio mode {long_audio!r} is unknown; use one of {', '.join(LONG_AUDIO_MODES)}")
    if short_audio not in SHORT_AUDIO_MODES:
        raise ResyncerInputError(f"short-audio mode {short_audio!r} is unknown; use one of {', '.join(SHORT_AUDIO_MODES)}")
    if video_frames < 1 or driving_frames < 1:
        raise ResyncerInputError(f"need at least one video frame and one driving frame, got {video_frames} and {driving_frames}")
    if driving_frames > video_frames:
        count = driving_frames if long_audio == "pingpong" else video_frames
        return FramePlan(pingpong_indices(count, video_frames), driving_frames)
    count = driving_frames if short_audio == "trim" else video_frames
    return FramePlan(np.arange(count, dtype=np.int64), driving_frames)


def track_for_plan(tracker, info: VideoInfo, driving_frames: int, long_audio: str = "pingpong",
                   short_audio: str = "trim", clock: StageClock | None = None,
                   callbacks: PipelineCallbacks | None = None) -> tuple[FaceTrack, FramePlan]:
    """Plans the output frames of the probed video `info` driven by `driving_frames` frames
    and tracks the source frames the plan shows. A damaged file can decode fewer frames than
    it declares; the plan is then redone over the frames that were decoded."""
    plan = plan_frames(info.frame_count, driving_frames, long_audio, short_audio)
    track = track_video(tracker, info.path, plan.source_frames_needed, clock=clock, callbacks=callbacks, info=info)
    if len(track) < plan.source_frames_needed:
        plan = plan_frames(len(track), driving_frames, long_audio, short_audio)
    return track, plan
