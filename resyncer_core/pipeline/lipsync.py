"""Audio-driven lip-sync of a video (paper §3.1–3.2), and speaking-style transfer with
`style_from`.

The style reference is T_S = 90 frames of ΔM (paper): by default the target's own, from the
window with the most tracked frames and, among those, the most mouth motion
(stages.choose_style_window); with `style_from`, the same window choice over the first
STYLE_SEARCH_SECONDS of another video. The mouth is drawn on the target's template, the
reference frame is the target frame itself (paper A.1, production), and the driving audio is
muxed into the output.
"""

from __future__ import annotations

import os

from ..audio import frame_count_for, load_audio
from ..face import FaceTracker
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..stages.tracking import require_a_face, track_video
from ..video import probe_video
from .audio_driving import MouthControls, audio_driven_meshes
from .chunking import soundtrack_for, track_for_plan
from .engine import PipelineResult, RenderJob, RenderOptions, check_output_path, render_video

# A style video is searched for its best window over this many seconds, not its whole length.
STYLE_SEARCH_SECONDS = 30


def lipsync_video(video: str | os.PathLike, audio: str | os.PathLike, output: str | os.PathLike,
                  models: PipelineModels, style_from: str | os.PathLike | None = None,
                  long_audio: str = "pingpong", short_audio: str = "trim", options: RenderOptions | None = None,
                  callbacks: PipelineCallbacks | None = None, tracker: FaceTracker | None = None,
                  controls: MouthControls = MouthControls()) -> PipelineResult:
    """Lip-syncs `video` to `audio` into `output` (see chunking for the length modes);
    `controls` choose a style preset and the motion strength (audio_driving)."""
    output = check_output_path(output, video, audio, style_from)
    callbacks = callbacks or PipelineCallbacks()
    clock = StageClock()
    info = probe_video(video)
    style_info = None if style_from is None else probe_video(style_from)
    waveform = load_audio(audio)
    tracker = tracker or FaceTracker(models.device)
    # The style video first: a faceless one fails in a second, not after the target's long tracking.
    style_track = None if style_info is None else require_a_face(track_video(
        tracker, style_from, round(STYLE_SEARCH_SECONDS * style_info.fps), clock=clock, callbacks=callbacks,
        info=style_info), f"style video {style_from}")
    track, plan = track_for_plan(tracker, info, frame_count_for(len(waveform), info.fps), long_audio, short_audio,
                                 clock, callbacks)
    meshes = audio_driven_meshes(models, waveform, info.fps, plan.frame_count,
                                 track if style_track is None else style_track,
                                 video if style_from is None else style_from, track.template, clock, callbacks,
                                 controls)
    job = RenderJob(video_path=info.path, frame_rate=info.frame_rate, track=track, source_indices=plan.source_indices,
                    meshes=meshes, mask_mode="mouth", audio=soundtrack_for(plan, audio, info.fps))
    return render_video(job, models.generator, output, options, callbacks, clock)
