"""Media files with known content for the audio tests, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def sine(frequency: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    times = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * times)).astype(np.float32)


def write_audio(path: Path, channels: np.ndarray, sample_rate: int, codec: str) -> Path:
    """Encode float [C,S] samples (C = 1 or 2) into `path`; the container follows the suffix."""
    layout = "stereo" if channels.shape[0] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        samples = np.ascontiguousarray(channels, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = 0
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return path


def write_video_only(path: Path, frames: int = 5) -> Path:
    """A short mp4 with a video stream and no audio stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(frames):
            image = np.full((64, 64, 3), index * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_video_with_audio(path: Path, mono: np.ndarray, sample_rate: int, fps: int = 25) -> Path:
    """An mp4 with a few grey video frames and an AAC track of `mono`."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(mono[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        for packet in (*audio.encode(frame), *audio.encode(None)):
            container.mux(packet)
        for index in range(round(len(mono) / sample_rate * fps)):
            image = np.full((64, 64, 3), 128, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def peak_frequency(waveform: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / sample_rate)[np.argmax(spectrum)])
