"""Stage 1 runs at 25 fps whatever the video's rate: the same speech and style filmed at 30 or
50 fps give the meshes the 25 fps clip gets, at the video's own frame times."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resyncer_core.audio import MelAudioEncoder
from resyncer_core.face.canonical import Pose
from resyncer_core.face.track import FaceTrack
from resyncer_core.models.presets import preset_config
from resyncer_core.models.syncformer import StyleSyncFormer
from resyncer_core.pipeline.audio_driving import audio_driven_meshes
from resyncer_core.stages.functions import frames_at_rate, predict_meshes, resample_frames
from resyncer_core.stages.model_files import PipelineModels
from resyncer_core.stages.progress import PipelineCallbacks, StageClock
from resyncer_core.synth.speech import synthetic_speech
from resyncer_core.synth.speech_plan import SpeechPlan
from resyncer_core.synth.mesh_corpus import speaking_meshes

SECONDS = 2.4


def track_at(canonical_25: np.ndarray, template: np.ndarray, fps: float) -> FaceTrack:
    """A face track of the same motion filmed at `fps` (only what stage 1 reads is meaningful)."""
    count = frames_at_rate(len(canonical_25), 25, fps)
    canonical = resample_frames(torch.from_numpy(canonical_25), 25, fps, count).numpy()
    pose = Pose(np.ones(count, np.float32), np.tile(np.eye(3, dtype=np.float32), (count, 1, 1)),
                np.zeros((count, 3), np.float32))
    return FaceTrack(landmarks=canonical, valid=np.ones(count, bool), pose=pose, canonical=canonical,
                     template=template, crop_affine=np.zeros((count, 2, 3), np.float32), fps=float(fps),
                     frame_size=(256, 256))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = StyleSyncFormer(preset_config("tiny", "syncformer", audio_dim=1280, dropout=0.0,
                                          style_frames=40, infer_window=40, infer_overlap=8)).eval()
    torch.nn.init.normal_(model.output_projection.weight, std=0.02)  # zero-initialised: would predict ΔM = 0
    models = PipelineModels(generator=None, syncformer=model, audio_encoder=MelAudioEncoder().eval())
    plan = SpeechPlan.generate(SECONDS, 4)
    canonical, template = speaking_meshes(plan, round(SECONDS * 25))
    return models, synthetic_speech(SECONDS, 16000, 4, plan), canonical, template


def meshes_at(setup, fps: float) -> torch.Tensor:
    models, waveform, canonical, template = setup
    track = track_at(canonical, template, fps)
    return audio_driven_meshes(models, waveform, fps, len(track), track, "unused.mp4", template,
                               StageClock(), PipelineCallbacks()) - torch.from_numpy(template)


def test_50_fps_gives_the_25_fps_meshes_at_every_other_frame(setup):
    at_25, at_50 = meshes_at(setup, 25), meshes_at(setup, 50)
    assert len(at_25) == 60 and len(at_50) == 120
    assert at_25.abs().max() > 1e-3  # the model moves the mesh
    torch.testing.assert_close(at_50[::2], at_25, rtol=1e-4, atol=1e-5)


def test_30_fps_follows_the_25_fps_meshes_in_time(setup):
    at_25, at_30 = meshes_at(setup, 25), meshes_at(setup, 30)
    assert len(at_30) == 72
    back_at_25 = resample_frames(at_30, 30, 25, len(at_25))
    # Double interpolation (30 → 25 fps twice) of a random model's frame-to-frame jitter is all that differs.
    assert (back_at_25 - at_25).abs().mean() < 0.1 * at_25.abs().mean()
    # Without the fix (the 30 fps features fed to the model frame for frame) the sequence runs
    # 30/25 times too slow; the fixed output must be much closer than that.
    models, waveform, canonical, template = setup
    style = torch.from_numpy(canonical[:40] - template)
    features_30 = models.audio_encoder.encode(waveform, 30, 72)
    unfixed = predict_meshes(models.syncformer, features_30, style, template) - torch.from_numpy(template)
    unfixed_at_25 = resample_frames(unfixed, 30, 25, len(at_25))
    assert (back_at_25 - at_25).abs().mean() < 0.3 * (unfixed_at_25 - at_25).abs().mean()


def test_resample_frames():
    values = torch.arange(5, dtype=torch.float32)[:, None]
    assert resample_frames(values, 25, 50, 10)[:, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4]
    assert resample_frames(values, 50, 25, 3)[:, 0].tolist() == [0, 2, 4]
    assert resample_frames(values, 25, 25, 5) is values
    assert frames_at_rate(72, 30, 25) == 60 and frames_at_rate(61, 50, 25) == 31
