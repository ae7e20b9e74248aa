"""Stage-1 speaking-style controls (issue 18): a still gets the default style, a talking video
keeps its own, presets, the motion strength and the closed neutral template."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import FaceTracker
from resyncer_core.face.lips import aperture_iod
from resyncer_core.models.presets import preset_config
from resyncer_core.models.syncformer import StyleSyncFormer
from resyncer_core.mouth.style import (
    DEFAULT_STYLE_PRESET,
    MIN_STYLE_MOTION_IOD,
    STYLE_PRESETS,
    closed_neutral,
    preset_style_reference,
    style_motion_iod,
)
from resyncer_core.mouth.viseme_rig import SpeakingStyle, VisemeRig
from resyncer_core.pipeline.audio_driving import MouthControls, audio_driven_meshes
from resyncer_core.stages.model_files import PipelineModels
from resyncer_core.stages.progress import PipelineCallbacks, StageClock
from resyncer_core.stages.warping import MeshWarp

ASTRONAUT = Path(__file__).parent / "data" / "face" / "astronaut.png"
FRAMES = 100


@pytest.fixture(scope="module")
def still_track():
    image = np.array(Image.open(ASTRONAUT).convert("RGB"))
    return FaceTracker().track(np.repeat(image[None], FRAMES, 0), 25.0)


def talking(track):
    """The still's track with the rig speaking on its face: a video that shows speech."""
    rig = VisemeRig(track.template)
    phones = [("SIL", 0, 0.2)] + [(p, 0.2 + 0.15 * i, 0.35 + 0.15 * i) for i, p in enumerate("M AA P AE B AO M AA".split())]
    delta = rig(phones, frame_count=FRAMES, style=SpeakingStyle(amplitude=2.0)).numpy()
    return dataclasses.replace(track, canonical=(rig.rest.numpy() + delta).astype(np.float32),
                               template=rig.rest.numpy().astype(np.float32))


class RecordingModel(StyleSyncFormer):
    """A tiny SyncFormer that remembers the style reference it was given."""

    def generate(self, audio, style, style_audio=None):
        self.seen_style = style[0].clone()
        return torch.full((1, audio.shape[1], 468, 3), 0.1)


@pytest.fixture()
def models():
    class Features:
        feature_dim = 8

        def encode(self, waveform, fps, frame_count):
            return torch.zeros(frame_count, 8)

    syncformer = RecordingModel(preset_config("tiny", "syncformer", audio_dim=8)).eval()
    return PipelineModels(generator=MeshWarp(torch.device("cpu")), syncformer=syncformer, audio_encoder=Features())


def predict(models, track, controls=MouthControls()):
    notices = []
    meshes = audio_driven_meshes(models, np.zeros(16000, np.float32), 25.0, 25, track, "clip.mp4", track.template,
                                 StageClock(), PipelineCallbacks(notice=notices.append), controls)
    return meshes, notices


def test_a_still_gets_the_default_style_and_says_so(still_track, models):
    assert style_motion_iod(still_track.template, torch.zeros(90, 468, 3)) < MIN_STYLE_MOTION_IOD
    _, notices = predict(models, still_track)
    assert len(notices) == 1 and f"'{DEFAULT_STYLE_PRESET}' style" in notices[0] and "clip.mp4" in notices[0]
    assert torch.equal(models.syncformer.seen_style, preset_style_reference(DEFAULT_STYLE_PRESET, 90))


def test_a_talking_video_keeps_its_own_style(still_track, models):
    track = talking(still_track)
    _, notices = predict(models, track)
    assert notices == []
    assert style_motion_iod(track.template, models.syncformer.seen_style) >= MIN_STYLE_MOTION_IOD
    assert not torch.equal(models.syncformer.seen_style, preset_style_reference(DEFAULT_STYLE_PRESET, 90))


def test_a_preset_replaces_the_video_style(still_track, models):
    _, notices = predict(models, talking(still_track), MouthControls(style_preset="expressive"))
    assert notices == []
    assert torch.equal(models.syncformer.seen_style, preset_style_reference("expressive", 90))


def test_presets_are_ordered_by_motion_and_speak_visibly():
    rest = VisemeRig().rest
    spreads = [style_motion_iod(rest, preset_style_reference(name, 90)) for name in ("subdued", "natural", "expressive")]
    assert set(STYLE_PRESETS) == {"subdued", "natural", "expressive"}
    assert MIN_STYLE_MOTION_IOD < spreads[0] < spreads[1] < spreads[2]
    with pytest.raises(ResyncerInputError, match="style preset 'loud' is unknown"):
        MouthControls(style_preset="loud")


def test_strength_scales_the_motion_from_the_closed_neutral(still_track, models):
    closed = torch.from_numpy(closed_neutral(still_track.template))
    still, _ = predict(models, still_track, MouthControls(strength=0.0))
    once, _ = predict(models, still_track, MouthControls(strength=1.0))
    twice, _ = predict(models, still_track, MouthControls(strength=2.0))
    assert torch.allclose(still, closed.expand_as(still), atol=1e-6)
    assert torch.allclose(twice - closed, 2 * (once - closed), atol=1e-5)
    with pytest.raises(ResyncerInputError, match="strength"):
        MouthControls(strength=-1)


def test_the_closed_neutral_closes_parted_lips_and_keeps_closed_ones(still_track):
    """The astronaut smiles with her teeth showing: her template's lips are apart."""
    before = aperture_iod(still_track.template[None])[0]
    after = aperture_iod(closed_neutral(still_track.template)[None])[0]
    assert before > 0.08 and after < 0.01
    closed = closed_neutral(still_track.template)
    assert np.abs(closed_neutral(closed) - closed).max() < 1e-3


def test_nodes_style_preset_still_fallback_and_strength(still_track):
    from comfy_stubs.harness import load_pack_as_comfyui

    classes = load_pack_as_comfyui().NODE_CLASS_MAPPINGS
    (preset,) = classes["ReSyncerStylePreset"]().preset("expressive")
    assert torch.equal(preset.delta, preset_style_reference("expressive", 90)) and preset.fps == 25
    assert "ReSyncerStylePreset" in load_pack_as_comfyui().NODE_DISPLAY_NAME_MAPPINGS

    fallback = classes["ReSyncerStyleReference"]().reference(still_track)
    assert "no speech motion" in fallback["ui"]["resyncer"][0]["warning"]
    assert torch.equal(fallback["result"][0].delta, preset_style_reference(DEFAULT_STYLE_PRESET, 90))
    (own,) = classes["ReSyncerStyleReference"]().reference(talking(still_track))
    assert style_motion_iod(still_track.template, own.delta) >= MIN_STYLE_MOTION_IOD

    assert "strength" in classes["ReSyncerSyncFormer"].INPUT_TYPES()["optional"]
