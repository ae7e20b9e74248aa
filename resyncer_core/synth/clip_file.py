"""Synthetic talking-head clips written straight to an MP4, streamed chunk by chunk."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from ..video.frame_rate import FrameRate, as_frame_rate
from ..video.partial_file import partial_file
from ..video.writer import VideoWriter
from .speech import synthetic_speech
from .speech_plan import SpeechPlan
from .talking_clip import DEFAULT_SIZE, iter_synthetic_talking_clip

SPEECH_SAMPLE_RATE = 16000


def write_synthetic_clip(path: str | os.PathLike, seconds: float, fps: FrameRate = 25,
                         size: tuple[int, int] = DEFAULT_SIZE, with_audio: bool = True, seed: int = 0,
                         motion: str = "gentle", crf: int = 18, preset: str = "medium") -> Path:
    """Writes round(seconds·fps) frames of `synthetic_talking_clip` (size is (height, width))
    to `path`, with the matching synthetic voice as AAC when `with_audio`; memory stays at
    one chunk of frames whatever the length. Returns `path`."""
    frame_rate = as_frame_rate(fps)
    frame_count = max(1, round(seconds * frame_rate))
    plan = SpeechPlan.generate(float(frame_count / frame_rate), seed)
    audio = None
    if with_audio:
        audio = (synthetic_speech(float(frame_count / frame_rate), SPEECH_SAMPLE_RATE, seed, plan), SPEECH_SAMPLE_RATE)
    with VideoWriter(path, frame_rate, size, audio=audio, crf=crf, preset=preset) as writer:
        for chunk in iter_synthetic_talking_clip(frame_count, frame_rate, size, seed, motion, plan):
            writer.write(chunk)
    return writer.path


def write_wav(path: str | os.PathLike, waveform: np.ndarray, sample_rate: int = SPEECH_SAMPLE_RATE) -> Path:
    """Mono 16-bit PCM WAV of a float waveform in -1..1, written atomically."""
    samples = np.rint(np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")
    with partial_file(Path(path)) as temp_path, wave.open(str(temp_path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(samples.tobytes())
    return Path(path)
