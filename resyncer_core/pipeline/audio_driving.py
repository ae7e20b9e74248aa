"""Stage 1 for the audio-driven pipelines (lip-sync, style transfer, lip-synced face swap):
driving audio → audio features → Style-SyncFormer (at 25 fps) → canonical meshes, one per output frame.

The user's controls (MouthControls, DESIGN §4 "Speaking style when the target does not speak"):
a shipped style preset in place of the video's style, and a strength that scales ΔM̂. A style
reference that shows no speech (a still, a silent stretch) is replaced by the default preset,
with one line saying so; the mouth is drawn on the closed neutral of the template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio
from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..mouth.style import (
    DEFAULT_STYLE_PRESET,
    check_strength,
    check_style_preset,
    closed_neutral,
    no_style_reason,
    preset_style_reference,
    with_strength,
)
from ..stages.functions import compute_audio_features, frames_at_rate, predict_meshes, style_reference_at_rate
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..video import probe_video


@dataclass(frozen=True)
class MouthControls:
    """Stage-1 controls: `style_preset` (a STYLE_PRESETS name) replaces the style video's own
    style; `strength` scales the predicted motion ΔM̂ (1: the model's own, 0: a still mouth)."""

    style_preset: str | None = None
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.style_preset is not None:
            check_style_preset(self.style_preset)
        check_strength(self.strength)


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
                        clock: StageClock, callbacks: PipelineCallbacks,
                        controls: MouthControls = MouthControls()) -> torch.Tensor:
    """Meshes [frame_count,468,3] at `fps` on `template` speaking `waveform` (16 kHz mono), in
    the speaking style of T_S frames of `style_track` (the track of `style_video`).

    Stage 1 runs at the model's rate (25 fps, paper) whatever the video's: the audio features
    are computed at 25 fps, the style track is resampled to 25 fps before its window is
    chosen, and the predicted ΔM̂ is resampled to the video's frame times. `controls` pick a
    preset style and scale the motion; the mouth is drawn on the closed neutral of `template`."""
    if not models.drives_from_audio:
        raise ResyncerInputError("audio-driven lip-sync needs the Wav2Vec2 encoder and the Style-SyncFormer; "
                                 "load the models with audio")
    config = models.syncformer.config
    model_fps = float(config.period)
    with clock.measure("audio"):
        features = compute_audio_features(models.audio_encoder, waveform, model_fps,
                                          frames_at_rate(frame_count, fps, model_fps))
        # T_S is the model's own: a SyncFormer trained on another reference length gets that length.
        style, style_audio = _style_reference(models, style_track, style_video, model_fps, controls, callbacks)
    callbacks.report("audio", 1, 1)

    def after_window(done: int, total: int) -> None:
        callbacks.check_cancel()
        callbacks.report("syncformer", done, total)

    with clock.measure("syncformer"):
        closed = torch.from_numpy(closed_neutral(template))
        meshes = predict_meshes(models.syncformer, features, style, closed, style_audio, after_window,
                                fps=fps, frame_count=frame_count)
        return with_strength(meshes, closed, controls.strength)


def _style_reference(models: PipelineModels, style_track: FaceTrack, style_video: str | os.PathLike | None, fps: float,
                     controls: MouthControls, callbacks: PipelineCallbacks) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(ΔM_ref [T_S,468,3], its audio features or None) at `fps`: the preset asked for, else the
    style video's most moving window, else (it shows no speech) the default preset."""
    config = models.syncformer.config
    preset = controls.style_preset
    if preset is None:
        style, start = style_reference_at_rate(style_track, fps, config.style_frames)
        reason = no_style_reason(style_track.template, style)
        if reason is None:
            audio = (_style_audio_features(models, style_video, fps, start, len(style))
                     if models.syncformer.uses_style_audio else None)
            return style, audio
        preset = DEFAULT_STYLE_PRESET
        source = Path(style_video).name if style_video is not None else "the style reference"
        callbacks.notify(f"{source} {reason} (--style chooses another)")
    if models.syncformer.uses_style_audio:
        raise ResyncerInputError(f"this Style-SyncFormer takes its style from a reference's audio, which the "
                                 f"'{preset}' preset does not have; give a talking video as the style reference")
    return preset_style_reference(preset, config.style_frames), None
