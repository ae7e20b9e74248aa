"""Video writing and reading: round trips, streaming, atomic output and one-line errors."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from resyncer_core.errors import ResyncerInputError
from resyncer_core.video import VideoWriter, iter_frames, probe_video, read_frames

SAMPLE_RATE = 16000


def moving_scene(frame_count: int, height: int = 96, width: int = 128) -> np.ndarray:
    """Smooth colour fields and a soft blob that move every frame: camera-like content,
    so PSNR measures the codec rather than chroma subsampling of hard synthetic edges."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(frame_count):
        blob = np.exp(-(((x - 30 - 2 * t) / 14) ** 2 + ((y - 48) / 18) ** 2))
        red = 120 + 80 * np.sin(x / 23 + t / 6)
        green = 110 + 70 * np.cos(y / 19 - t / 8)
        blue = 100 + 60 * np.sin((x + y) / 31 + t / 5)
        frames.append(np.stack([red, green, blue], axis=-1) + 60 * blob[..., None])
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def decoded_audio_samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def tone(seconds: float) -> np.ndarray:
    times = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.4 * np.sin(2 * np.pi * 330 * times)).astype(np.float32)


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and message
    for word in words:
        assert word in message


@pytest.mark.parametrize("fps", [25, Fraction(30000, 1001)])
def test_round_trip_keeps_frames_rate_size_content_and_audio_length(tmp_path, fps):
    frames = moving_scene(30)
    audio = tone(float(30 / fps))
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps, frames.shape[1:3], audio=(audio, SAMPLE_RATE), crf=18) as writer:
        writer.write(frames[:11])  # uneven chunks on purpose
        writer.write(frames[11:])

    info = probe_video(path)
    assert info.frame_rate == fps and info.frame_count == 30
    assert (info.height, info.width) == (96, 128) and info.has_audio and info.rotation == 0
    assert info.duration == pytest.approx(float(30 / fps))
    decoded = read_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert psnr(decoded, frames) >= 30
    # AAC pads its last frame: the decoded length may exceed the input by under one frame (1024 samples).
    assert 0 <= decoded_audio_samples(path) - len(audio) < 1024


def test_ntsc_float_rate_is_stored_exactly(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, 29.97, (32, 32)) as writer:
        writer.write(np.zeros((3, 32, 32, 3), np.uint8))
    assert probe_video(path).frame_rate == Fraction(30000, 1001)


def test_streaming_read_in_chunks_equals_one_shot_read(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 25, (96, 128)) as writer:
        writer.write(moving_scene(23))
    whole = read_frames(path)
    chunks = list(iter_frames(path, chunk_size=5))
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    np.testing.assert_array_equal(read_frames(path, start=4, stop=13), whole[4:13])
    np.testing.assert_array_equal(np.concatenate(list(iter_frames(path, chunk_size=4, start=20))), whole[20:])


def test_exception_inside_writer_leaves_no_file_and_no_temp(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "out.mp4", 25, (32, 32), audio=(tone(1.0), SAMPLE_RATE)) as writer:
            writer.write(np.zeros((5, 32, 32, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_abort_keeps_an_existing_output_untouched(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous result")
    writer = VideoWriter(path, 25, (32, 32))
    writer.write(np.zeros((2, 32, 32, 3), np.uint8))
    writer.abort()
    assert path.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [path]


def test_closing_without_frames_raises_and_leaves_no_file(tmp_path):
    with pytest.raises(ResyncerInputError) as excinfo:
        with VideoWriter(tmp_path / "out.mp4", 25, (32, 32)):
            pass
    assert_one_line_error(excinfo, "no frames")
    assert list(tmp_path.iterdir()) == []


def test_wrong_frames_raise_one_line_and_leave_no_file(tmp_path):
    with pytest.raises(ResyncerInputError) as excinfo:
        with VideoWriter(tmp_path / "out.mp4", 25, (32, 32)) as writer:
            writer.write(np.zeros((2, 32, 32, 3), np.float32))
    assert_one_line_error(excinfo, "uint8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, word", [
    ({"crf": 60}, "crf"),
    ({"preset": "ludicrous"}, "preset"),
    ({"pix_fmt": "rgb24"}, "pix_fmt"),
    ({"audio": (np.zeros((3, 100), np.float32), SAMPLE_RATE)}, "stereo"),
    ({"audio": (np.zeros(100, np.float32), 12345)}, "sample rate"),
    ({"fps": 0}, "fps"),
])
def test_bad_writer_settings_raise_before_creating_anything(tmp_path, kwargs, word):
    arguments = {"path": tmp_path / "out.mp4", "fps": 25, "size": (32, 32), **kwargs}
    with pytest.raises(ResyncerInputError) as excinfo:
        VideoWriter(**arguments)
    assert_one_line_error(excinfo, word)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_extension_raises(tmp_path):
    with pytest.raises(ResyncerInputError) as excinfo:
        VideoWriter(tmp_path / "out.avi", 25, (32, 32))
    assert_one_line_error(excinfo, ".mp4")


def test_odd_frame_size_is_padded_by_repeating_the_last_row_and_column(tmp_path):
    frames = moving_scene(4, height=45, width=61)
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 25, (45, 61)) as writer:
        assert writer.encoded_size == (46, 62)
        writer.write(frames)
    info = probe_video(path)
    assert (info.height, info.width) == (46, 62)
    decoded = read_frames(path)
    assert psnr(decoded[:, :45, :61], frames) >= 30
    assert psnr(decoded[:, 45, :61], frames[:, 44]) >= 30


def test_rotation_tag_is_applied_so_frames_come_out_upright(tmp_path):
    frames = moving_scene(3, height=48, width=80)
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 80, 48, "yuv420p"
        stream.set_display_rotation(90)  # stored landscape, shown rotated 90° counter-clockwise
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (48, 80, 90)
    decoded = read_frames(path)
    assert decoded.shape == (3, 80, 48, 3)
    assert psnr(decoded, np.rot90(frames, 1, axes=(1, 2))) >= 30


def test_audio_only_file_given_as_video_raises_one_line(tmp_path):
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes((tone(0.5) * 32767).astype("<i2").tobytes())
    for read in (probe_video, read_frames):
        with pytest.raises(ResyncerInputError) as excinfo:
            read(path)
        assert_one_line_error(excinfo, "no video stream", str(path))


def test_missing_file_raises_one_line(tmp_path):
    missing = tmp_path / "nope.mp4"
    for read in (probe_video, read_frames, lambda p: next(iter_frames(p))):
        with pytest.raises(ResyncerInputError) as excinfo:
            read(missing)
        assert_one_line_error(excinfo, "does not exist", str(missing))


def test_undecodable_file_raises_one_line(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ResyncerInputError) as excinfo:
        probe_video(path)
    assert_one_line_error(excinfo, str(path))


def test_bad_read_ranges_raise(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 25, (32, 32)) as writer:
        writer.write(np.zeros((3, 32, 32, 3), np.uint8))
    with pytest.raises(ResyncerInputError):
        next(iter_frames(path, chunk_size=0))
    with pytest.raises(ResyncerInputError):
        read_frames(path, start=5, stop=2)
    with pytest.raises(ResyncerInputError):
        read_frames(path, start=10)
