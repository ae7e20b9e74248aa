"""The pipeline's stage functions (what ComfyUI nodes call), on a short synthetic clip with
tiny random models: shapes, ranges and the invariants each stage promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _pipeline_media import FPS, SMALL_SIZE, tiny_models
from resyncer_core.audio import load_audio_encoder
from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import FaceTracker
from resyncer_core.face.alignment import warp_to_crop
from resyncer_core.face.topology import lower_face_vertices
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.stages import functions as stages
from resyncer_core.synth import synthetic_talking_clip

CLIP_FRAMES = 10


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tiny_models(tmp_path_factory)
    generator = load_checkpoint(folder / "generator.safetensors", kind="generator")[0]
    syncformer = load_checkpoint(folder / "syncformer.safetensors", kind="syncformer")[0]
    # A fresh SyncFormer predicts ΔM = 0 exactly (zero-initialised output layer); give it
    # weights so the window stitching below is tested on non-trivial values.
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        syncformer.output_projection.weight.normal_(0, 0.05)
    return {"generator": generator, "syncformer": syncformer, "encoder": load_audio_encoder(folder / "wav2vec2")}


@pytest.fixture(scope="module")
def clip():
    frames, _ = synthetic_talking_clip(CLIP_FRAMES, FPS, SMALL_SIZE, seed=3, motion="lively")
    track = FaceTracker("cpu").track(frames, FPS)
    assert track.valid.all()
    return frames, track


@pytest.fixture(scope="module")
def overlay(clip):
    frames, track = clip
    return stages.overlay_crops(frames, track, torch.from_numpy(track.canonical), "mouth")


def test_aligned_crops_match_a_whole_frame_warp(clip):
    frames, track = clip
    crops = stages.aligned_crops(frames, track)
    assert crops.shape == (CLIP_FRAMES, 3, 256, 256) and crops.dtype == torch.float32
    assert crops.min() >= -1 and crops.max() <= 1
    whole = (warp_to_crop(torch.from_numpy(frames).float(), torch.from_numpy(track.crop_affine)) / 127.5 - 1).clamp(-1, 1)
    assert torch.allclose(crops, whole.permute(0, 3, 1, 2), atol=1e-3)
    as_float = stages.aligned_crops(torch.from_numpy(frames).float() / 255, track)
    assert torch.allclose(as_float, crops, atol=1e-4)


def test_compute_audio_features_gives_one_vector_per_frame(models):
    waveform = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    features = stages.compute_audio_features(models["encoder"], waveform, FPS, 30)
    assert features.shape == (30, models["syncformer"].config.audio_dim)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()


def test_style_reference_takes_ninety_frames_where_the_mouth_moves(clip):
    _, track = clip
    long_track = stages.select_frames(track, np.arange(200) % CLIP_FRAMES)
    long_track.canonical = np.repeat(track.template[None], 200, axis=0)  # a still face …
    talking = np.arange(120, 150)
    mouth = lower_face_vertices()
    long_track.canonical[talking[::2, None], mouth, 1] += 0.5  # … that talks in frames 120-149
    start = stages.choose_style_window(long_track)
    assert start <= 120 and start + stages.STYLE_FRAMES >= 150
    reference = stages.style_reference_from_track(long_track)
    assert reference.shape == (stages.STYLE_FRAMES, 468, 3)
    assert torch.equal(reference, torch.from_numpy(long_track.delta()[start:start + 90]))
    assert stages.style_reference_from_track(track).shape == (CLIP_FRAMES, 468, 3)  # short clip: all of it
    with pytest.raises(ResyncerInputError, match="outside"):
        stages.style_reference_from_track(track, start=CLIP_FRAMES)


def test_style_window_prefers_tracked_frames(clip):
    _, track = clip
    long_track = stages.select_frames(track, np.arange(150) % CLIP_FRAMES)
    long_track.valid = np.arange(150) >= 40
    assert stages.choose_style_window(long_track) >= 40


def test_predict_meshes_reproduces_generate_window_by_window(models, clip):
    _, track = clip
    syncformer = models["syncformer"]
    features = torch.randn(230, syncformer.config.audio_dim, generator=torch.Generator().manual_seed(1))
    style = stages.style_reference_from_track(track)
    windows = []
    meshes = stages.predict_meshes(syncformer, features, style, track.template,
                                   on_window=lambda done, total: windows.append((done, total)))
    assert meshes.shape == (230, 468, 3)
    assert windows == [(1, 3), (2, 3), (3, 3)]  # 100-frame windows overlapping by 20
    expected = syncformer.generate(features[None], style[None])[0] + torch.from_numpy(track.template)
    assert torch.allclose(meshes, expected, atol=1e-5)
    assert not torch.allclose(meshes, torch.from_numpy(track.template).expand(230, -1, -1))


def test_meshes_from_driver_moves_displacements_onto_the_target_template(clip):
    _, track = clip
    driver = stages.select_frames(track, [3, 1, 4])
    target = stages.select_frames(track, [0, 0, 0])
    target.template = track.template + 1.0
    meshes = stages.meshes_from_driver(driver, target)
    assert meshes.shape == (3, 468, 3)
    assert torch.allclose(meshes, torch.from_numpy(track.canonical[[3, 1, 4]] + 1.0), atol=1e-5)


def test_overlay_crops_masks_the_lower_face_and_draws_the_mesh(clip, overlay):
    frames, track = clip
    crops, overlays, masks = overlay
    assert crops.shape == overlays.shape == (CLIP_FRAMES, 3, 256, 256)
    assert masks.shape == (CLIP_FRAMES, 256, 256)
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    outside = (masks == 0)[:, None].expand_as(crops)
    assert torch.equal(overlays[outside], crops[outside])
    assert not torch.equal(overlays, crops)
    rows = torch.nonzero(masks.any(dim=2))[:, 1]
    assert rows.float().mean() > 128  # the lower face sits in the lower half of the crop
    _, _, face_masks = stages.overlay_crops(frames, track, torch.from_numpy(track.canonical), "face")
    assert (face_masks >= masks).all() and face_masks.sum() > masks.sum()
    with pytest.raises(ResyncerInputError, match="mask mode"):
        stages.overlay_crops(frames, track, torch.from_numpy(track.canonical), "eyes")


def test_overlay_mask_comes_from_the_template_not_from_the_meshes(clip, overlay):
    """A is the same whichever mesh is drawn (tracked at training, predicted at inference), so
    its outline carries nothing about the true mouth; the drawn mesh still changes."""
    frames, track = clip
    _, overlays, masks = overlay
    opened = torch.from_numpy(track.canonical).clone()
    opened[:, list(lower_face_vertices()), 1] -= 1.0  # drop the jaw (canonical y points up)
    _, opened_overlays, opened_masks = stages.overlay_crops(frames, track, opened)
    assert torch.equal(opened_masks, masks)
    assert not torch.equal(opened_overlays, overlays)


def test_generate_crops_runs_in_batches(models, overlay):
    crops, overlays, masks = overlay
    calls = []
    generated = stages.generate_crops(models["generator"], overlays[:7], crops[:7], batch_size=3, mask=masks[:7],
                                      on_batch=lambda done, total: calls.append((done, total)))
    assert generated.shape == (7, 3, 256, 256) and generated.min() >= -1 and generated.max() <= 1
    assert calls == [(3, 7), (6, 7), (7, 7)]
    one_batch = stages.generate_crops(models["generator"], overlays[:7], crops[:7], batch_size=7)
    assert torch.allclose(generated, one_batch, atol=1e-4)


def test_swap_crops_broadcasts_one_identity_frame(models, overlay):
    crops, overlays, masks = overlay
    swapped = stages.swap_crops(models["generator"], overlays[:4], crops[:1], crops[:4], batch_size=2, mask=masks[:4])
    per_frame = stages.swap_crops(models["generator"], overlays[:4], crops[:1].expand(4, -1, -1, -1), crops[:4])
    assert swapped.shape == (4, 3, 256, 256) and swapped.min() >= -1 and swapped.max() <= 1
    assert torch.allclose(swapped, per_frame, atol=1e-4)
    with pytest.raises(ResyncerInputError, match="identity frames"):
        stages.swap_crops(models["generator"], overlays[:4], crops[:2], crops[:4])


@pytest.mark.parametrize("as_float", [False, True])
def test_blend_crops_changes_only_pixels_inside_the_mask(clip, overlay, as_float):
    frames, track = clip
    crops, _, masks = overlay
    white = torch.ones_like(crops)
    source = torch.from_numpy(frames).float() / 255 if as_float else frames
    blended, regions = stages.paste_back(source, white, track.crop_affine, masks)
    assert type(blended) is type(source) and blended.dtype == source.dtype and blended.shape == source.shape
    for index, region in enumerate(regions):
        weights = np.zeros(SMALL_SIZE, np.float32)
        weights[region.window.slices()] = region.weights.numpy()
        before, after = np.asarray(source[index]), np.asarray(blended[index])
        assert np.array_equal(after[weights == 0], before[weights == 0])
        assert (after[weights == 1] == (1.0 if as_float else 255)).all()
        assert 0 < (weights > 0).mean() < 0.2
    same = stages.blend_crops(source, white, track, masks)
    assert np.array_equal(np.asarray(same), np.asarray(blended))


def test_blend_crops_passes_frames_without_a_face_through(clip, overlay):
    frames, track = clip
    crops, _, masks = overlay
    lost = stages.select_frames(track, np.arange(CLIP_FRAMES))
    lost.valid = np.arange(CLIP_FRAMES) % 2 == 0
    blended = stages.blend_crops(frames, torch.ones_like(crops), lost, masks)
    assert np.array_equal(blended[1::2], frames[1::2])
    assert not np.array_equal(blended[0::2], frames[0::2])


def test_feather_softens_the_mask_edge_inside_the_mask(clip, overlay):
    frames, track = clip
    crops, _, masks = overlay
    _, hard = stages.paste_back(frames[:1], crops[:1], track.crop_affine[:1], masks[:1], feather=0)
    _, soft = stages.paste_back(frames[:1], crops[:1], track.crop_affine[:1], masks[:1], feather=8)
    assert hard[0].window == soft[0].window
    assert ((soft[0].weights > 0) <= (hard[0].weights > 0)).all()  # feathering stays inside the mask
    assert (soft[0].weights == 1).sum() < (hard[0].weights == 1).sum()
    assert ((soft[0].weights > 0) & (soft[0].weights < 1)).sum() > ((hard[0].weights > 0) & (hard[0].weights < 1)).sum()


def test_identity_from_frames_gives_a_crop_and_a_template(clip):
    frames, _ = clip
    identity = stages.identity_from_frames(FaceTracker("cpu"), frames[:3], FPS)
    assert identity.frame.shape == (1, 3, 256, 256) and identity.frame.min() >= -1
    assert identity.template.shape == (468, 3)
    with pytest.raises(ResyncerInputError, match="no face"):
        stages.identity_from_frames(FaceTracker("cpu"), np.zeros((1, 64, 64, 3), np.uint8))


def test_audio_driving_takes_the_style_length_the_syncformer_was_built_for(models, clip, monkeypatch):
    """T_S comes from the loaded model's config, not the paper constant: a SyncFormer trained
    with a 6-frame reference gets 6 frames."""
    from resyncer_core.models.syncformer import StyleSyncFormer
    from resyncer_core.pipeline import audio_driving
    from resyncer_core.stages.model_files import PipelineModels
    from resyncer_core.stages.progress import PipelineCallbacks, StageClock

    _, track = clip
    config = models["syncformer"].config
    short_style = StyleSyncFormer(type(config)(**{**vars(config), "style_frames": 6})).eval()
    seen = {}

    def record_style(syncformer, features, style, template, style_audio, on_window, fps, frame_count):
        seen["style_frames"] = len(style)
        return torch.zeros(frame_count, 468, 3)

    monkeypatch.setattr(audio_driving, "predict_meshes", record_style)
    pipeline_models = PipelineModels(generator=models["generator"], syncformer=short_style, audio_encoder=models["encoder"])
    audio_driving.audio_driven_meshes(pipeline_models, np.zeros(16000, np.float32), FPS, CLIP_FRAMES, track, None,
                                      track.template, StageClock(), PipelineCallbacks())
    assert seen["style_frames"] == 6
