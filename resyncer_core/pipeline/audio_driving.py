"""Stage 1 for the audio-driven pipelines (lip-sync, style transfer, lip-synced face swap):
driving audio → audio features → Style-SyncFormer (at 25 fps) → canonical meshes, one per output frame."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..audio import load_audio
from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..stages.functions import compute_audio_features, frames_at_rate, predict_meshes, style_reference_at_rate
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..video import probe_video


def _style_audio_features(models: PipelineModels, style_video: str | os.PathLike, fps: float,
                          start: int, length: int) -> torch.Tensor:
    """Features [length, A] at `fps` of the style reference's own audio (audio-aware SyncFormers only)."""
    if not probe_video(style_video).has_audio:
        raise ResyncerInputError(f"this Style-SyncFormer matches the style reference by its audio, but {style_video} "
                                 "has no audio track; give a style video with sound")
    features = compute_audio_features(models.audio_encoder, load_audio(style_video), fps, start + length)
    return features[start:]


def audio_driven_meshes(models: PipelineModels, waveform: np.ndarray, fps: float, frame_count: int,
                        style_track: FaceTrack, style_video: str | os.PathLike, template,
                        clock: StageClock, callbacks: PipelineCallbacks) -> torch.Tensor:
    """Meshes [frame_count,468,3] at `fps` on `template` speaking `waveform` (16 kHz mono), in
    the speaking style of T_S frames of `style_track` (the track of `style_video`).

    Stage 1 runs at the model's rate (25 fps, paper) whatever the video's: the audio features
    are computed at 25 fps, the style track is resampled to 25 fps before its window is
    chosen, and the predicted ΔM̂ is resampled to the video's frame times."""
    if not models.drives_from_audio:
        raise ResyncerInputError("audio-driven lip-sync needs the Wav2Vec2 encoder and the Style-SyncFormer; "
                                 "load the models with audio")
    config = models.syncformer.config
    model_fps = float(config.period)
    with clock.measure("audio"):
        features = compute_audio_features(models.audio_encoder, waveform, model_fps,
                                          frames_at_rate(frame_count, fps, model_fps))
        # T_S is the model's own: a SyncFormer trained on another reference length gets that length.
        style, start = style_reference_at_rate(style_track, model_fps, config.style_frames)
        style_audio = (_style_audio_features(models, style_video, model_fps, start, len(style))
                       if models.syncformer.uses_style_audio else None)
    callbacks.report("audio", 1, 1)

    def after_window(done: int, total: int) -> None:
        callbacks.check_cancel()
        callbacks.report("syncformer", done, total)

    with clock.measure("syncformer"):
        return predict_meshes(models.syncformer, features, style, template, style_audio, after_window,
                              fps=fps, frame_count=frame_count)
