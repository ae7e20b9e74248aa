"""Random-access reading of frame ranges from a video file, one range in memory at a time.

Pass 2 of the engine reads frames in output order, which for ping-pong playback runs
backwards through the file. Contiguous forward reads continue the open decoder (frames are
counted exactly as video.iter_frames counts them); any other read seeks to the keyframe
before the wanted frame and decodes forward from there, so a backward step costs at most one
GOP of decoding instead of the whole file. Seeks locate frames by timestamp, which assumes a
constant frame rate; a seek that lands past the wanted frame falls back to the file's start,
which reopens the file (image demuxers, e.g. a JPEG still, cannot seek).

video.reader has no seeking API yet, so this uses its private opening and pixel-conversion
helpers rather than duplicating them.
"""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack
from pathlib import Path

import av
import numpy as np

from ..errors import ResyncerInputError
from ..video.reader import _open_video, _upright_rgb

# A read this many frames or fewer ahead of the decoder decodes forward instead of seeking.
_FORWARD_DECODE_LIMIT = 64


class FrameSource:
    """`read(start, stop)` → uint8 [stop-start, H, W, 3] RGB frames of `path`. Use as a
    context manager (or call close())."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stack = ExitStack()
        self._frames = None     # iterator of decoded av.VideoFrame
        self._next_index = 0    # index of the frame self._frames yields next
        self._open()

    def _open(self) -> None:
        self._container, self._stream = self._stack.enter_context(_open_video(self.path))
        self._stream.thread_type = "AUTO"

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def read(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start < stop:
            raise ResyncerInputError(f"frame range {start}..{stop} of {self.path} is empty or negative")
        try:
            if self._frames is None or not self._next_index <= start <= self._next_index + _FORWARD_DECODE_LIMIT:
                self._seek(start)
            frames = []
            while self._next_index < stop:
                frame = next(self._frames, None)
                if frame is None:
                    break
                if self._next_index >= start:
                    frames.append(_upright_rgb(frame))
                self._next_index += 1
        except av.FFmpegError as error:
            raise ResyncerInputError(f"video {self.path} could not be decoded ({error}); re-encode it or give another file") from None
        if len(frames) != stop - start:
            raise ResyncerInputError(
                f"video {self.path} ended before frame {stop - 1} (it was readable up to frame {self._next_index - 1} "
                "when tracked); re-encode it or give another file")
        return np.stack(frames)

    def read_each(self, indices) -> np.ndarray:
        """Frames at sorted `indices` (any gaps), one read each: uint8 [len(indices), H, W, 3]."""
        return np.stack([self.read(int(index), int(index) + 1)[0] for index in indices])

    def _seek(self, target: int) -> None:
        stream = self._stream
        origin = stream.start_time or 0
        if target > 0:
            self._container.seek(origin + int(target / (stream.average_rate or stream.guessed_rate) / stream.time_base),
                                 stream=stream, backward=True)
            frames = self._container.decode(stream)
            first = next(frames, None)
            if first is not None and first.pts is not None:
                index = round((first.pts - origin) * stream.time_base * (stream.average_rate or stream.guessed_rate))
                if 0 <= index <= target:
                    self._frames, self._next_index = itertools.chain([first], frames), index
                    return
        # Back to the start by opening the file again (unless nothing was decoded yet): image
        # demuxers (a JPEG still) cannot seek at all, and a fresh decoder is what iter_frames
        # counted frames with.
        if self._frames is not None or target > 0:
            self._stack.close()
            self._open()
        self._frames, self._next_index = self._container.decode(self._stream), 0
