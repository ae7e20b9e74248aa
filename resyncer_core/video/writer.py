"""Writing H.264 video (optionally with AAC audio) chunk by chunk, atomically.

    with VideoWriter("out.mp4", fps=25, size=(720, 1280), audio=(waveform, 16000)) as writer:
        for chunk in chunks:            # uint8 [n, 720, 1280, 3] RGB
            writer.write(chunk)
    # out.mp4 exists only now; an exception inside the block leaves no file at all.

Encoding: libx264 with the given CRF and preset, BT.709 limited-range YUV (signalled in the
stream, so players and our reader convert back with the same matrix), frame i at exactly
i / fps (the codec time base is 1/fps as a fraction, so 30000/1001 stays exact), MP4/MOV
with the index at the front (faststart) for web playback. Audio is AAC at the waveform's own
sample rate and channels (mono or stereo), 128 kb/s per channel, interleaved with the video
as frames arrive; its duration is the waveform's duration whatever the number of frames.

Odd sizes: 4:2:0 chroma needs even width and height (4:2:2 an even width). Frames of an
odd size are padded by repeating their last row/column, so the file is one pixel larger
than `size` in that dimension (`encoded_size`); nothing is cropped or resampled.
"""

from __future__ import annotations

import math
import os
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from ..errors import ResyncerInputError
from .frame_rate import FrameRate, as_frame_rate
from .frame_size import as_frame_size
from .partial_file import PartialFile

# Container chosen from the file name; all are ISO-BMFF, so faststart applies to each.
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
# Pixel formats offered, with the multiple that width and height must have for that chroma subsampling.
_SIZE_MULTIPLES = {"yuv420p": (2, 2), "yuv422p": (2, 1), "yuv444p": (1, 1)}
_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
_AUDIO_BIT_RATE = 128_000  # per channel
_LAYOUTS = {1: "mono", 2: "stereo"}


class VideoWriter:
    """Context manager writing uint8 RGB frames [n, H, W, 3] to an H.264 .mp4/.mov file.

    size is (height, width), as in frame.shape[:2]. audio is None or (float32 waveform in
    -1..1, sample_rate), the waveform mono [samples] or [channels, samples] with 1 or 2
    channels; samples outside -1..1 are clipped. The file appears under its
    name on `close()` (or leaving the `with` block normally); `abort()`, an exception in the
    block, or the writer being garbage-collected unclosed deletes everything written.
    """

    def __init__(self, path: str | os.PathLike, fps: FrameRate, size: tuple[int, int],
                 audio: tuple[np.ndarray, int] | None = None, crf: int = 18, preset: str = "medium",
                 pix_fmt: str = "yuv420p"):
        self.path = Path(path)
        self.frame_rate = as_frame_rate(fps)
        self.size = as_frame_size(size)
        self.encoded_size = _encoded_size(self.size, pix_fmt)
        self.frames_written = 0
        self.committed = False  # True once the finished file is at `path`
        muxer = _muxer(self.path)
        check_encoder_settings(crf, preset)
        self._waveform, self._sample_rate = _check_audio(audio) if audio is not None else (None, 0)
        self._audio_layout = _LAYOUTS.get(len(self._waveform)) if self._waveform is not None else None
        self._audio_samples_written = 0
        self._pix_fmt = pix_fmt

        self._partial = PartialFile(self.path)
        try:
            self._container = av.open(str(self._partial.temp_path), "w", format=muxer,
                                      container_options={"movflags": "+faststart"})
        except BaseException:
            self._partial.discard()
            raise
        # Runs at most once: on abort(), on garbage collection or at interpreter exit, unless
        # close() succeeded and detached it.
        self._discard = weakref.finalize(self, _discard_output, self._container, self._partial)
        try:
            self._video_stream = self._add_video_stream(crf, preset)
            self._audio_stream = self._add_audio_stream() if self._waveform is not None else None
        except BaseException:
            self.abort()
            raise

    @property
    def fps(self) -> float:
        return float(self.frame_rate)

    def write(self, frames: np.ndarray) -> None:
        """Appends frames: uint8 [n, H, W, 3] RGB, or a single [H, W, 3] frame."""
        if not self._discard.alive:
            raise ResyncerInputError(f"video writer for {self.path} is already closed or aborted; open a new VideoWriter")
        frames = self._check_frames(frames)
        pad_h, pad_w = self.encoded_size[0] - self.size[0], self.encoded_size[1] - self.size[1]
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
                format=self._pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG,
                dst_color_trc=ColorTrc.BT709, dst_color_primaries=ColorPrimaries.BT709)
            frame.pts = self.frames_written
            self._mux(self._video_stream.encode(frame))
            self.frames_written += 1
        self._write_audio_until(self.frames_written / self.frame_rate)

    def close(self) -> Path:
        """Finishes the file and moves it to `path`; returns `path`. Closing twice is a no-op."""
        if self.committed:
            return self.path
        if not self._discard.alive:
            raise ResyncerInputError(f"video writer for {self.path} was aborted; open a new VideoWriter to write it")
        try:
            if self.frames_written == 0:
                raise ResyncerInputError(f"no frames were written to {self.path}; write at least one frame before closing")
            self._write_audio_until(math.inf)
            self._mux(self._video_stream.encode(None))
            if self._audio_stream is not None:
                self._mux(self._audio_stream.encode(None))
            self._container.close()
            self._partial.commit()
        except BaseException:
            self.abort()
            raise
        self._discard.detach()
        self.committed = True
        return self.path

    def abort(self) -> None:
        """Stops writing and deletes everything written; `path` is left untouched."""
        self._discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _add_video_stream(self, crf: int, preset: str) -> av.video.stream.VideoStream:
        stream = self._container.add_stream("libx264", rate=self.frame_rate, options={"crf": str(crf), "preset": preset})
        stream.height, stream.width = self.encoded_size
        stream.pix_fmt = self._pix_fmt
        codec = stream.codec_context
        codec.time_base = 1 / self.frame_rate  # pts counts frames: exact for any rational rate
        codec.colorspace = Colorspace.ITU709
        codec.color_range = ColorRange.MPEG
        codec.color_primaries = ColorPrimaries.BT709
        codec.color_trc = ColorTrc.BT709
        return stream

    def _add_audio_stream(self) -> av.audio.stream.AudioStream:
        stream = self._container.add_stream("aac", rate=self._sample_rate, layout=self._audio_layout)
        stream.bit_rate = _AUDIO_BIT_RATE * len(self._waveform)
        return stream

    def _write_audio_until(self, seconds: float | Fraction) -> None:
        """Encodes the waveform up to `seconds` (all of it for inf), so audio packets follow
        the video packets through the file instead of trailing them."""
        if self._waveform is None:
            return
        length = self._waveform.shape[1]
        end = length if seconds == math.inf else min(length, round(seconds * self._sample_rate))
        if end <= self._audio_samples_written:
            return
        samples = np.ascontiguousarray(self._waveform[:, self._audio_samples_written:end])
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._audio_layout)
        frame.sample_rate = self._sample_rate
        frame.pts = self._audio_samples_written
        frame.time_base = Fraction(1, self._sample_rate)
        self._mux(self._audio_stream.encode(frame))
        self._audio_samples_written = end

    def _mux(self, packets: list[av.Packet]) -> None:
        if packets:
            self._container.mux(packets)

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (*self.size, 3):
            raise ResyncerInputError(
                f"frames for {self.path} must be uint8 [n, {self.size[0]}, {self.size[1]}, 3] RGB, got "
                f"{frames.dtype} {list(frames.shape)}; convert with (images * 255).round().astype(np.uint8)")
        return frames


def _discard_output(container: av.container.OutputContainer, partial: PartialFile) -> None:
    try:
        container.close()
    except av.FFmpegError:
        pass  # an unfinishable file is being thrown away anyway
    finally:
        partial.discard()


def _muxer(path: Path) -> str:
    muxer = _MUXERS.get(path.suffix.lower())
    if muxer is None:
        raise ResyncerInputError(f"output {path} has an unsupported extension; name it .mp4 (or .mov, .m4v)")
    return muxer


def _encoded_size(size: tuple[int, int], pix_fmt: str) -> tuple[int, int]:
    if pix_fmt not in _SIZE_MULTIPLES:
        raise ResyncerInputError(f"pix_fmt {pix_fmt!r} is not supported; use one of {', '.join(_SIZE_MULTIPLES)}")
    width_multiple, height_multiple = _SIZE_MULTIPLES[pix_fmt]
    height, width = size
    return -(-height // height_multiple) * height_multiple, -(-width // width_multiple) * width_multiple


def check_encoder_settings(crf: int, preset: str) -> None:
    if not 0 <= crf <= 51:
        raise ResyncerInputError(f"crf {crf} is out of range; use 0 (lossless) to 51, 18 is visually lossless")
    if preset not in _X264_PRESETS:
        raise ResyncerInputError(f"x264 preset {preset!r} is unknown; use one of {', '.join(_X264_PRESETS)}")


def _check_audio(audio: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """(waveform [channels, samples] float32 clipped to -1..1, sample rate)."""
    try:
        waveform, sample_rate = audio
    except (TypeError, ValueError):
        raise ResyncerInputError("audio must be (waveform, sample_rate) or None; pass e.g. (samples, 16000)") from None
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or len(waveform) not in _LAYOUTS or waveform.shape[1] == 0:
        raise ResyncerInputError(f"audio waveform must be mono [samples] or [1 or 2 channels, samples] and non-empty, "
                                 f"got shape {list(waveform.shape)}; downmix it to stereo or pass audio=None")
    if not np.isfinite(waveform).all():
        raise ResyncerInputError("audio waveform contains NaN or infinity; fix the audio before writing")
    supported_rates = av.Codec("aac", "w").audio_rates
    if sample_rate not in supported_rates:
        raise ResyncerInputError(f"audio sample rate {sample_rate} is not supported by AAC; resample to 16000, 44100 or 48000")
    return np.clip(waveform, -1.0, 1.0), int(sample_rate)
