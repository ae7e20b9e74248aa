"""`resyncer preprocess`: a folder of talking-head videos → the training dataset (dataset.py).

Per video (HDTF / VoxCeleb2 style, one speaker per clip, any fps and size):
  1. the frames are brought to 25 fps (paper) by showing, at each 25 fps instant, the source
     frame on screen then (frames dropped or repeated; nothing is interpolated);
  2. the face is tracked on those frames (stages: FaceTracker.track_stream, neutral template);
  3. a second decode writes the aligned 256² crops as near-lossless H.264 (CRF 10);
  4. the audio becomes 16 kHz mono, cut to the frames, and each --audio-encoder's features
     are cached;
  5. the clip is committed (dataset.ClipWriter) and listed in DATA/index.jsonl.

Resumable: clips already in the index are skipped. A video that cannot be used (unreadable,
no audio, shorter than --min-frames at 25 fps, face tracked in too few frames) is skipped,
its reason appended to DATA/skipped.jsonl and counted in the summary; the run goes on.
`--shard i/N` processes every N-th video (by sorted path) from the i-th, so N machines can
split a corpus into one DATA folder (or N folders).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from ..audio import load_audio, load_audio_encoder
from ..errors import ResyncerInputError
from ..face.template import mouth_opening
from ..stages.functions import aligned_crops
from ..stages.model_files import resolve_device
from ..stages.tracking import TRACK_CHUNK_FRAMES
from ..video import iter_frames, probe_video
from ..video.partial_file import check_output_folder
from ..video.writer import VideoWriter
from .dataset import (
    DATASET_FPS,
    SKIPPED_FILE,
    ClipArrays,
    ClipWriter,
    append_jsonl,
    clip_id_for,
    finished_clip_ids,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
CROP_CRF = 10                  # near-lossless H.264 for the training crops
DEFAULT_MIN_FRAMES = 100       # one stage-1 window (paper) at 25 fps
DEFAULT_MIN_TRACKED = 0.5      # share of frames with a tracked face a clip needs
_CROP_CHUNK_FRAMES = 16

Progress = Callable[[int, int, str], None]


@dataclass
class PreprocessConfig:
    audio_encoders: tuple[str, ...] = ()    # specs whose features are cached; none: computed at training time
    min_frames: int = DEFAULT_MIN_FRAMES
    min_tracked: float = DEFAULT_MIN_TRACKED
    shard: tuple[int, int] = (0, 1)         # (i, N)
    workers: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ResyncerInputError(f"--workers must be at least 1, got {self.workers}")
        if self.min_frames < 1:
            raise ResyncerInputError(f"--min-frames must be at least 1, got {self.min_frames}")
        if not 0 <= self.min_tracked <= 1:
            raise ResyncerInputError(f"--min-tracked is a share of frames from 0 to 1, got {self.min_tracked}")


@dataclass
class PreprocessSummary:
    written: int = 0
    already_done: int = 0
    skipped: Counter = field(default_factory=Counter)   # reason category -> count
    total: int = 0

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        return (f"preprocess: {self.written} clips written, {self.already_done} already done, {skipped} skipped"
                + (f" ({reasons})" if reasons else "") + f", of {self.total} videos in this shard")


class SkipClip(Exception):
    """A video that cannot become a clip: `category` (counted) and a one-line reason."""

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category = category


def parse_shard(text: str) -> tuple[int, int]:
    """"i/N" → (i, N) with 0 <= i < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ResyncerInputError(f"--shard {text!r} must look like i/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ResyncerInputError(f"--shard {text}: i must be in 0..N-1")
    return index, count


def find_videos(videos_dir: Path, shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """Video files under `videos_dir` (recursive, sorted by relative path), this shard's share."""
    if not videos_dir.is_dir():
        raise ResyncerInputError(f"--videos {videos_dir} is not a folder; give the folder that holds the clips")
    found = sorted(path for path in videos_dir.rglob("*") if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES)
    if not found:
        raise ResyncerInputError(f"--videos {videos_dir} holds no video file ({', '.join(VIDEO_SUFFIXES)}) in any "
                                 "of its folders; give the folder of talking-head clips")
    index, count = shard
    return found[index::count]


def speaker_of(relative: Path) -> str:
    """VoxCeleb2 style speaker/…/clip.mp4 → the top folder; a flat folder (HDTF) → the file name."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def source_frame_indices(source_fps: float, source_frames: int) -> np.ndarray:
    """For each 25 fps frame k of the clip's duration, the source frame on screen at k/25 s."""
    duration = source_frames / source_fps
    count = max(0, math.floor(duration * DATASET_FPS + 1e-6))
    # The small epsilon keeps exact instants (30 fps: k=5 → 6/30 s) on the frame that starts there.
    indices = np.floor(np.arange(count) / DATASET_FPS * source_fps + 1e-6).astype(np.int64)
    return np.minimum(indices, source_frames - 1)


def resampled_chunks(path: Path, indices: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
    """The frames `indices` (non-decreasing source indices, repeats allowed) of a video, decoded
    once, in chunks of at most `chunk_size` (the last may be shorter)."""
    position, pending = 0, []
    for base, chunk in _numbered_chunks(iter_frames(path, chunk_size)):
        while position < len(indices) and indices[position] < base + len(chunk):
            pending.append(chunk[indices[position] - base])
            position += 1
            if len(pending) == chunk_size:
                yield np.stack(pending)
                pending = []
        if position == len(indices):
            break
    if pending:
        yield np.stack(pending)
    if position < len(indices):
        raise SkipClip("unreadable", f"decoding stopped at frame {indices[position]} of the {indices[-1] + 1} needed")


def _numbered_chunks(chunks: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    base = 0
    for chunk in chunks:
        yield base, chunk
        base += len(chunk)


_WORKER_STATE: dict = {}


def _tracker(device: str):
    if "tracker" not in _WORKER_STATE:
        from ..face import FaceTracker

        _WORKER_STATE["tracker"] = FaceTracker(device=device)
    return _WORKER_STATE["tracker"]


def _encoders(specs: tuple[str, ...], device: str) -> dict:
    cache = _WORKER_STATE.setdefault("encoders", {})
    for spec in specs:
        if spec not in cache:
            cache[spec] = load_audio_encoder(spec, device=device)
    return {spec: cache[spec] for spec in specs}


def preprocess_video(path: Path, relative: Path, data_dir: Path, config: PreprocessConfig) -> dict:
    """Turns one video into a dataset clip; raises SkipClip when it cannot."""
    try:
        info = probe_video(path)
    except (ResyncerInputError, av.FFmpegError, OSError) as error:
        raise SkipClip("unreadable", f"cannot read the video ({str(error).splitlines()[0]})") from None
    indices = source_frame_indices(info.fps, info.frame_count)
    if len(indices) < config.min_frames:
        raise SkipClip("too short", f"{len(indices)} frames at 25 fps, fewer than {config.min_frames}")
    if not info.has_audio:
        raise SkipClip("no audio", "the video has no audio track")
    try:
        waveform = load_audio(path)
    except ResyncerInputError as error:
        raise SkipClip("unreadable", f"cannot read the audio ({error})") from None

    track = _tracker(config.device).track_stream(resampled_chunks(path, indices, TRACK_CHUNK_FRAMES), fps=DATASET_FPS)
    tracked = float(track.valid.mean())
    if tracked == 0:
        raise SkipClip("no face", "no face was found in any frame")
    if tracked < config.min_tracked:
        raise SkipClip("no face", f"a face was tracked in only {tracked:.0%} of the frames")

    with ClipWriter(data_dir, clip_id_for(relative)) as writer:
        with VideoWriter(writer.crops_path, int(DATASET_FPS), (256, 256), crf=CROP_CRF) as crops:
            done = 0
            for frames in resampled_chunks(path, indices, _CROP_CHUNK_FRAMES):
                window = track.slice(done, done + len(frames))
                crops.write(((aligned_crops(frames, window) + 1) * 127.5).round().to(torch.uint8)
                            .permute(0, 2, 3, 1).numpy())
                done += len(frames)
        writer.write_arrays(ClipArrays(
            canonical=track.canonical, template=track.template, valid=track.valid,
            pose_scale=track.pose.scale, pose_rotation=track.pose.rotation, pose_translation=track.pose.translation,
            crop_affine=track.crop_affine, frame_size=track.frame_size))
        written_audio = writer.write_audio(waveform)
        for spec, encoder in _encoders(config.audio_encoders, config.device).items():
            writer.write_features(spec, encoder.encode(written_audio, DATASET_FPS, len(track)))
        opening = mouth_opening(track.canonical[track.valid])
        quality = {"tracked_fraction": round(tracked, 4), "source_fps": round(info.fps, 4),
                   "source_size": [info.height, info.width],
                   "mouth_opening_p5_p95": [round(float(v), 4) for v in np.percentile(opening, [5, 95])]}
        return writer.commit(speaker_of(relative), relative.as_posix(), quality)


def _share_cores(workers: int) -> None:
    """Worker-process initialiser: the machine's cores split between the workers."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _process_one(path: Path, relative: Path, data_dir: Path, config: PreprocessConfig) -> tuple[str, str | None]:
    """(category, reason): ("written", None) or a skip; never raises for a bad video."""
    try:
        preprocess_video(path, relative, data_dir, config)
        return "written", None
    except SkipClip as skip:
        return skip.category, str(skip)
    except (ResyncerInputError, av.FFmpegError, OSError, ValueError) as error:
        return "error", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def preprocess_folder(videos_dir: str | os.PathLike, data_dir: str | os.PathLike, config: PreprocessConfig,
                      progress: Progress | None = None) -> PreprocessSummary:
    """Preprocesses this shard's videos under `videos_dir` into `data_dir`; returns the counts.
    progress(done, total, last_outcome) is called after each video."""
    videos_dir, data_dir = Path(videos_dir), check_output_folder(data_dir, "dataset folder")
    resolve_device(config.device)  # a bad device fails now, not as a skip reason of every video
    for spec in config.audio_encoders:  # a bad encoder fails now, not after the first video
        _encoders((spec,), config.device)
    videos = find_videos(videos_dir, config.shard)
    data_dir.mkdir(parents=True, exist_ok=True)
    done_ids = finished_clip_ids(data_dir)
    summary = PreprocessSummary(total=len(videos))
    todo = []
    for path in videos:
        relative = path.relative_to(videos_dir)
        if clip_id_for(relative) in done_ids:
            summary.already_done += 1
        else:
            todo.append((path, relative))

    def record(index: int, relative: Path, outcome: tuple[str, str | None]) -> None:
        category, reason = outcome
        if category == "written":
            summary.written += 1
        else:
            summary.skipped[category] += 1
            append_jsonl(data_dir / SKIPPED_FILE, {"source": relative.as_posix(), "category": category, "reason": reason})
        if progress is not None:
            progress(index, len(todo), f"{relative}: {reason or 'ok'}")

    if config.workers == 1:
        for index, (path, relative) in enumerate(todo, start=1):
            record(index, relative, _process_one(path, relative, data_dir, config))
    else:
        import multiprocessing

        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_share_cores, initargs=(config.workers,)) as pool:
            futures = [pool.submit(_process_one, path, relative, data_dir, config) for path, relative in todo]
            for index, ((_, relative), future) in enumerate(zip(todo, futures), start=1):
                record(index, relative, future.result())
    return summary
