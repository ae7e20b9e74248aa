"""Evaluation metrics (resyncer_core/metrics): PSNR, SSIM, LMD, aperture sync, identity
similarity and LSE-style sync scores, on small known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.metrics.identity import identity_similarity
from resyncer_core.metrics.image import psnr, ssim
from resyncer_core.metrics.landmarks import aperture_sync, landmark_distance, mouth_landmark_ids
from resyncer_core.metrics.sync import sync_scores
from resyncer_core.models.face_descriptor import FaceDescriptorConfig, FaceDescriptorResNet
from resyncer_core.models.presets import preset_config
from resyncer_core.models.syncnet import SyncNet


def images(seed=0, batch=2, size=32):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_psnr_and_ssim_of_identical_and_noisy_images():
    clean = images()
    assert psnr(clean, clean) == pytest.approx(100.0)
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-5)
    noisy = (clean + 0.1 * images(1)).clamp(-1, 1)
    noisier = (clean + 0.4 * images(2)).clamp(-1, 1)
    assert 20 < psnr(noisy, clean) and psnr(noisier, clean) < psnr(noisy, clean)
    assert ssim(noisier, clean) < ssim(noisy, clean) < 1.0
    # PSNR of a uniform error of 2 grey levels on the 0..255 scale: 10·log10(255²/4)
    shifted = clean.clamp(-0.9, 0.9)
    assert psnr(shifted + 4 / 255, shifted) == pytest.approx(10 * math.log10(255 ** 2 / 4), abs=1e-3)
    with pytest.raises(ResyncerInputError):
        psnr(clean, clean[:1])


class _Track:
    def __init__(self, landmarks, valid):
        self.landmarks, self.valid = landmarks, valid

    def __len__(self):
        return len(self.valid)


def test_landmark_distance_counts_mouth_landmarks_of_frames_tracked_in_both():
    base = np.random.default_rng(0).uniform(0, 256, (3, 468, 3)).astype(np.float32)
    moved = base.copy()
    moved[:, mouth_landmark_ids(), 0] += 3.0
    moved[:, 10, 0] += 100.0  # the forehead: not a mouth landmark
    assert landmark_distance(_Track(moved, np.ones(3, bool)), _Track(base, np.ones(3, bool))) == pytest.approx(3.0)
    assert math.isnan(landmark_distance(_Track(moved, np.zeros(3, bool)), _Track(base, np.ones(3, bool))))


def test_aperture_sync_finds_the_lag_of_a_delayed_video():
    times = np.arange(100)
    driving = np.sin(times / 3.0) + 0.3 * np.sin(times / 1.3)
    delayed = np.roll(driving, 2)  # the video opens its mouth 2 frames after the driver
    result = aperture_sync(delayed, driving)
    assert result.best_lag == 2 and result.best_correlation > 0.99
    assert aperture_sync(driving, driving).correlation == pytest.approx(1.0)
    assert aperture_sync(driving, driving).best_lag == 0


def test_identity_similarity_is_one_for_the_same_crops():
    network = FaceDescriptorResNet(FaceDescriptorConfig(widths=(4, 4, 8, 8), embedding_size=8))
    crops = images(batch=3, size=160)
    assert identity_similarity(network, crops, crops) == pytest.approx(1.0, abs=1e-5)
    assert identity_similarity(network, crops, crops[:1]) < 1.0


def test_sync_scores_run_over_all_offsets_with_a_tiny_syncnet():
    syncnet = SyncNet(preset_config("tiny", "syncnet")).eval()
    crops = images(batch=12, size=64)
    waveform = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    scores = sync_scores(syncnet, crops, waveform, fps=25.0, max_offset=3)
    assert -3 <= scores.offset <= 3
    assert scores.lse_distance >= 0 and scores.lse_confidence >= 0
    with pytest.raises(ResyncerInputError, match="at least 5 frames"):
        sync_scores(syncnet, crops[:4], waveform)
