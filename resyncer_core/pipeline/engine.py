"""Pass 2, shared by lip-sync, video-driven lip-sync and face swap: decode the source video
again chunk by chunk (in output order, ping-pong included), overlay the meshes, generate,
blend, encode. Memory is one chunk of frames plus per-frame landmarks and meshes, whatever
the video's length.

The pipelines differ only in the RenderJob they hand over: which mesh each output frame
shows, which mask, and (for face swap) which identity frame I' goes into W.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..models.precision import check_precision
from ..render import get_renderer
from ..stages.frame_source import FrameSource
from ..stages.functions import (
    DEFAULT_FEATHER_PX,
    GENERATOR_BATCH_SIZE,
    PastedRegion,
    aligned_crops,
    generate_crops,
    overlay_crops,
    paste_back,
    select_frames,
    swap_crops,
)
from ..stages.identity_transfer import IdentityWarp, transfer_identity
from ..stages.progress import RENDERER_STAGES, STAGES, PipelineCallbacks, StageClock
from ..stages.warping import MeshWarp, load_mesh_warp_memory, traced_warp_crops
from ..video import VideoWriter
from ..video.partial_file import check_output_location

OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov")


@dataclass
class RenderOptions:
    batch_size: int = GENERATOR_BATCH_SIZE   # crops per generator call
    chunk_size: int = 8                      # frames decoded, blended and encoded together
    feather: int = DEFAULT_FEATHER_PX        # blend-mask erosion and blur, crop pixels
    crf: int = 18                            # x264 quality (0 lossless … 51)
    x264_preset: str = "medium"
    renderer: str = "auto"                   # mesh rasteriser backend (render.get_renderer)
    precision: str = "fp32"                  # generator autocast: fp32, bf16, fp16 (models/precision.py)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ResyncerInputError(f"batch size ({self.batch_size}) and chunk size ({self.chunk_size}) must be at least 1")
        if self.feather < 0:
            raise ResyncerInputError(f"feather must be 0 or more pixels, got {self.feather}")


@dataclass
class RenderJob:
    """What pass 2 draws. Output frame i shows source frame source_indices[i] with the
    canonical mesh meshes[i] posed in that frame's pose."""

    video_path: Path
    frame_rate: Fraction
    track: FaceTrack               # the source video's frames 0 … n-1
    source_indices: np.ndarray     # [N] int
    meshes: torch.Tensor           # [N,468,3]
    mask_mode: str = "mouth"       # "face" for swap (A')
    identity_frame: torch.Tensor | None = None   # swap: I' [1,3,256,256]; None for lip-sync
    audio: tuple[np.ndarray, int] | None = None  # muxed into the output

    def __post_init__(self) -> None:
        if len(self.meshes) != len(self.source_indices):
            raise ResyncerInputError(f"{len(self.meshes)} meshes for {len(self.source_indices)} output frames; they must match")


@dataclass
class OutputChunk:
    """One chunk of output frames as `on_frames` sees it, before encoding."""

    output_start: int
    source_indices: np.ndarray
    input_frames: np.ndarray                 # uint8 [n,H,W,3], the source frames shown
    output_frames: np.ndarray                # uint8 [n,H,W,3], what is encoded
    pasted: list[PastedRegion | None]        # per frame; None where the frame passed through


@dataclass
class PipelineResult:
    output: Path
    frames_written: int
    frames_without_face: int
    fps: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        # Only the renderer that ran (generator or mesh warp) is named.
        timings = ", ".join(f"{stage} {self.stage_seconds.get(stage, 0.0):.1f}s" for stage in STAGES
                            if stage not in RENDERER_STAGES or self.stage_seconds.get(stage, 0.0) > 0)
        return (f"wrote {self.output}: {self.frames_written} frames at {self.fps:g} fps, "
                f"{self.frames_without_face} without a face (passed through unchanged); {timings}")


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Refuses an output the writer cannot make, or one that would overwrite an input, before
    any work is done."""
    output = check_output_location(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ResyncerInputError(f"output {output} has an unsupported extension; name it .mp4 (or .mov, .m4v)")
    for source in inputs:
        if source is not None and Path(source).exists() and output.exists() and output.samefile(source):
            raise ResyncerInputError(f"output {output} is also an input; write the result to a new file")
    return output


def _render_chunk(job: RenderJob, frames: np.ndarray, track: FaceTrack, meshes: torch.Tensor, generator,
                  options: RenderOptions, renderer, clock: StageClock,
                  callbacks: PipelineCallbacks) -> tuple[np.ndarray, list[PastedRegion | None]]:
    """Output frames of one chunk and where each got its new face; frames without a face pass
    through. Cancellation is polled after every generator batch."""
    pasted: list[PastedRegion | None] = [None] * len(frames)
    faces = np.flatnonzero(track.valid)
    if not len(faces):
        return frames, pasted
    # The whole chunk itself where every frame has a face: a 720p chunk is tens of MB a copy.
    all_faces = len(faces) == len(frames)
    face_frames = frames if all_faces else frames[faces]
    face_track = select_frames(track, faces)

    def after_batch(done: int, total: int) -> None:
        callbacks.check_cancel()

    native = None
    if isinstance(generator, IdentityWarp):
        with clock.measure("render"):
            crops = aligned_crops(face_frames, face_track)
        with clock.measure("warp"):
            generated, masks, native = transfer_identity(generator, crops, face_track, meshes[faces],
                                                         options.batch_size, after_batch)
    elif isinstance(generator, MeshWarp):
        with clock.measure("render"):
            crops = aligned_crops(face_frames, face_track)
        with clock.measure("warp"):
            generated, masks, native = traced_warp_crops(generator, crops, face_track, meshes[faces], job.mask_mode,
                                                         options.batch_size, after_batch)
    else:
        with clock.measure("render"):
            crops, overlays, masks = overlay_crops(face_frames, face_track, meshes[faces], job.mask_mode, renderer)
        with clock.measure("generator"):
            if job.identity_frame is None:
                generated = generate_crops(generator, overlays, crops, options.batch_size, masks, after_batch,
                                           options.precision)
            else:
                generated = swap_crops(generator, overlays, job.identity_frame, crops, options.batch_size, masks,
                                       after_batch, options.precision)
    with clock.measure("blend"):
        blended, regions = paste_back(face_frames, generated, face_track.crop_affine, masks, options.feather,
                                      native=native)
        if all_faces:
            output = blended
        else:
            output = frames.copy()
            output[faces] = blended
    for face_index, region in zip(faces, regions):
        pasted[face_index] = region
    return output, pasted


class _EncoderThread:
    """Feeds a VideoWriter from a worker thread, so x264 encodes chunk k while the main thread
    generates chunk k + 1 (PyAV releases the GIL while encoding). At most `depth` chunks wait
    in the queue, which bounds memory. An encoding error is raised in the main thread at its
    next write or at finish(); leaving the block with an exception drops the queued chunks
    and stops the thread before the writer discards the file."""

    def __init__(self, writer: VideoWriter, depth: int = 2):
        self._writer = writer
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="resyncer-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (frames := self._queue.get()) is not None:
            if self._error is None and not self._abandoned:
                try:
                    self._writer.write(frames)
                except BaseException as error:  # handed to the main thread, which raises it
                    self._error = error

    def write(self, frames: np.ndarray) -> None:
        self._raise_error()
        self._queue.put(frames)

    def finish(self) -> None:
        """Waits until every queued chunk is encoded; raises the worker's error if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> _EncoderThread:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self._abandoned = True
            self._error = None  # the exception already leaving the block is the one to report
        self.finish()


def _read_in_order(source: FrameSource, indices: np.ndarray) -> np.ndarray:
    """Frames `indices` (a forward run, or a ping-pong stretch) from one read of their range."""
    first, last = int(indices.min()), int(indices.max())
    frames = source.read(first, last + 1)
    in_order = len(indices) == last - first + 1 and bool((np.diff(indices) == 1).all())
    return frames if in_order else frames[indices - first]


def render_video(job: RenderJob, generator, output: str | os.PathLike, options: RenderOptions | None = None,
                 callbacks: PipelineCallbacks | None = None, clock: StageClock | None = None) -> PipelineResult:
    """Runs pass 2 and writes `output` (H.264, job.audio muxed). The file appears only when
    complete: an error or cancellation leaves nothing at `output`."""
    options = options or RenderOptions()
    callbacks = callbacks or PipelineCallbacks()
    clock = clock or StageClock()
    # The rasteriser runs where the generator does (nvdiffrast needs CUDA); its image comes back
    # to the CPU, where the overlays are built next to the decoded frames.
    warping = isinstance(generator, (MeshWarp, IdentityWarp))
    renderer = None if warping else get_renderer(options.renderer, next(generator.parameters()).device)
    height, width = job.track.frame_size
    total = len(job.source_indices)
    without_face = int((~job.track.valid[job.source_indices]).sum())
    with FrameSource(job.video_path) as source, VideoWriter(output, job.frame_rate, (height, width), audio=job.audio,
                                                            crf=options.crf, preset=options.x264_preset) as writer, \
            _EncoderThread(writer) as encoder:
        if isinstance(generator, MeshWarp) and generator.memory is None:
            with clock.measure("warp"):  # a few frames decoded once: the clip's mouth at its openings
                generator = load_mesh_warp_memory(generator, source.read_each, job.track)
        for start in range(0, total, options.chunk_size):
            callbacks.check_cancel()
            indices = job.source_indices[start:start + options.chunk_size]
            with clock.measure("decode"):
                frames = _read_in_order(source, indices)
            output_frames, pasted = _render_chunk(job, frames, select_frames(job.track, indices),
                                                  job.meshes[start:start + len(indices)], generator, options, renderer,
                                                  clock, callbacks)
            if callbacks.on_frames is not None:
                callbacks.on_frames(OutputChunk(start, indices, frames, output_frames, pasted))
            # "encode" times what the main thread waits for the encoder: a full queue, and the end.
            with clock.measure("encode"):
                encoder.write(output_frames)
            callbacks.report("render", start + len(indices), total)
        with clock.measure("encode"):
            encoder.finish()
            writer.close()
    return PipelineResult(output=Path(output), frames_written=total, frames_without_face=without_face,
                          fps=float(job.frame_rate), stage_seconds=dict(clock.seconds))
