"""Stage 1 for the audio-driven pipelines (lip-sync, style transfer, lip-synced face swap):
driving audio → Wav2Vec2 features → Style-SyncFormer → canonical meshes, one per output frame."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..audio import load_audio
from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..stages.functions import choose_style_window, compute_audio_features, predict_meshes, style_reference_from_track
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..video import probe_video


def _style_audio_features(models: PipelineModels, style_video: str | os.PathLike, fps: float,
                          start: int, length: int) -> torch.Tensor:
    """Features [length, A] of the style reference's own audio (audio-aware SyncFormers only)."""
    if not probe_video(style_video).has_audio:
        raise ResyncerInputError(f"this Style-SyncFormer matches the style reference by its audio, but {style_video} "
                                 "has no audio track; give a style video with sound")
    features = compute_audio_features(models.audio_encoder, load_audio(style_video), fps, start + length)
    return features[start:]


def audio_driven_meshes(models: PipelineModels, waveform: np.ndarray, fps: float, frame_count: int,
                        style_track: FaceTrack, style_video: str | os.PathLike, template,
                        clock: StageClock, callbacks: PipelineCallbacks) -> torch.Tensor:
    """Meshes [frame_count,468,3] on `template` speaking `waveform` (16 kHz mono) at `fps`, in
    the speaking style of T_S frames of `style_track` (the window choose_style_window picks),
    the track of `style_video`."""
    if not models.drives_from_audio:
        raise ResyncerInputError("audio-driven lip-sync needs the Wav2Vec2 encoder and the Style-SyncFormer; "
                                 "load the models with audio")
    with clock.measure("audio"):
        features = compute_audio_features(models.audio_encoder, waveform, fps, frame_count)
        # T_S is the model's own: a SyncFormer trained on another reference length gets that length.
        style_length = models.syncformer.config.style_frames
        start = choose_style_window(style_track, style_length)
        style = style_reference_from_track(style_track, start, style_length)
        style_audio = (_style_audio_features(models, style_video, style_track.fps, start, len(style))
                       if models.syncformer.uses_style_audio else None)
    callbacks.report("audio", 1, 1)

    def after_window(done: int, total: int) -> None:
        callbacks.check_cancel()
        callbacks.report("syncformer", done, total)

    with clock.measure("syncformer"):
        return predict_meshes(models.syncformer, features, style, template, style_audio, after_window)
