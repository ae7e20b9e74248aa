"""The shipped demo generator (tools/train_demo_generator.py, NOTICE.generator): trained, it
records the one face it was trained on and `auto` picks it for the demo target; driven by
exact jaw meshes on the real photo, its re-tracked lip gap follows the driver (as the mesh
warp's does in test_mesh_warp) and not the original video; bf16 gives the fp32 picture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from resyncer_core.face import FaceTracker
from resyncer_core.metrics.image import psnr
from resyncer_core.models.checkpoint import is_random_initialised, load_checkpoint
from resyncer_core.models.presets import MODEL_FILES
from resyncer_core.render.mesh_warp import lip_gap
from resyncer_core.stages.face_identity import sampled_face_crops, trained_faces
from resyncer_core.stages.functions import generate_crops, overlay_crops, paste_back
from resyncer_core.stages.warping import choose_renderer
from resyncer_core.synth import synthetic_talking_clip
from resyncer_core.synth.make_demo import DEMO_SIZE
from resyncer_core.synth.mouth import jaw_meshes
from resyncer_core.synth.talking_clip import SPEAKING_STYLE
from resyncer_core.weights import shipped_weights

GENERATOR = shipped_weights(MODEL_FILES["generator"])
DEMO_TARGET = Path(__file__).resolve().parent.parent / "demo" / "target.mp4"
FRAMES = 30


@pytest.fixture(scope="module")
def generated():
    """The real-photo clip at the demo's size, its mouth re-driven (closed → widest "aa" and
    back, twice) through the shipped generator and pasted back."""
    frames, _ = synthetic_talking_clip(FRAMES, size=DEMO_SIZE, seed=0, motion="gentle")
    tracker = FaceTracker("cpu")
    track = tracker.track(frames, 25)
    openings = SPEAKING_STYLE.amplitude * (0.5 - 0.5 * np.cos(np.linspace(0, 4 * np.pi, FRAMES)))
    meshes = jaw_meshes(track.template, openings.astype(np.float32))
    crops, overlays, masks = overlay_crops(frames, track, meshes)
    generator = load_checkpoint(GENERATOR, kind="generator")[0]
    outputs = generate_crops(generator, overlays, crops, mask=masks)
    pasted, _ = paste_back(frames, outputs, track.crop_affine, masks)
    return tracker, track, meshes, pasted, generator, overlays, crops, outputs, masks


def test_shipped_generator_is_trained_on_the_demo_face_and_only_used_when_asked(tmp_path):
    """auto leaves the shipped demo generator to the warp, which draws the demo portrait sharper
    and with more motion; a copy of it (a user's file that records the same face) is taken."""
    assert GENERATOR.is_file() and (GENERATOR.parent / "NOTICE.generator").is_file()
    assert not is_random_initialised(GENERATOR)
    assert trained_faces(GENERATOR).shape == (1, 128)
    assert load_checkpoint(GENERATOR, kind="generator")[1].hide_reference_lower_face
    lines = []
    target = lambda: sampled_face_crops(DEMO_TARGET, FaceTracker("cpu"))  # noqa: E731
    assert choose_renderer("auto", GENERATOR, lines.append, target) == "warp"
    assert len(lines) == 1 and "shipped generator is a small demo model" in lines[0]
    assert choose_renderer("generator", GENERATOR, lines.append, target) == "generator"
    users = tmp_path / "generator.safetensors"
    shutil.copyfile(GENERATOR, users)
    assert choose_renderer("auto", users, lines.append, target) == "generator" and len(lines) == 1


def test_retracked_generator_output_follows_the_driving_mesh(generated):
    tracker, track, meshes, pasted, *_ = generated
    retracked = tracker.track(pasted, 25)
    assert retracked.valid.all()
    wanted = lip_gap(torch.from_numpy(meshes)).numpy()
    seen = lip_gap(torch.from_numpy(retracked.canonical)).numpy()
    original = lip_gap(torch.from_numpy(track.canonical)).numpy()
    assert np.corrcoef(wanted, seen)[0, 1] >= 0.8
    assert abs(np.corrcoef(original, seen)[0, 1]) < 0.5  # not the reference frame's own mouth


def test_bf16_generator_matches_fp32(generated):
    *_, generator, overlays, crops, outputs, masks = generated
    half = generate_crops(generator, overlays[:4], crops[:4], mask=masks[:4], precision="bf16")
    assert psnr(half, outputs[:4]) >= 35.0


def test_cli_renders_the_demo_face_with_the_generator_and_another_with_the_warp(tmp_path_factory, tmp_path,
                                                                                monkeypatch, capsys):
    """`resyncer lipsync --generator G` (a trained generator file of the demo face): it draws the
    face it knows; when the face does not match (here: the same-face bar raised above any
    similarity) it says so in one line and the mesh warp draws it."""
    from _pipeline_media import speech_wav, talking_clip
    from resyncer_core.cli import main
    from resyncer_core.stages import warping

    monkeypatch.delenv("RESYNCER_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./models: the shipped folder
    clip, speech = talking_clip(tmp_path_factory, 0.8), speech_wav(tmp_path / "speech.wav", 0.6)
    users = tmp_path / "trained_generator.safetensors"
    shutil.copyfile(GENERATOR, users)
    argv = ["lipsync", "--video", str(clip), "--audio", str(speech), "--x264-preset", "ultrafast",
            "--generator", str(users), "-o"]
    assert main([*argv, str(tmp_path / "generator.mp4")]) == 0
    printed = capsys.readouterr().out
    assert "mesh warp" not in printed and "generator" in printed  # the stage times name the generator
    monkeypatch.setattr(warping, "SAME_FACE_SIMILARITY", 1.01)
    assert main([*argv, str(tmp_path / "warp.mp4")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "trained on 1 face(s) only" in line]
    assert len(lines) == 1 and "rendering with the training-free mesh warp" in lines[0]
