"""Reading video files: metadata, and RGB frames streamed in chunks.

Frames come out as uint8 [n, H, W, 3] RGB, upright: a rotation tag (phone videos store
portrait clips as landscape pixels plus a display matrix) is applied in multiples of 90°,
like a player would, so face detection sees upright faces. Flips in the display matrix
and non-right angles are not applied.

Colour: YUV is converted with the matrix and range the stream declares; untagged streams
fall back to FFmpeg's default (BT.601, limited range).

Damaged files: packets that fail to decode are skipped, as a player would skip them, so a
truncated file yields fewer frames than `probe_video` counts; callers that pair frames
with audio should count the frames they actually receive.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import ResyncerInputError
from ..input_paths import existing_file

DEFAULT_CHUNK_SIZE = 32
# A still image (PNG, JPEG, WebP, BMP, TIFF, GIF …) is a one-frame video at FFmpeg's image
# default of 25 fps; a one-frame GIF declares no rate of its own (FFmpeg guesses 100).
STILL_FRAME_RATE = Fraction(25)


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` finds. `width`/`height` are the upright (displayed) size."""

    path: Path
    frame_rate: Fraction  # exact, e.g. 30000/1001
    frame_count: int
    width: int
    height: int
    rotation: int  # degrees counter-clockwise applied to the decoded pixels: 0, 90, 180 or 270
    has_audio: bool

    @property
    def fps(self) -> float:
        return float(self.frame_rate)

    @property
    def duration(self) -> float:
        """Seconds of video: frame_count / frame_rate (the audio track may be longer or shorter)."""
        return float(self.frame_count / self.frame_rate)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Metadata of the first video stream, validated by decoding its first frame.

    frame_count is exact without decoding the whole file: the packets of the video stream
    are counted by demuxing (one packet is one frame for every codec FFmpeg writes to
    MP4/MOV/MKV/WebM), skipping packets an edit list marks as not shown. This reads the file
    once at disk speed; container header counts are not used because MKV/WebM have none and
    edit-listed MP4s overstate them.
    """
    with _open_video(path) as (container, stream):
        first_frame = None
        frame_count = 0
        for packet in container.demux(stream):
            if first_frame is None:
                first_frame = next(iter(packet.decode()), None)
            if packet.size and not packet.is_discard:
                frame_count += 1
        if first_frame is None:
            raise ResyncerInputError(f"video {path} contains no decodable frame; give a playable video file")
        rotation = _quarter_turns(first_frame) * 90
        width, height = first_frame.width, first_frame.height
        if rotation % 180:
            width, height = height, width
        return VideoInfo(
            path=Path(path),
            frame_rate=STILL_FRAME_RATE if frame_count == 1 and not stream.average_rate else _frame_rate(stream, path),
            frame_count=frame_count,
            width=width,
            height=height,
            rotation=rotation,
            has_audio=bool(container.streams.audio),
        )


def iter_frames(path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK_SIZE,
                start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yields frames start..stop-1 (decode order = display order for every codec we write)
    as uint8 [n, H, W, 3] RGB chunks of `chunk_size` (the last one may be shorter).

    Only one chunk is held at a time. Frames before `start` are decoded (inter-coded video
    needs them) but not converted, so a late `start` costs decoding time, not memory.
    """
    _check_range(chunk_size, start, stop)
    with _open_video(path) as (container, stream):
        # Frame threading decodes several frames in parallel; fine for sequential reads.
        stream.thread_type = "AUTO"
        chunk: list[np.ndarray] = []
        for index, frame in enumerate(container.decode(stream)):
            if stop is not None and index >= stop:
                break
            if index < start:
                continue
            chunk.append(_upright_rgb(frame))
            if len(chunk) == chunk_size:
                yield np.stack(chunk)
                chunk = []
        if chunk:
            yield np.stack(chunk)


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> np.ndarray:
    """All frames start..stop-1 as one uint8 [T, H, W, 3] array: for short clips only
    (a minute of 720p is 4 GB); use `iter_frames` for anything long."""
    chunks = list(iter_frames(path, start=start, stop=stop))
    if not chunks:
        raise ResyncerInputError(f"video {path} has no frames in the range {start}..{stop}; choose a start below its frame count")
    return np.concatenate(chunks)


@contextlib.contextmanager
def _open_video(path: str | os.PathLike) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Opens `path` and picks its first real video stream (album art in audio files is a
    video stream too, flagged attached_pic); FFmpeg errors become one-line input errors."""
    path = existing_file(path, "video file", if_folder="give one video file from it (a folder of clips is for "
                                                      "`resyncer preprocess --videos`)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise ResyncerInputError(f"{path} is not a readable video file ({_reason(error)}); give a video such as an MP4") from None
    try:
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise ResyncerInputError(f"{path} has no video stream (is it an audio file?); give a video file")
        yield container, streams[0]
    except av.FFmpegError as error:
        raise ResyncerInputError(
            f"video {path} could not be decoded ({_reason(error)}); re-encode it or give another file") from None
    finally:
        container.close()


def _frame_rate(stream: av.video.stream.VideoStream, path: str | os.PathLike) -> Fraction:
    # average_rate is frames/duration from the container; guessed_rate covers streams that lack it.
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise ResyncerInputError(f"video {path} declares no frame rate; re-encode it with a constant frame rate")
    return Fraction(rate)


def _quarter_turns(frame: av.VideoFrame) -> int:
    return round(frame.rotation / 90) % 4


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    turns = _quarter_turns(frame)
    return np.rot90(rgb, turns) if turns else rgb


def _check_range(chunk_size: int, start: int, stop: int | None) -> None:
    if chunk_size < 1:
        raise ResyncerInputError(f"chunk_size {chunk_size} must be at least 1; pass a positive number of frames")
    if start < 0 or (stop is not None and stop < start):
        raise ResyncerInputError(f"frame range {start}..{stop} is invalid; give 0 <= start <= stop")


def _reason(error: av.FFmpegError) -> str:
    return (error.strerror or str(error)).splitlines()[0]
