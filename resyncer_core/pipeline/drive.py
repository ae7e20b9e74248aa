"""Video-driven lip-sync (paper §3.2): a driver video's mesh displacements ΔM' on the target's
template. The output spans the driver's duration at the target's frame rate (length modes as
in chunking); the driver's audio, if it has any, is muxed in."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import torch

from ..face import FaceTracker
from ..stages.functions import meshes_from_driver, select_frames
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..stages.tracking import require_a_face, track_video
from ..video import probe_video
from .chunking import soundtrack_for, track_for_plan
from .engine import PipelineResult, RenderJob, RenderOptions, check_output_path, render_video


def driver_frames_at(driver_frames: int, driver_rate, target_rate) -> np.ndarray:
    """For each frame at `target_rate` during the driver's duration, the driver frame shown
    then (the one whose display interval contains that time)."""
    ratio = Fraction(driver_rate) / Fraction(target_rate)  # driver frames per target frame, exact
    count = max(1, math.ceil(driver_frames / ratio))
    shown = np.arange(count, dtype=np.int64) * ratio.numerator // ratio.denominator
    return np.minimum(shown, driver_frames - 1)


def drive_video(video: str | os.PathLike, driver: str | os.PathLike, output: str | os.PathLike,
                models: PipelineModels, long_audio: str = "pingpong", short_audio: str = "trim",
                options: RenderOptions | None = None, callbacks: PipelineCallbacks | None = None,
                tracker: FaceTracker | None = None) -> PipelineResult:
    output = check_output_path(output, video, driver)
    callbacks = callbacks or PipelineCallbacks()
    clock = StageClock()
    info, driver_info = probe_video(video), probe_video(driver)
    tracker = tracker or FaceTracker(models.device)
    driver_track = require_a_face(track_video(tracker, driver, clock=clock, callbacks=callbacks, info=driver_info),
                                  f"driver video {driver}")
    driver_indices = driver_frames_at(len(driver_track), driver_info.frame_rate, info.frame_rate)
    track, plan = track_for_plan(tracker, info, len(driver_indices), long_audio, short_audio, clock, callbacks)
    # Output frames past the driver's end ("pad") keep the target's template: a closed, neutral mouth.
    meshes = torch.from_numpy(np.repeat(track.template[None], plan.frame_count, axis=0))
    shown = min(plan.frame_count, len(driver_indices))
    meshes[:shown] = meshes_from_driver(select_frames(driver_track, driver_indices[:shown]), track)
    audio = soundtrack_for(plan, driver, info.fps) if driver_info.has_audio else None
    job = RenderJob(video_path=info.path, frame_rate=info.frame_rate, track=track, source_indices=plan.source_indices,
                    meshes=meshes, mask_mode="mouth", audio=audio)
    return render_video(job, models.generator, output, options, callbacks, clock)
