"""ReSyncer Lip-sync (streaming): the CLI's chunked engine as one node, file or VIDEO in, VIDEO
out, in all three modes, with progress, interrupts that leave no file, the driving audio's own
rate and channels in the output, and its shipped API workflow running headless."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from _audio_media import sine
from comfy_stubs.harness import REPO, load_pack_as_comfyui, synthetic_clip, tiny_models

from resyncer_core.errors import ResyncerInputError
from resyncer_core.graph import context
from resyncer_core.graph.executor import GraphExecutor, GraphInterrupted, NodeExecutionError
from resyncer_core.graph.prompt import apply_overrides, load_workflow
from resyncer_core.video import probe_video, read_frames

RATE = 44100


@pytest.fixture(scope="module")
def pack():
    return load_pack_as_comfyui()


@pytest.fixture(autouse=True)
def _fresh_interrupt_flag():
    context.clear_interrupt()
    yield
    context.clear_interrupt()


def models_graph() -> dict:
    return {
        "1": {"class_type": "ReSyncerLoadGenerator", "inputs": {"model": "generator.safetensors", "device": "cpu"}},
        "2": {"class_type": "ReSyncerLoadSyncFormer", "inputs": {"model": "syncformer.safetensors", "device": "cpu"}},
        "3": {"class_type": "ReSyncerLoadWav2Vec2", "inputs": {"model": "wav2vec2", "device": "cpu"}},
    }


def streaming_prompt(mode: str, **inputs) -> dict:
    prompt = models_graph()
    prompt["4"] = {"class_type": "ReSyncerLipSyncStreaming",
                   "inputs": {"generator": ["1", 0], "mode": mode, "long_audio": "pingpong", "short_audio": "trim",
                              "batch_size": 8, "chunk_frames": 8, "crf": 23, "syncformer": ["2", 0],
                              "audio_encoder": ["3", 0], **inputs}}
    prompt["5"] = {"class_type": "ReSyncerSaveVideo", "inputs": {"video": ["4", 0], "fps": 25.0,
                                                                 "filename_prefix": "stream", "crf": 18}}
    return prompt


def run(pack, prompt, tmp_path, listener=None):
    with context.scoped(models_dir=tiny_models(), output_dir=tmp_path / "out", temp_dir=tmp_path / "temp",
                        device="cpu"):
        return GraphExecutor(pack.NODE_CLASS_MAPPINGS, listener=listener).execute(prompt)


def saved(result, tmp_path):
    (entry,) = result.ui["5"]["images"]
    return tmp_path / "out" / entry["subfolder"] / entry["filename"]


def test_audio_mode_streams_a_file_to_a_video_with_44k_stereo(pack, tmp_path, caplog):
    """(The tiny generator is a random initialisation: the node renders with the mesh warp, as
    the CLI's auto does, and says so.)"""
    clip = synthetic_clip(1.0)
    events = []
    prompt = streaming_prompt("audio", video_file=str(clip), audio_file=str(stereo_wav(tmp_path)))
    with caplog.at_level("WARNING"):
        result = run(pack, prompt, tmp_path, listener=lambda event, data: events.append((event, data)))
    warning = "generator.safetensors is a random initialisation (untrained): drawn with the mesh warp instead"
    assert any(warning in line for line in caplog.messages)
    output = saved(result, tmp_path)
    info = probe_video(output)
    assert (info.frame_count, info.width, info.height, info.has_audio) == (25, 256, 256, True)
    with av.open(str(output)) as container:
        assert (container.streams.audio[0].rate, container.streams.audio[0].channels) == (RATE, 2)
    progress = [data for event, data in events if event == "progress" and data["node"] == "4"]
    assert progress and progress[-1]["value"] == progress[-1]["max"]
    assert result.ui["4"]["resyncer"][0]["frames"] == 25
    assert result.ui["4"]["resyncer"][0]["warning"] == warning  # shown on the node, not only in the log
    assert not list((tmp_path / "temp").glob("*.wav"))  # the AUDIO copy for the engine is gone


def stereo_wav(tmp_path):
    from _audio_media import write_audio

    return write_audio(tmp_path / "speech.wav", np.stack([sine(300, 1.0, RATE), sine(500, 1.0, RATE)]), RATE,
                       "pcm_s16le")


def test_video_driven_and_swap_modes_take_video_and_image_inputs(pack, tmp_path):
    adapter = pack.nodes.comfy_adapter
    node = pack.nodes.ALL_NODE_CLASSES["ReSyncerLipSyncStreaming"]()
    target, driver = synthetic_clip(1.0, seed=0), synthetic_clip(1.0, seed=1)
    with context.scoped(models_dir=tiny_models(), temp_dir=tmp_path / "temp", device="cpu"):
        (generator,) = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadGenerator"]().load("generator.safetensors", "cpu")
        driven = node.run(generator, mode="video-driven", video=adapter.FileVideo(target),
                          driver=adapter.FileVideo(driver))
        face = torch.from_numpy(read_frames(driver, stop=1)).float() / 255
        swapped = node.run(generator, mode="swap", video_file=str(target), identity=face)
    for output in (driven, swapped):
        (video,) = output["result"]
        path = adapter.video_file_path(video)
        assert probe_video(path).frame_count == 25 and path.parent == tmp_path / "temp"
    assert not list((tmp_path / "temp").glob("*.png"))


@pytest.mark.parametrize("mode, inputs, word", [
    ("audio", {}, "video"),
    ("audio", {"video_file": "__CLIP__"}, "speech"),
    ("video-driven", {"video_file": "__CLIP__"}, "driver"),
    ("swap", {"video_file": "__CLIP__"}, "identity"),
    ("audio", {"video_file": "/nonexistent/clip.mp4", "audio_file": "x.wav"}, "not found"),
])
def test_missing_inputs_are_one_line_errors_before_any_work(pack, tmp_path, mode, inputs, word):
    node = pack.nodes.ALL_NODE_CLASSES["ReSyncerLipSyncStreaming"]()
    inputs = {k: (str(synthetic_clip(1.0)) if v == "__CLIP__" else v) for k, v in inputs.items()}
    with context.scoped(models_dir=tiny_models(), temp_dir=tmp_path / "temp", device="cpu"):
        (generator,) = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadGenerator"]().load("generator.safetensors", "cpu")
        with pytest.raises(ResyncerInputError) as error:
            node.run(generator, mode=mode, **inputs)
    assert word in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "temp").exists() or not any((tmp_path / "temp").iterdir())


def test_an_interrupt_stops_the_engine_and_leaves_no_file(pack, tmp_path):
    clip = synthetic_clip(1.0)

    def listener(event, data):
        if event == "progress" and data["node"] == "4" and data["value"] > 0:
            context.request_interrupt()

    prompt = streaming_prompt("audio", video_file=str(clip))
    prompt["6"] = {"class_type": "ReSyncerFitLength", "inputs": {"images": ["7", 0], "fps": 25.0,
                                                                 "long_audio": "trim", "short_audio": "trim",
                                                                 "audio": ["7", 1]}}
    prompt["7"] = {"class_type": "ReSyncerLoadVideo", "inputs": {"video": str(clip), "start_frame": 0,
                                                                 "frame_limit": 0}}
    prompt["4"]["inputs"]["audio"] = ["6", 1]
    with pytest.raises(GraphInterrupted):
        run(pack, prompt, tmp_path, listener=listener)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.mp4"))
    # The engine's output and the WAV copy of the in-memory AUDIO (from Fit Length) are gone too.
    assert not any((tmp_path / "temp").glob("*.mp4")) and not any((tmp_path / "temp").glob("*.wav"))


def test_the_shipped_streaming_workflow_runs_headless(pack, tmp_path):
    clip = synthetic_clip(1.0)
    prompt = apply_overrides(load_workflow(REPO / "api_workflows" / "lipsync_streaming_api.json"),
                             [f"Lip-sync (streaming).video_file={clip}", f"Lip-sync (streaming).audio_file={clip}"])
    with context.scoped(models_dir=tiny_models(), output_dir=tmp_path / "out", temp_dir=tmp_path / "temp",
                        device="cpu"):
        result = GraphExecutor(pack.NODE_CLASS_MAPPINGS).execute(prompt)
    (save,) = [n for n, node in prompt.items() if node["class_type"] == "ReSyncerSaveVideo"]
    (entry,) = result.ui[save]["images"]
    # The clip's AAC track runs a few ms past its 25 frames; pingpong covers them with one more.
    assert probe_video(tmp_path / "out" / entry["subfolder"] / entry["filename"]).frame_count in (25, 26)
    json.dumps(result.ui)


def test_a_failing_run_is_reported_as_the_nodes_error(pack, tmp_path):
    prompt = streaming_prompt("audio", video_file=str(synthetic_clip(1.0)), audio_file=str(tmp_path / "absent.wav"))
    with pytest.raises((NodeExecutionError, ResyncerInputError), match="absent.wav"):
        run(pack, prompt, tmp_path)


def test_audio_mode_takes_a_photo_as_the_target_at_the_fps_widget(pack, tmp_path):
    """An IMAGE (core Load Image's one frame, its stand-in here) instead of a video: held for the
    speech's length at the frame rate of the fps widget."""
    from PIL import Image

    Image.fromarray(read_frames(synthetic_clip(1.0))[0]).save(tmp_path / "photo.png")
    prompt = streaming_prompt("audio", audio_file=str(stereo_wav(tmp_path)), images=["6", 0], fps=10.0)
    prompt["6"] = {"class_type": "LoadImage", "inputs": {"image": str(tmp_path / "photo.png")}}
    with context.scoped(models_dir=tiny_models(), output_dir=tmp_path / "out", temp_dir=tmp_path / "temp",
                        device="cpu"):
        result = GraphExecutor({**pack.CORE_STAND_INS, **pack.NODE_CLASS_MAPPINGS}).execute(prompt)
    info = probe_video(saved(result, tmp_path))
    assert (info.frame_count, info.fps, info.width, info.height, info.has_audio) == (10, 10.0, 256, 256, True)
    assert not list((tmp_path / "temp").glob("ReSyncer_target_*.mp4"))  # the photo's video for the engine is gone
