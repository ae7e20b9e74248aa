"""Shared inputs of the pipeline and CLI tests: tiny models made once per test session,
short synthetic talking clips, speech WAVs and a clip without any face."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import numpy as np

from resyncer_core.models.presets import init_models
from resyncer_core.synth import synthetic_speech, write_synthetic_clip
from resyncer_core.synth.clip_file import write_wav
from resyncer_core.video import VideoWriter

SMALL_SIZE = (240, 320)  # (height, width): a face the tracker finds, cheap to render and encode
FPS = 25


@functools.cache
def _session_folder(basetemp: Path, name: str) -> Path:
    folder = basetemp / name
    folder.mkdir(exist_ok=True)
    return folder


def tiny_models(tmp_path_factory) -> Path:
    """The tiny-preset models folder, written once per session (init_models refuses to
    overwrite, so a second call reuses it)."""
    folder = _session_folder(tmp_path_factory.getbasetemp(), "tiny_models")
    if not (folder / "generator.safetensors").exists():
        init_models("tiny", folder, seed=0)
    return folder


def two_speaker_dataset(tmp_path_factory) -> Path:
    """A training dataset with crop video (what stage 2, swap and eval read): two speakers, one
    0.8 s synthetic clip each, preprocessed once per session."""
    from resyncer_core.train.preprocess import PreprocessConfig, preprocess_folder

    folder = _session_folder(tmp_path_factory.getbasetemp(), "two_speaker_dataset")
    data = folder / "data"
    if not (data / "index.jsonl").is_file():
        for speaker, seed in (("alice", 0), ("bob", 3)):
            (folder / "videos" / speaker).mkdir(parents=True, exist_ok=True)
            (folder / "videos" / speaker / "clip.mp4").symlink_to(talking_clip(tmp_path_factory, 0.8, seed=seed))
        assert preprocess_folder(folder / "videos", data, PreprocessConfig(min_frames=10)).written == 2
    return data


def talking_clip(tmp_path_factory, seconds: float, seed: int = 0, size=SMALL_SIZE, with_audio: bool = True) -> Path:
    """A synthetic talking-head mp4, written once per session per arguments."""
    folder = _session_folder(tmp_path_factory.getbasetemp(), "clips")
    path = folder / f"talk_{seconds}s_seed{seed}_{size[0]}x{size[1]}_{'av' if with_audio else 'v'}.mp4"
    if not path.exists():
        write_synthetic_clip(path, seconds, FPS, size, with_audio=with_audio, seed=seed, preset="ultrafast")
    return path


def speech_wav(path: Path, seconds: float, seed: int = 1) -> Path:
    return write_wav(path, synthetic_speech(seconds, 16000, seed), 16000)


def faceless_clip(path: Path, frames: int, size=SMALL_SIZE) -> Path:
    """An mp4 of drifting colour gradients: no face anywhere."""
    height, width = size
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    with VideoWriter(path, FPS, size, preset="ultrafast") as writer:
        for index in range(frames):
            frame = np.broadcast_to(ramp + 2 * index, (height, width, 3)) * np.array([1.0, 0.6, 0.3])
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    return path


def leftovers(folder: Path, name: str) -> list[Path]:
    """`name` itself and any temporary file the writer made for it."""
    return [path for path in folder.iterdir() if path.name == name or path.name.startswith(f".{name}.")]


def two_face_clip(path: Path, frames: int) -> Path:
    """An mp4 of two synthetic talking heads side by side, 240×400: a large one on the left
    (about 75 px wide) and a smaller one on the right (about 60 px)."""
    from resyncer_core.synth.talking_clip import TalkingHeadRenderer

    large = TalkingHeadRenderer(frames, FPS, (240, 200), seed=0).render(np.arange(frames))
    small = TalkingHeadRenderer(frames, FPS, (160, 160), seed=1).render(np.arange(frames))
    clip = np.empty((frames, 240, 400, 3), np.uint8)
    clip[:] = large[:, :1, :1]  # the backdrop's top tone behind the small head's panel
    clip[:, :, :200] = large
    clip[:, 40:200, 220:380] = small
    with VideoWriter(path, FPS, (240, 400), preset="ultrafast") as writer:
        writer.write(clip)
    return path


def variable_rate_clip(path: Path, source: Path, frame_times_ms: list[int]) -> Path:
    """The first len(frame_times_ms) frames of `source` re-encoded with those presentation
    times (milliseconds): a variable-frame-rate mp4, as phones record."""
    import av

    from resyncer_core.video import read_frames

    frames = read_frames(source, stop=len(frame_times_ms))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1000)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for rgb, millisecond in zip(frames, frame_times_ms):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = millisecond, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
