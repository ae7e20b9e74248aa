"""The shared workflows run headless in-process with tiny models on a short synthetic clip, and
an interrupt during the generator loop stops within one batch and leaves no output file."""

from __future__ import annotations

import json
import sys

import pytest
from comfy_stubs.harness import (
    REPO,
    install_comfy_stubs,
    load_pack_as_comfyui,
    synthetic_clip,
    tiny_models,
)

from resyncer_core.cli import main
from resyncer_core.graph import context
from resyncer_core.graph.executor import GraphExecutor, GraphInterrupted
from resyncer_core.graph.prompt import apply_overrides, load_workflow
from resyncer_core.video import probe_video

WORKFLOWS = REPO / "api_workflows"
# The workflows default to the shipped files; these runs pick the tiny models of the models folder by name.
PICK_TINY_MODELS = ["ReSyncerLoadWav2Vec2.model=wav2vec2", "ReSyncerLoadSyncFormer.model=syncformer.safetensors",
                    "ReSyncerLoadGenerator.model=generator.safetensors"]


@pytest.fixture(scope="module")
def registry():
    return dict(load_pack_as_comfyui().NODE_CLASS_MAPPINGS)


@pytest.fixture(autouse=True)
def _fresh_interrupt_flag():
    context.clear_interrupt()
    yield
    context.clear_interrupt()


def _node(prompt: dict, class_type: str) -> str:
    (node_id,) = [i for i, n in prompt.items() if n["class_type"] == class_type]
    return node_id


def test_cli_runs_the_lipsync_workflow_in_process(tmp_path, capsys, monkeypatch):
    clip = synthetic_clip(2.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress lines are for a terminal
    picks = [argument for pick in PICK_TINY_MODELS for argument in ("--set", pick)]
    code = main(["run-workflow", str(WORKFLOWS / "lipsync_api.json"), "--set", f"Target video.video={clip}",
                 "--set", f"Speech.audio={clip}", *picks, "--models", str(tiny_models()), "--output-dir", str(tmp_path),
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    *notices, written = captured.out.splitlines()  # the output file last, after the nodes' notices
    assert notices == ["ReSyncer: generator.safetensors is a random initialisation (untrained): drawn with the mesh "
                       "warp instead"]
    info = probe_video(written)
    assert written.startswith(str(tmp_path)) and written.endswith(".mp4")
    # Fit Length makes the output as long as the speech: the clip's AAC track runs up to one AAC
    # frame (64 ms) past its 50 video frames, which pingpong covers with one or two more.
    assert info.frame_count in (50, 51, 52)
    assert (info.width, info.height, info.fps, info.has_audio) == (256, 256, 25.0, True)
    assert "running node 12 (ReSyncerGenerator)" in captured.err and "done in" in captured.err


def test_cli_input_errors_are_one_line(tmp_path, capsys):
    models, clip = tiny_models(), synthetic_clip(2.0)
    capsys.readouterr()
    code = main(["run-workflow", str(WORKFLOWS / "lipsync_api.json"), "--set", "Target video.video=/nonexistent.mp4",
                 "--set", f"Speech.audio={clip}", "--models", str(models), "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    # Refused by Load Video's VALIDATE_INPUTS before anything runs.
    assert "node 1 (ReSyncerLoadVideo), input 'video': file /nonexistent.mp4 does not exist" in err
    code = main(["run-workflow", str(WORKFLOWS / "lipsync_api.json"), "--set", "7.model=missing.safetensors",
                 "--set", f"Target video.video={clip}", "--set", f"Speech.audio={clip}", "--models", str(tiny_models()),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "node 7 (ReSyncerLoadGenerator), input 'model': 'missing.safetensors' is not one of the choices" in err
    code = main(["run-workflow", str(REPO / "example_workflows" / "ReSyncer lip-sync.json"), "--quiet"])
    assert code == 2 and "UI-format" in capsys.readouterr().err


def test_interrupt_in_the_generator_loop_stops_within_one_batch_and_writes_nothing(registry, tmp_path, monkeypatch):
    clip = synthetic_clip(2.0)
    prompt = apply_overrides(load_workflow(WORKFLOWS / "lipsync_api.json"),
                             [f"Target video.video={clip}", f"Speech.audio={clip}", "ReSyncerGenerator.batch_size=4",
                              *PICK_TINY_MODELS])
    generator_node = _node(prompt, "ReSyncerGenerator")
    batches = []

    def listener(event, data):
        if event == "progress" and data["node"] == generator_node:
            batches.append(data["value"])
            context.request_interrupt()  # the user presses stop as the first batch finishes

    executor = GraphExecutor(registry, listener=listener)
    output = tmp_path / "out"
    with context.scoped(models_dir=tiny_models(), output_dir=output, device="cpu"):
        with pytest.raises(GraphInterrupted) as caught:
            executor.execute(prompt)
        assert caught.value.node_id == generator_node
        assert batches == [4]  # one batch of 4 of the 50 frames, then the stop
        assert not output.exists() or not any(p.is_file() for p in output.rglob("*"))

        # Run again: the finished upstream nodes come from the cache, the rest completes.
        batches.clear()
        listener_events = []
        executor.listener = lambda event, data: listener_events.append((event, data))
        result = executor.execute(prompt)
        assert set(result.cached) >= {_node(prompt, "ReSyncerTrackFace"), _node(prompt, "ReSyncerSyncFormer")}
        assert generator_node in result.executed
        (saved,) = [p for p in output.rglob("*.mp4")]
        assert probe_video(saved).frame_count in (50, 51, 52)  # as long as the speech (see above)

        # Inside ComfyUI the interrupt is comfy.model_management's; the generator stops the same way.
        stubs = install_comfy_stubs(monkeypatch, tmp_path / "comfy")
        management = stubs["comfy.model_management"]
        seen = []

        def comfy_listener(event, data):
            if event == "progress" and data["node"] == generator_node:
                seen.append(data)

        def hook(value, total, preview, node_id=None):
            seen.append(value)
            management.interrupt_current_processing(True)

        stubs["comfy.utils"].set_progress_bar_global_hook(hook)
        executor.listener = comfy_listener
        comfy_prompt = apply_overrides(prompt, ["ReSyncerGenerator.batch_size=5", "Save Video.filename_prefix=comfy/run"])
        with pytest.raises(GraphInterrupted):
            executor.execute(comfy_prompt)
        assert seen == [5]
        assert not (tmp_path / "comfy" / "output").exists() and not list(output.rglob("comfy/*"))


@pytest.mark.parametrize("flow, sources", [
    ("video_driven", {"Target video.video": 0, "Driver video.video": 1}),
    ("lipsync_style_transfer", {"Target video.video": 0, "Speech.audio": 1, "Style video.video": 1}),
    ("face_swap_lipsync", {"Target video.video": 0, "Speech.audio": 0, "Source face.video": 1}),
])
def test_the_other_flows_run_in_process(registry, tmp_path, flow, sources):
    clips = [synthetic_clip(1.0, seed=0), synthetic_clip(1.0, seed=1)]
    prompt = load_workflow(WORKFLOWS / f"{flow}_api.json")
    loaders = {node["class_type"] for node in prompt.values()}
    prompt = apply_overrides(prompt, [f"{target}={clips[index]}" for target, index in sources.items()]
                             + [pick for pick in PICK_TINY_MODELS if pick.split(".")[0] in loaders])
    with context.scoped(models_dir=tiny_models(), output_dir=tmp_path, device="cpu"):
        result = GraphExecutor(registry).execute(prompt)
    save = _node(prompt, "ReSyncerSaveVideo")
    (entry,) = result.ui[save]["images"]
    info = probe_video(tmp_path / entry["subfolder"] / entry["filename"])
    assert info.frame_count in (25, 26, 27)  # as long as the driving speech or driver (see above)
    assert (info.width, info.height, info.has_audio) == (256, 256, True)
    previews = [n for n, ui in result.ui.items() if n != save]
    assert _node(prompt, "ReSyncerMeshOverlay") in previews
    assert {i for i, n in prompt.items() if n["class_type"] == "ReSyncerTrackFace"} <= set(previews)
    json.dumps(result.ui)  # UI payloads are plain JSON, as ComfyUI sends them to the browser


def test_mesh_warp_flow_runs_on_the_shipped_models_alone(registry, tmp_path):
    """The any-face template needs no models folder: shipped Whisper encoder and SyncFormer, Mesh Warp."""
    clip = synthetic_clip(1.0, seed=0)
    prompt = apply_overrides(load_workflow(WORKFLOWS / "lipsync_mesh_warp_api.json"),
                             [f"Target video.video={clip}", f"Speech.audio={clip}"])
    (tmp_path / "empty_models").mkdir()
    with context.scoped(models_dir=tmp_path / "empty_models", output_dir=tmp_path, device="cpu"):
        result = GraphExecutor(registry).execute(prompt)
    (entry,) = result.ui[_node(prompt, "ReSyncerSaveVideo")]["images"]
    info = probe_video(tmp_path / entry["subfolder"] / entry["filename"])
    assert info.frame_count in (25, 26, 27) and info.has_audio


def test_personalize_then_lipsync_runs_and_saves_the_tuned_generator(registry, tmp_path):
    assert "ReSyncerPersonalize" in registry
    models = tmp_path / "models"
    (models).mkdir()
    for path in tiny_models().iterdir():
        (models / path.name).symlink_to(path)
    clip = synthetic_clip(1.0)
    prompt = apply_overrides(load_workflow(WORKFLOWS / "personalize_lipsync_api.json"),
                             [f"Target video.video={clip}", f"Speech.audio={clip}", "Personalize.steps=2",
                              "Personalize.batch_size=2", "Personalize.save_as=tuned", *PICK_TINY_MODELS,
                              "Personalize.discriminator=discriminator.safetensors"])
    steps = []
    listener = lambda event, data: steps.append(data["value"]) if event == "progress" and data["node"] == tuned else None
    tuned = _node(prompt, "ReSyncerPersonalize")
    with context.scoped(models_dir=models, output_dir=tmp_path / "out", device="cpu"):
        result = GraphExecutor(registry, listener=listener).execute(prompt)  # nodes run under inference_mode
    assert steps[-2:] == [1, 2]
    assert (models / "tuned.safetensors").is_file()
    from resyncer_core.models.checkpoint import load_checkpoint

    original, _ = load_checkpoint(tiny_models() / "generator.safetensors", kind="generator")
    personalised, _ = load_checkpoint(models / "tuned.safetensors", kind="generator")
    changed = [name for name, value in personalised.state_dict().items()
               if not bool((value == original.state_dict()[name]).all())]
    assert changed  # the weights moved, and the folder's generator.safetensors did not
    (entry,) = result.ui[_node(prompt, "ReSyncerSaveVideo")]["images"]
    assert probe_video(tmp_path / "out" / entry["subfolder"] / entry["filename"]).frame_count in (25, 26, 27)


def test_talking_photo_flow_holds_a_photo_for_the_speech_on_what_ships(registry, tmp_path):
    """The IMAGE target path: core Load Image's one frame (its stand-in here) → Fit Length at the
    frame rate of its widget → the shipped models; the saved video lasts as long as the speech."""
    from PIL import Image

    from resyncer_core.video import read_frames

    registry = {**load_pack_as_comfyui().CORE_STAND_INS, **registry}
    clip = synthetic_clip(1.0, seed=0)
    Image.fromarray(read_frames(clip)[0]).save(tmp_path / "photo.png")
    prompt = apply_overrides(load_workflow(WORKFLOWS / "talking_photo_api.json"),
                             [f"Photo.image={tmp_path / 'photo.png'}", f"Speech.audio={clip}",
                              "Hold photo for the speech.fps=20"])
    (tmp_path / "empty_models").mkdir()
    with context.scoped(models_dir=tmp_path / "empty_models", output_dir=tmp_path, device="cpu"):
        result = GraphExecutor(registry).execute(prompt)
    (entry,) = result.ui[_node(prompt, "ReSyncerSaveVideo")]["images"]
    info = probe_video(tmp_path / entry["subfolder"] / entry["filename"])
    assert info.fps == 20.0 and info.frame_count in (20, 21, 22) and info.has_audio
    # The shipped generator is a small demo model: the node hands the face to the sharper mesh
    # warp and says so on the node (a user's trained generator draws it itself).
    (generator_info,) = result.ui[_node(prompt, "ReSyncerGenerator")]["resyncer"]
    assert generator_info["renderer"] == "mesh warp" and "small demo model" in generator_info["warning"]


def test_face_swap_with_a_generator_not_trained_for_swap_warps_and_says_so(registry, tmp_path):
    clips = [synthetic_clip(1.0, seed=0), synthetic_clip(1.0, seed=1)]
    prompt = apply_overrides(load_workflow(WORKFLOWS / "face_swap_lipsync_api.json"),
                             [f"Target video.video={clips[0]}", f"Speech.audio={clips[0]}",
                              f"Source face.video={clips[1]}", "Source face.frame_limit=5"])
    (tmp_path / "empty_models").mkdir()
    with context.scoped(models_dir=tmp_path / "empty_models", output_dir=tmp_path, device="cpu"):
        result = GraphExecutor(registry).execute(prompt)
    (swap_info,) = result.ui[_node(prompt, "ReSyncerFaceSwapInject")]["resyncer"]
    assert swap_info["renderer"] == "mesh warp"
    assert "not trained for face swap" in swap_info["warning"] and "mesh warp" in swap_info["warning"]
