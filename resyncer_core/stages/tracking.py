"""Pass 1: face tracks of video files (streamed: only landmarks are kept) and swap identities
from an image or a video file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ResyncerInputError
from ..input_paths import existing_file
from ..face.track import FaceTrack
from ..face.tracker import DEFAULT_SMOOTHING
from ..video import VideoInfo, iter_frames, probe_video
from .frame_source import FrameSource
from .functions import FaceIdentity, choose_identity_frame, identity_from_track, select_frames
from .identity_transfer import identity_texture, identity_views
from .progress import PipelineCallbacks, StageClock, monitored_batches

# The tracker's working memory grows with the chunk (720p: 32 frames peak ~190 MB higher than 8).
TRACK_CHUNK_FRAMES = 8
# An identity video's template and frame come from its opening seconds, not all of it.
IDENTITY_SEARCH_SECONDS = 30


def track_video(tracker, path: str | os.PathLike, frame_limit: int | None = None,
                smoothing: float = DEFAULT_SMOOTHING, clock: StageClock | None = None,
                callbacks: PipelineCallbacks | None = None, info: VideoInfo | None = None) -> FaceTrack:
    """FaceTrack of the first `frame_limit` frames (all by default) of a video file, decoding
    and tracking chunk by chunk; reports progress("track", done, total) and polls cancellation
    after each chunk. The track's length is the number of frames actually decoded. `info`
    (probe_video of `path`) saves probing the file again."""
    clock = clock or StageClock()
    callbacks = callbacks or PipelineCallbacks()
    info = info or probe_video(path)
    total = info.frame_count if frame_limit is None else min(info.frame_count, frame_limit)

    decoded = clock.timed_iter("decode", iter_frames(path, TRACK_CHUNK_FRAMES, stop=frame_limit))
    reported = monitored_batches(decoded, callbacks.check_cancel, lambda done: callbacks.report("track", done, total))
    with clock.measure("track", excluding="decode"):
        return tracker.track_stream(reported, fps=info.fps, smoothing=smoothing)


def require_a_face(track: FaceTrack, what: str) -> FaceTrack:
    """`track` itself, or a one-line error naming `what` (e.g. "driver video clip.mp4") when
    no frame of it has a face: a driver or style video without one would give an output no
    different from silence, an identity without one nothing to put in."""
    if not track.valid.any():
        raise ResyncerInputError(f"{what} shows no face in any frame tracked; give one where a face is clearly visible")
    return track


def _read_image(path: Path) -> np.ndarray | None:
    """RGB uint8 [H,W,3] when `path` is a still image, None when it is not one."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        return None


def identity_from_file(tracker, path: str | os.PathLike, clock: StageClock | None = None,
                       callbacks: PipelineCallbacks | None = None) -> FaceIdentity:
    """The swap identity in an image or a video file: the template is the neutral mesh
    over its tracked frames (of a video, the first IDENTITY_SEARCH_SECONDS), I' the crop of
    its most frontal frame, the texture its most frontal frame and one per head-turn bin."""
    path = existing_file(path, "identity file", if_missing="give a face image or video",
                         if_folder="give one face image or video from it")
    image = _read_image(path)
    if image is not None:
        track = require_a_face(tracker.track(image[None]), f"identity image {path}")
        identity = identity_from_track(track, image[None], 0)
        identity.texture = identity_texture(image[None], track)
        return identity
    info = probe_video(path)
    track = require_a_face(track_video(tracker, path, round(IDENTITY_SEARCH_SECONDS * info.fps), clock=clock,
                                       callbacks=callbacks, info=info), f"identity video {path}")
    index = choose_identity_frame(track)
    views = identity_views(track)
    with FrameSource(path) as source:
        frame = source.read(index, index + 1)
        pictures = source.read_each(views)
    identity = identity_from_track(track, frame, index)
    identity.texture = identity_texture(pictures, select_frames(track, views), np.arange(len(views)))
    return identity
