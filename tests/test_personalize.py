"""Personalisation keeps the face it tunes (issue 20: a 20-step run painted the lower face yellow).

A short run of the shipped generator and discriminator on a few frames of the demo clip, with
frames held out: the lower face's mean colour stays where the input's is and its held-out
PSNR does not fall. The earlier loop (adversarial weight 1, no lower-face term, Adam at 1e-3)
moved the colour by tens of levels within these steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from resyncer_core.face import FaceTracker
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.stages.face_identity import trained_faces
from resyncer_core.stages.model_files import load_generator
from resyncer_core.stages.warping import warp_reason
from resyncer_core.train.personalize import PersonalizeConfig, clip_from_video, personalize_generator
from resyncer_core.weights import SHIPPED_MODELS_DIR

DEMO_CLIP = Path(__file__).resolve().parents[1] / "demo" / "target.mp4"
COLOUR_TOLERANCE = 4.0    # levels of 0..255, the bound


@pytest.fixture(scope="module")
def tracker():
    return FaceTracker("cpu")


@pytest.fixture(scope="module")
def personalised(tracker):
    torch.manual_seed(0)
    clip = clip_from_video(DEMO_CLIP, tracker, max_frames=8)
    generator = load_generator(SHIPPED_MODELS_DIR, torch.device("cpu"))
    discriminator = load_checkpoint(SHIPPED_MODELS_DIR / "discriminator.safetensors", kind="discriminator")[0]
    log = []
    config = PersonalizeConfig(steps=4, batch_size=2, held_out_frames=2)
    result = personalize_generator(generator, clip, config, discriminator, log=log.append, tracker=tracker,
                                   models=str(SHIPPED_MODELS_DIR))
    return result, log


def test_a_short_personalisation_keeps_the_lower_face_colour_and_held_out_psnr(personalised):
    result, log = personalised
    assert any("lower face on 2 held-out frames, before" in line for line in log)
    assert result.after.colour_shift <= COLOUR_TOLERANCE, result.after
    assert result.after.psnr >= result.before.psnr, (result.before, result.after)
    assert math.isfinite(result.after.lmd)


def test_the_personalised_file_records_the_face_it_was_tuned_on(personalised, tracker, tmp_path):
    from resyncer_core.models.checkpoint import save_checkpoint
    from resyncer_core.stages.functions import aligned_crops
    from resyncer_core.video import read_frames

    result, _ = personalised
    path = save_checkpoint(result.generator, result.generator.config, "generator", tmp_path / "person.safetensors",
                           extra_metadata=result.metadata)
    assert trained_faces(path).shape == (1, 128)
    frames = read_frames(DEMO_CLIP)[:8]
    demo_crops = aligned_crops(frames, tracker.track(frames, 25.0))
    assert warp_reason(path, lambda: demo_crops) is None  # auto renders this face with it
