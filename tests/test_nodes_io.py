"""Load Video / Load Audio / Save Video / Fit Length as ComfyUI users meet them: file combos over
the input folder that still take typed paths, a bad name refused before anything runs, the
core VIDEO type in and out, VideoHelperSuite's lazy AUDIO mapping, native sample rate and
channels from file to file, and a memory guard instead of an out-of-memory crash."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from _audio_media import sine, write_audio
from comfy_stubs.harness import install_comfy_stubs, load_pack_as_comfyui

from resyncer_core.errors import ResyncerInputError
from resyncer_core.graph.executor import GraphExecutor, GraphValidationError
from resyncer_core.video import VideoWriter

RATE = 44100


@pytest.fixture(scope="module")
def pack():
    return load_pack_as_comfyui()


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    """ComfyUI stand-ins rooted at tmp_path (input/, output/, temp/)."""
    modules = install_comfy_stubs(monkeypatch, tmp_path)
    for folder in ("input", "output", "temp"):
        (tmp_path / folder).mkdir()
    return modules


def stereo_clip(path: Path, frames: int = 25, fps: int = 25, size: int = 64) -> Path:
    """A clip with 440 Hz on the left and 1000 Hz at half level on the right, at 44.1 kHz."""
    seconds = frames / fps
    audio = np.stack([sine(440, seconds, RATE), sine(1000, seconds, RATE, amplitude=0.25)])
    with VideoWriter(path, fps, (size, size), audio=(audio, RATE), crf=23, preset="ultrafast") as writer:
        ramp = np.linspace(0, 255, frames).astype(np.uint8)
        writer.write(np.broadcast_to(ramp[:, None, None, None], (frames, size, size, 3)).copy())
    return path


def peak_frequency(waveform: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / rate)[spectrum.argmax()])


def audio_stream(path: Path) -> tuple[int, int, np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
        return stream.rate, stream.channels, samples


class LazyAudio(Mapping):
    """Like VideoHelperSuite's LazyAudioMap: a Mapping (not a dict) that decodes on first access."""

    def __init__(self, waveform: torch.Tensor, rate: int):
        self._waveform, self._rate, self.decoded = waveform, rate, False

    def __getitem__(self, key):
        self.decoded = True
        return {"waveform": self._waveform, "sample_rate": self._rate}[key]

    def __iter__(self):
        return iter(("waveform", "sample_rate"))

    def __len__(self) -> int:
        return 2


def test_file_combos_list_the_input_folder_and_offer_upload(pack, comfy, tmp_path):
    for name in ("b.mp4", "a.mov", "speech.wav", "notes.txt", "sub/c.mp4"):
        (tmp_path / "input" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "input" / name).write_bytes(b"")
    video = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadVideo"].INPUT_TYPES()["required"]["video"]
    audio = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadAudio"].INPUT_TYPES()["required"]["audio"]
    assert video[0] == ["a.mov", "b.mp4", "sub/c.mp4"] and video[1]["video_upload"] is True
    assert audio[0] == ["a.mov", "b.mp4", "speech.wav", "sub/c.mp4"] and audio[1]["audio_upload"] is True


def test_a_bad_file_name_fails_validation_before_anything_runs(pack, comfy, tmp_path, monkeypatch):
    clip = stereo_clip(tmp_path / "input" / "clip.mp4")
    loader = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadVideo"]
    assert loader.VALIDATE_INPUTS("clip.mp4") is True
    assert loader.VALIDATE_INPUTS(str(clip)) is True  # typed paths (headless runner, --set) still work
    assert loader.VALIDATE_INPUTS("clip.mp4 [input]") is True  # the upload widget's annotated names
    message = loader.VALIDATE_INPUTS("missing.mp4")
    assert isinstance(message, str) and "missing.mp4" in message and "upload" in message
    ran = []
    monkeypatch.setattr(loader, "load", lambda self, *a, **k: ran.append(1))
    prompt = {"1": {"class_type": "ReSyncerLoadVideo", "inputs": {"video": "missing.mp4", "start_frame": 0,
                                                                  "frame_limit": 0}},
              "2": {"class_type": "ReSyncerSaveVideo", "inputs": {"images": ["1", 0], "fps": 25.0,
                                                                  "filename_prefix": "x", "crf": 18}}}
    with pytest.raises(GraphValidationError, match="missing.mp4"):
        GraphExecutor(pack.NODE_CLASS_MAPPINGS).execute(prompt)
    assert ran == [] and not any((tmp_path / "output").iterdir())


def test_44k_stereo_in_is_44k_stereo_out_through_load_and_save(pack, comfy, tmp_path):
    stereo_clip(tmp_path / "input" / "clip.mp4")
    prompt = {"1": {"class_type": "ReSyncerLoadVideo", "inputs": {"video": "clip.mp4", "start_frame": 0,
                                                                  "frame_limit": 0}},
              "2": {"class_type": "ReSyncerSaveVideo", "inputs": {"images": ["1", 0], "audio": ["1", 1],
                                                                  "fps": ["1", 2], "filename_prefix": "out", "crf": 18}}}
    result = GraphExecutor(pack.NODE_CLASS_MAPPINGS).execute(prompt)
    loaded_audio = result.outputs["1"][1]
    assert loaded_audio["sample_rate"] == RATE and tuple(loaded_audio["waveform"].shape[:2]) == (1, 2)
    (entry,) = result.ui["2"]["images"]
    rate, channels, samples = audio_stream(tmp_path / "output" / entry["filename"])
    assert (rate, channels) == (RATE, 2)
    middle = samples[:, RATE // 4: 3 * RATE // 4]
    assert abs(peak_frequency(middle[0], rate) - 440) < 10 and abs(peak_frequency(middle[1], rate) - 1000) < 10
    assert 0.4 < np.abs(middle[1]).max() / np.abs(middle[0]).max() < 0.6


def test_load_audio_keeps_rate_and_channels_and_the_features_node_hears_16k_mono(pack, comfy, tmp_path):
    write_audio(tmp_path / "input" / "speech.wav", np.stack([sine(440, 1.0, RATE), sine(440, 1.0, RATE)]), RATE,
                "pcm_s16le")
    (audio,) = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadAudio"]().load("speech.wav", start_seconds=0.5)
    assert audio["sample_rate"] == RATE and tuple(audio["waveform"].shape) == (1, 2, RATE // 2)
    mono = pack.nodes.common.audio_to_mono(audio)
    assert mono.ndim == 1 and abs(len(mono) - 8000) <= 1


def test_a_lazy_audio_mapping_is_accepted(pack, comfy, tmp_path):
    lazy = LazyAudio(torch.from_numpy(np.stack([sine(300, 1.0, RATE)] * 2))[None], RATE)
    assert pack.nodes.common.audio_to_mono(lazy).shape == (16000,) and lazy.decoded
    images = torch.zeros((25, 32, 32, 3))
    saved = pack.nodes.ALL_NODE_CLASSES["ReSyncerSaveVideo"]().save(25.0, "lazy", 18, images=images,
                                                                     audio=LazyAudio(lazy["waveform"], RATE))
    (entry,) = saved["ui"]["images"]
    assert audio_stream(tmp_path / "output" / entry["filename"])[:2] == (RATE, 2)


def test_core_video_in_and_out(pack, comfy, tmp_path):
    adapter = pack.nodes.comfy_adapter
    clip = stereo_clip(tmp_path / "clip.mp4")
    loader = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadVideo"]()
    images, audio, fps, count, video = loader.load("", source_video=adapter.FileVideo(clip))
    assert (count, fps, tuple(images.shape)) == (25, 25.0, (25, 64, 64, 3))
    assert adapter.video_file_path(video) == clip  # the whole file passes on without re-encoding
    images, audio, _, count, trimmed = loader.load("", start_frame=5, frame_limit=10,
                                                   source_video=adapter.FileVideo(clip))
    assert count == 10 and audio["waveform"].shape[-1] == round(10 / 25 * RATE)
    assert adapter.video_file_path(trimmed) is None and len(trimmed.get_components().images) == 10
    # A VIDEO held as frames (core Create Video) is read through its components.
    again = loader.load("", start_frame=2, source_video=trimmed)
    assert again[3] == 8 and again[1]["sample_rate"] == RATE
    saved = pack.nodes.ALL_NODE_CLASSES["ReSyncerSaveVideo"]().save(filename_prefix="passed", video=video)
    (entry,) = saved["ui"]["images"]
    assert (tmp_path / "output" / entry["filename"]).read_bytes() == clip.read_bytes()
    with pytest.raises(ResyncerInputError, match="no frames"):
        pack.nodes.ALL_NODE_CLASSES["ReSyncerSaveVideo"]().save(filename_prefix="none")


def test_load_video_refuses_a_clip_that_would_not_fit_in_memory(pack, comfy, tmp_path, monkeypatch):
    stereo_clip(tmp_path / "input" / "clip.mp4")
    monkeypatch.setattr(pack.nodes.comfy_adapter, "available_memory_bytes", lambda: 64 * 64 * 3 * 4 * 20)
    loader = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadVideo"]()
    with pytest.raises(ResyncerInputError) as refused:
        loader.load("clip.mp4")
    message = str(refused.value)
    assert "\n" not in message and "frame_limit to 10" in message and "Lip-sync (streaming)" in message
    assert loader.load("clip.mp4", frame_limit=10)[3] == 10


@pytest.mark.parametrize("long_audio, short_audio, audio_seconds, frames, samples", [
    ("pingpong", "trim", 2.0, 50, 2 * RATE),   # audio longer: the 1 s video plays forward then back
    ("trim", "trim", 2.0, 25, RATE),           # audio longer: cut to the video
    ("pingpong", "trim", 0.5, 13, RATE // 2),  # audio shorter: the video is cut (last partial frame counts)
    ("pingpong", "pad", 0.5, 25, RATE),        # audio shorter: silence after it
])
def test_fit_length(pack, long_audio, short_audio, audio_seconds, frames, samples):
    images = torch.arange(25, dtype=torch.float32)[:, None, None, None].expand(25, 4, 4, 3) / 25
    audio = {"waveform": torch.from_numpy(np.stack([sine(440, audio_seconds, RATE)] * 2))[None], "sample_rate": RATE}
    fitted, fitted_audio, count, fps = pack.nodes.ALL_NODE_CLASSES["ReSyncerFitLength"]().fit(
        images, 25.0, long_audio, short_audio, audio=audio)
    assert count == frames == len(fitted) and fps == 25.0
    assert abs(fitted_audio["waveform"].shape[-1] - samples) <= 1 and fitted_audio["waveform"].shape[1] == 2
    if frames == 50:
        order = (fitted[:, 0, 0, 0] * 25).round().int().tolist()
        assert order[:26] == list(range(25)) + [23] and order[-2:] == [0, 1]
    driven = pack.nodes.ALL_NODE_CLASSES["ReSyncerFitLength"]().fit(images, 25.0, driving_frames=40)
    assert driven[2] == 40 and driven[1] is None


def test_fit_length_holds_a_photo_for_the_speech_at_the_chosen_frame_rate(pack):
    photo = torch.rand(1, 6, 8, 3)  # core Load Image's IMAGE: one frame
    audio = {"waveform": torch.from_numpy(sine(440, 1.5, RATE))[None, None], "sample_rate": RATE}
    fitted, fitted_audio, count, fps = pack.nodes.ALL_NODE_CLASSES["ReSyncerFitLength"]().fit(photo, 30.0, audio=audio)
    assert count == len(fitted) == 45 and fps == 30.0
    assert torch.equal(fitted, photo.expand(45, 6, 8, 3))
