from __future__ import annotations

import numpy as np
import pytest
import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import topology
from resyncer_core.face.alignment import crop_points
from resyncer_core.face.canonical import Pose, from_canonical
from resyncer_core.face.masks import landmark_hull_mask
from resyncer_core.face.track import FaceTrack, build_face_track, posed_mesh_in_crop
from resyncer_core.render import TorchRasterizer
from test_geometry_fixtures import reference_landmarks, rotation

FPS, FRAMES, FRAME_SIZE = 25.0, 60, (480, 640)
INVALID = [0, 17, 18, 19, 40, 59]


def synthetic_clip(seed: int = 0):
    """A person (canonical model + identity offsets) speaking (mouth-region expressions) with a
    smooth head motion; returns (landmarks, valid, true pose, identity, expressions)."""
    rng = np.random.default_rng(seed)
    model = topology.template_vertices().astype(np.float64)
    identity = 0.15 * rng.standard_normal(model.shape)
    identity[topology.rigid_weights() > 0] = 0.0  # keep the rigid points rigid, as a real face
    mouth = np.isin(np.arange(468), topology.lower_face_vertices())
    expressions = np.zeros((FRAMES, 468, 3))
    opening = 0.4 * (1 + np.sin(2 * np.pi * 3.0 * np.arange(FRAMES) / FPS))
    expressions[:, mouth, 1] = -opening[:, None] * np.clip(-model[mouth, 1] - 2.0, 0, None) / 7.0
    expressions += 0.02 * rng.standard_normal(expressions.shape) * mouth[None, :, None]
    expressions -= expressions.mean(0)  # so the clip's mean face is the identity

    t = np.arange(FRAMES) / FPS
    truth = Pose(
        torch.tensor(7.0 + 0.5 * np.sin(2 * np.pi * 0.2 * t), dtype=torch.float32),
        torch.tensor(np.stack([rotation(20 * np.sin(2 * np.pi * 0.3 * s), 8 * np.sin(2 * np.pi * 0.2 * s), 5) for s in t]), dtype=torch.float32),
        torch.tensor(np.stack([320 + 30 * np.sin(2 * np.pi * 0.25 * t), 250 + 10 * t, 0 * t], -1), dtype=torch.float32),
    )
    faces = torch.tensor(model + identity + expressions, dtype=torch.float32)
    landmarks = from_canonical(faces, truth).numpy()
    valid = np.ones(FRAMES, bool)
    valid[INVALID] = False
    landmarks[~valid] = np.nan  # whatever the tracker leaves there must not matter
    return landmarks, valid, truth, (model + identity).astype(np.float32), expressions.astype(np.float32)


def angle_degrees(a, b):
    cosine = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


@pytest.fixture(scope="module")
def clip():
    landmarks, valid, truth, face, expressions = synthetic_clip()
    return build_face_track(landmarks, valid, FPS, FRAME_SIZE, smoothing=0.5), truth, face, expressions, valid


def test_track_recovers_pose_template_and_expression(clip):
    track, truth, face, expressions, valid = clip
    assert track.landmarks.shape == (FRAMES, 468, 3) and track.landmarks.dtype == np.float32
    assert track.crop_affine.shape == (FRAMES, 2, 3) and track.valid.dtype == bool
    np.testing.assert_array_equal(track.valid, valid)
    for array in (track.landmarks, track.canonical, track.crop_affine, track.pose.rotation):
        assert np.isfinite(array).all()

    # Smoothed pose vs the true one (the head turns up to 1°/frame); the first and last frames
    # are invalid and hold their neighbour's pose.
    errors = angle_degrees(track.pose.rotation, truth.rotation.numpy())
    assert errors[valid].max() < 1.0 and errors.max() < 3.0
    np.testing.assert_allclose(track.pose.scale[valid], truth.scale.numpy()[valid], rtol=0.01)
    np.testing.assert_allclose(track.pose.translation[valid, :2], truth.translation[valid, :2].numpy(), atol=1.5)
    # Template: the person's mean face (not the generic model), up to the weighted fit's drift.
    assert np.abs(track.template - face).mean() < 0.03
    assert np.abs(track.template - topology.template_vertices()).mean() > 0.08
    np.testing.assert_allclose(track.delta()[valid], (face + expressions - track.template)[valid], atol=0.02)
    assert np.abs(track.delta()[~valid]).max() == 0.0


def test_invalid_frames_get_neighbouring_poses_and_crops(clip):
    track, truth, *_ = clip
    # The gap 17..19 lies between valid 16 and 20; the interpolated head is near the true one.
    assert angle_degrees(track.pose.rotation[17:20], truth.rotation[17:20].numpy()).max() < 1.0
    steps = np.abs(np.diff(track.crop_affine[14:23], axis=0)).max()
    assert steps < 0.05 * np.abs(track.crop_affine).max()  # no jump through the gap


def test_mesh_in_crop_matches_the_tracked_landmarks_without_smoothing():
    landmarks, valid, *_ = synthetic_clip(seed=1)
    track = build_face_track(landmarks, valid, FPS, FRAME_SIZE, smoothing=0.0)
    expected = crop_points(torch.tensor(track.landmarks[valid]), torch.tensor(track.crop_affine[valid]))
    torch.testing.assert_close(track.mesh_in_crop()[valid], expected, rtol=0, atol=2e-3)
    same = posed_mesh_in_crop(torch.tensor(track.canonical), track.pose, track.crop_affine)
    torch.testing.assert_close(same, track.mesh_in_crop())
    # One mesh for all frames (e.g. the template) broadcasts over the track.
    assert posed_mesh_in_crop(torch.tensor(track.template), track.pose, track.crop_affine).shape == (FRAMES, 468, 3)


def test_save_load_round_trip_is_exact(clip, tmp_path):
    track = clip[0]
    path = tmp_path / "track.resyncer_face"
    track.save(path)
    loaded = FaceTrack.load(path)
    for name in ("landmarks", "valid", "canonical", "template", "crop_affine"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(track, name))
        assert getattr(loaded, name).dtype == getattr(track, name).dtype
    for name in ("scale", "rotation", "translation"):
        np.testing.assert_array_equal(getattr(loaded.pose, name), getattr(track.pose, name))
    assert loaded.fps == track.fps and loaded.frame_size == track.frame_size


def test_slice_keeps_the_template_and_cuts_every_per_frame_array(clip):
    track = clip[0]
    part = track.slice(10, 25)
    assert len(part) == 15 and part.pose.rotation.shape == (15, 3, 3)
    np.testing.assert_array_equal(part.template, track.template)
    np.testing.assert_array_equal(part.delta(), track.delta()[10:25])
    np.testing.assert_array_equal(part.crop_affine, track.crop_affine[10:25])


def test_a_track_without_any_face_is_allowed():
    track = build_face_track(np.zeros((5, 468, 3), np.float32), np.zeros(5, bool), FPS, FRAME_SIZE)
    assert not track.valid.any()
    np.testing.assert_array_equal(track.template, topology.template_vertices())
    assert np.abs(track.delta()).max() == 0.0
    assert np.isfinite(track.crop_affine).all() and np.isfinite(track.landmarks).all()
    empty = build_face_track(np.zeros((0, 468, 3), np.float32), np.zeros(0, bool), FPS, FRAME_SIZE)
    assert len(empty) == 0


@pytest.mark.parametrize("broken", ["nan_vertex", "collapsed"])
def test_a_broken_frame_flagged_valid_becomes_invalid_instead_of_poisoning_the_track(broken):
    """A frame flagged valid whose landmarks are not finite (an SVD of NaNs raises) or collapse to
    one point (scale 0: NaN template, poses and crops for every frame) is flagged invalid; the
    rest of the clip tracks exactly as if it had been flagged invalid by the tracker."""
    landmarks, valid, *_ = synthetic_clip(seed=2)
    bad = 30
    if broken == "nan_vertex":
        landmarks[bad, 5] = np.nan
    else:
        landmarks[bad] = landmarks[bad].mean(0)
    track = build_face_track(landmarks, valid, FPS, FRAME_SIZE)
    expected_valid = valid.copy()
    expected_valid[bad] = False
    np.testing.assert_array_equal(track.valid, expected_valid)
    for array in (track.landmarks, track.canonical, track.template, track.crop_affine,
                  track.pose.scale, track.pose.rotation, track.pose.translation):
        assert np.isfinite(array).all()
    reference = build_face_track(landmarks, expected_valid, FPS, FRAME_SIZE)
    np.testing.assert_array_equal(track.template, reference.template)
    np.testing.assert_array_equal(track.crop_affine, reference.crop_affine)
    assert valid[bad]  # the caller's array is not modified


@pytest.mark.parametrize("fps", [0.0, -25.0, float("nan"), float("inf"), "25"])
def test_a_bad_frame_rate_is_one_clear_error(fps):
    """It sets the smoothing time scale and is stored for the audio timing: a negative rate used
    to crash with an IndexError, NaN with "cannot convert float NaN to integer"."""
    landmarks, valid, *_ = synthetic_clip()
    with pytest.raises(ResyncerInputError, match="^fps must be a positive frame rate") as info:
        build_face_track(landmarks[:5], valid[:5], fps, FRAME_SIZE)
    assert "\n" not in str(info.value)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        build_face_track(np.zeros((5, 400, 3), np.float32), np.ones(5, bool), FPS, FRAME_SIZE)


def test_real_landmarks_render_a_mesh_that_covers_their_hull():
    """The astronaut photo's MediaPipe landmarks: the tracked mesh, rendered into the crop,
    covers the convex hull of its projected landmarks (IoU ≥ 0.9)."""
    landmarks = reference_landmarks("astronaut")[None]
    track = build_face_track(landmarks, np.ones(1, bool), FPS, (320, 320))
    vertices = track.mesh_in_crop()
    coverage = TorchRasterizer().render(vertices, torch.tensor(topology.triangles()), 256).coverage > 0
    hull = landmark_hull_mask(vertices, 256) > 0
    assert float((coverage & hull).sum() / (coverage | hull).sum()) >= 0.9
