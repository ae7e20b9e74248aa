"""Video-driven lip-sync, face swap (with and without audio) and personalisation end to end
on small synthetic clips with tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from _pipeline_media import FPS, leftovers, speech_wav, talking_clip, tiny_models
from resyncer_core.audio import SAMPLE_RATE, load_audio
from resyncer_core.face import FaceTracker
from resyncer_core.models.checkpoint import load_checkpoint, read_checkpoint_header, save_checkpoint
from resyncer_core.pipeline import (PipelineCallbacks, PipelineCancelled, RenderOptions, drive_video,
                                    load_pipeline_models, swap_video)
from resyncer_core.pipeline.drive import driver_frames_at
from resyncer_core.synth import synthetic_talking_clip
from resyncer_core.train.generator_training import reference_indices
from resyncer_core.stages.face_identity import trained_faces
from resyncer_core.train.personalize import (PersonalizeConfig, clip_from_video, personalize_generator,
                                             personalize_video, with_w_plus_offset)
from resyncer_core.video import probe_video

FAST = RenderOptions(x264_preset="ultrafast")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def video_models(models_dir):
    return load_pipeline_models(models_dir, with_audio=False)


@pytest.fixture(scope="module")
def audio_models(models_dir):
    return load_pipeline_models(models_dir)


def test_drive_transfers_the_driver_and_muxes_its_audio(tmp_path_factory, tmp_path, video_models):
    target = talking_clip(tmp_path_factory, 1.2)                # 30 frames
    driver = talking_clip(tmp_path_factory, 1.6, seed=7)        # 40 frames with audio
    result = drive_video(target, driver, tmp_path / "out.mp4", video_models, options=FAST)
    info = probe_video(tmp_path / "out.mp4")
    assert result.frames_written == info.frame_count == 40 and info.has_audio
    assert result.frames_without_face == 0
    assert abs(len(load_audio(tmp_path / "out.mp4")) - len(load_audio(driver))) <= 1024


def test_drive_without_driver_audio_writes_a_silent_video(tmp_path_factory, tmp_path, video_models):
    target = talking_clip(tmp_path_factory, 1.2)
    driver = talking_clip(tmp_path_factory, 0.8, seed=7, with_audio=False)
    result = drive_video(target, driver, tmp_path / "out.mp4", video_models, options=FAST)
    info = probe_video(tmp_path / "out.mp4")
    assert result.frames_written == info.frame_count == 20 and not info.has_audio


@pytest.mark.parametrize("flow", ["lipsync", "drive", "swap"])
def test_a_faceless_secondary_input_fails_before_the_target_is_tracked(flow, tmp_path_factory, tmp_path, monkeypatch):
    """A style video, driver or identity without a face is refused before the target's
    tracking, the long work of a long clip (issue 24: a faceless --style-from failed after
    29 s of it)."""
    import importlib

    from _pipeline_media import faceless_clip

    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.pipeline import lipsync_video
    from resyncer_core.stages.model_files import PipelineModels
    from resyncer_core.stages.warping import MeshWarp

    def target_tracked(*args, **kwargs):
        raise AssertionError("the target was tracked before the faceless input was checked")

    monkeypatch.setattr(importlib.import_module(f"resyncer_core.pipeline.{flow}"), "track_for_plan", target_tracked)
    target, faceless = talking_clip(tmp_path_factory, 0.6), faceless_clip(tmp_path / "faceless.mp4", 5)
    models, output = PipelineModels(generator=MeshWarp(torch.device("cpu"))), tmp_path / "out.mp4"
    run = {"lipsync": lambda: lipsync_video(target, speech_wav(tmp_path / "speech.wav", 0.4), output, models,
                                            style_from=faceless),
           "drive": lambda: drive_video(target, faceless, output, models),
           "swap": lambda: swap_video(target, faceless, output, models)}[flow]
    with pytest.raises(ResyncerInputError, match="faceless.mp4 shows no face"):
        run()
    assert not output.exists()


def test_driver_frames_follow_time_across_frame_rates():
    assert driver_frames_at(4, 25, 25).tolist() == [0, 1, 2, 3]
    assert driver_frames_at(6, 50, 25).tolist() == [0, 2, 4]
    assert driver_frames_at(3, 25, 50).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.fixture(scope="module")
def identity_image(tmp_path_factory):
    frames, _ = synthetic_talking_clip(1, FPS, (256, 256), seed=11)
    path = tmp_path_factory.mktemp("identity") / "face.png"
    Image.fromarray(frames[0]).save(path)
    return path


def test_swap_without_audio_keeps_the_target_soundtrack(tmp_path_factory, tmp_path, video_models, identity_image):
    target = talking_clip(tmp_path_factory, 1.2)
    frames_seen = []
    result = swap_video(target, identity_image, tmp_path / "out.mp4", video_models, options=FAST,
                        callbacks=PipelineCallbacks(on_frames=lambda chunk: frames_seen.append(chunk.pasted)))
    info = probe_video(tmp_path / "out.mp4")
    assert result.frames_written == info.frame_count == 30 and info.has_audio
    assert abs(len(load_audio(tmp_path / "out.mp4")) - len(load_audio(target))) <= 1024
    # A' covers the whole face: far more of the frame than the lower-face mask of lip-sync.
    shares = [(region.weights > 0).sum().item() for chunk in frames_seen for region in chunk]
    assert min(shares) > 0.05 * 240 * 320


def test_swap_with_audio_and_a_video_identity(tmp_path_factory, tmp_path, audio_models):
    target = talking_clip(tmp_path_factory, 1.2)
    identity = talking_clip(tmp_path_factory, 0.8, seed=9, with_audio=False)
    audio = speech_wav(tmp_path / "speech.wav", 1.0)
    result = swap_video(target, identity, tmp_path / "out.mp4", audio_models, audio=audio, options=FAST)
    assert result.frames_written == probe_video(tmp_path / "out.mp4").frame_count == 25
    assert abs(len(load_audio(tmp_path / "out.mp4")) - SAMPLE_RATE) <= 1024


def test_reference_frames_are_near_and_never_the_target():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 200, size=2000)
    references = reference_indices(targets, 200, rng)
    assert (references != targets).all()
    assert (np.abs(references - targets) <= 30).all()
    middle = reference_indices(np.full(1000, 100), 200, rng)
    assert set(middle.tolist()) == set(range(85, 116)) - {100}  # the 30 nearest, 15 each side
    edge = reference_indices(np.zeros(500, np.int64), 200, rng)
    assert set(edge.tolist()) == set(range(1, 31))  # the 30 nearest to the first frame
    assert (reference_indices(np.zeros(3, np.int64), 1, rng) == 0).all()


def test_personalize_writes_a_generator_that_lipsync_loads(tmp_path_factory, tmp_path, models_dir):
    video = talking_clip(tmp_path_factory, 1.2)
    log = []
    output = personalize_video(video, tmp_path / "person.safetensors", PersonalizeConfig(steps=3, batch_size=2),
                               models_dir=models_dir, log=log.append)
    assert any("random-initialised" in line for line in log)  # the folder's VGG19 is not used ...
    assert any("EfficientNet-Lite0 feature loss" in line for line in log)  # ... the shipped network is
    assert any("L1 + 5·L1 in A + 0.1·EfficientNet-Lite0 feature loss + 0.1·adversarial" in line for line in log)
    assert sum(line.startswith("personalize: lower face on") for line in log) == 2  # before and after
    assert trained_faces(output).shape == (1, 128)  # the face it was tuned on
    generator, _ = load_checkpoint(output, kind="generator")
    original, _ = load_checkpoint(models_dir / "generator.safetensors", kind="generator")
    assert any(not torch.equal(a, b) for a, b in zip(generator.state_dict().values(), original.state_dict().values()))
    assert read_checkpoint_header(output).kind == "generator"
    models = load_pipeline_models(models_dir, with_audio=False, generator_path=output)
    result = drive_video(video, video, tmp_path / "out.mp4", models, options=FAST)
    assert result.frames_written == 30


def test_personalization_clip_holds_the_tracked_frames(tmp_path_factory):
    clip = clip_from_video(talking_clip(tmp_path_factory, 1.2), FaceTracker("cpu"), max_frames=12)
    assert len(clip) == 12 and clip.valid.all()
    assert clip.frames.shape == (12, 3, 256, 256) and clip.frames.dtype == torch.uint8


def test_w_plus_personalisation_learns_offsets_and_keeps_the_encoder(tmp_path_factory, tmp_path, models_dir):
    """StyleSync's W+ option: ΔW = MLP(f_f) starts at zero (the generator's output is unchanged),
    is learnt with the synthesis network while the encoder stays fixed, and the result is an
    ordinary generator checkpoint."""
    clip = clip_from_video(talking_clip(tmp_path_factory, 1.2), FaceTracker("cpu"), max_frames=6)
    generator, _ = load_checkpoint(models_dir / "generator.safetensors", kind="generator")
    overlay, reference = clip.frames[:1].float() / 127.5 - 1, clip.frames[1:2].float() / 127.5 - 1
    with torch.no_grad():
        assert torch.equal(with_w_plus_offset(generator, 16)(overlay, reference), generator(overlay, reference))
    encoder = {name: value.clone() for name, value in generator.encoder.state_dict().items()}
    log = []
    tuned = personalize_generator(generator, clip, PersonalizeConfig(steps=2, batch_size=1, w_plus=True,
                                                                     w_offset_hidden=16), log=log.append).generator
    assert any("W+ offsets and synthesis" in line and "(‖ΔW‖² + ‖ΔP‖²)" in line for line in log)
    assert tuned.w_offset[-1].weight.abs().sum() > 0
    assert all(torch.equal(value, encoder[name]) for name, value in tuned.encoder.state_dict().items())
    path = save_checkpoint(tuned, tuned.config, "generator", tmp_path / "wplus.safetensors")
    assert load_checkpoint(path, kind="generator")[1].w_offset_hidden == 16


def test_cancelled_personalisation_leaves_no_checkpoint(tmp_path_factory, tmp_path, models_dir):
    video = talking_clip(tmp_path_factory, 1.2)
    with pytest.raises(PipelineCancelled):
        personalize_video(video, tmp_path / "person.safetensors", PersonalizeConfig(steps=5, max_frames=8),
                          models_dir=models_dir, callbacks=PipelineCallbacks(should_cancel=lambda: True))
    assert leftovers(tmp_path, "person.safetensors") == []
