"""Face swap (paper §3.3), lip-synced when driving audio is given.

The identity (an image or a video of the source person) gives the template M̄' the mesh is
built on and the frame I' whose encoding becomes W; the target frame is the reference for the
feature maps, and the mask is the whole face A'. Where the generator was not trained for swap,
the training-free identity transfer (stages.identity_transfer) renders instead. With audio,
Style-SyncFormer predicts ΔM in the target's speaking style; without, the target's own
tracked ΔM drives the mouth and the target's own soundtrack (if any) is kept.
"""

from __future__ import annotations

import os

from ..audio import frame_count_for, load_audio
from ..face import FaceTracker
from ..stages.functions import meshes_on_template, select_frames
from ..stages.identity_transfer import IdentityWarp, meshes_with_target_eyes
from ..stages.model_files import PipelineModels
from ..stages.progress import PipelineCallbacks, StageClock
from ..stages.tracking import identity_from_file
from ..stages.warping import MeshWarp
from ..video import probe_video
from .audio_driving import MouthControls, audio_driven_meshes
from .chunking import soundtrack_for, track_for_plan
from .engine import PipelineResult, RenderJob, RenderOptions, check_output_path, render_video


def swap_video(video: str | os.PathLike, identity: str | os.PathLike, output: str | os.PathLike,
               models: PipelineModels, audio: str | os.PathLike | None = None, long_audio: str = "pingpong",
               short_audio: str = "trim", options: RenderOptions | None = None,
               callbacks: PipelineCallbacks | None = None, tracker: FaceTracker | None = None,
               controls: MouthControls = MouthControls()) -> PipelineResult:
    output = check_output_path(output, video, identity, audio)
    callbacks = callbacks or PipelineCallbacks()
    clock = StageClock()
    info = probe_video(video)
    waveform = None if audio is None else load_audio(audio)
    tracker = tracker or FaceTracker(models.device)
    face = identity_from_file(tracker, identity, clock, callbacks)
    driving = info.frame_count if waveform is None else frame_count_for(len(waveform), info.fps)
    track, plan = track_for_plan(tracker, info, driving, long_audio, short_audio, clock, callbacks)
    renderer = models.generator
    if isinstance(renderer, MeshWarp):  # the training-free swap: the identity's texture, not the target's face
        renderer = IdentityWarp(renderer.device, face.texture)
    on_identity = meshes_on_template(select_frames(track, plan.source_indices), face.template)
    if waveform is not None:
        meshes = audio_driven_meshes(models, waveform, info.fps, plan.frame_count, track, video, face.template,
                                     clock, callbacks, controls)
        if isinstance(renderer, IdentityWarp):  # blinks and brows stay the target's (the generator has I_ref)
            meshes = meshes_with_target_eyes(meshes, on_identity)
        soundtrack = soundtrack_for(plan, audio, info.fps)
    else:
        meshes = on_identity
        soundtrack = soundtrack_for(plan, video, info.fps) if info.has_audio else None
    job = RenderJob(video_path=info.path, frame_rate=info.frame_rate, track=track, source_indices=plan.source_indices,
                    meshes=meshes, mask_mode="face", identity_frame=face.frame, audio=soundtrack)
    return render_video(job, renderer, output, options, callbacks, clock)
