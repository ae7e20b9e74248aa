from __future__ import annotations

import numpy as np
import pytest

from resyncer_core.face.canonical import Pose
from resyncer_core.face.smoothing import (
    interpolate_missing_poses,
    quaternion_to_rotation,
    rotation_to_quaternion,
    smooth_pose,
)
from test_geometry_fixtures import rotation

FPS = 25.0


def head_motion(frames: int) -> tuple[np.ndarray, Pose]:
    """(yaw degrees [T], pose): a head turning ±25° at 0.4 Hz and drifting sideways."""
    t = np.arange(frames) / FPS
    yaw = 25 * np.sin(2 * np.pi * 0.4 * t)
    pose = Pose(
        np.full(frames, 8.0, np.float32),
        np.stack([rotation(y, 5, -3) for y in yaw]).astype(np.float32),
        np.stack([300 + 40 * np.sin(2 * np.pi * 0.3 * t), 200 + 0 * t, 0 * t], -1).astype(np.float32),
    )
    return yaw, pose


def jittered(pose: Pose, seed: int = 0) -> Pose:
    rng = np.random.default_rng(seed)
    frames = len(pose)
    wobble = np.stack([rotation(*rng.normal(0, 1.0, 3)) for _ in range(frames)])
    return Pose(
        pose.scale * np.exp(rng.normal(0, 0.01, frames)).astype(np.float32),
        (pose.rotation @ wobble).astype(np.float32),
        pose.translation + rng.normal(0, 1.5, (frames, 3)).astype(np.float32),
    )


def angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cosine = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


def test_quaternions_round_trip_rotations():
    rotations = np.stack([rotation(y, p, r) for y, p, r in np.random.default_rng(0).uniform(-170, 170, (50, 3))])
    np.testing.assert_allclose(quaternion_to_rotation(rotation_to_quaternion(rotations)), rotations, atol=1e-9)


def test_zero_smoothing_returns_the_pose_unchanged():
    _, pose = head_motion(40)
    noisy = jittered(pose)
    same = smooth_pose(noisy, FPS, 0.0)
    for got, expected in zip((same.scale, same.rotation, same.translation), (noisy.scale, noisy.rotation, noisy.translation)):
        np.testing.assert_array_equal(got, expected)


def test_smoothing_removes_jitter_and_keeps_the_motion_without_lag():
    _, truth = head_motion(250)
    noisy = jittered(truth)
    smoothed = smooth_pose(noisy, FPS, 0.5)

    assert angle_degrees(smoothed.rotation, truth.rotation).mean() < 0.6 * angle_degrees(noisy.rotation, truth.rotation).mean()
    assert np.abs(smoothed.translation - truth.translation).mean() < 0.6 * np.abs(noisy.translation - truth.translation).mean()
    assert np.abs(np.log(smoothed.scale / truth.scale)).mean() < 0.6 * np.abs(np.log(noisy.scale / truth.scale)).mean()
    np.testing.assert_allclose(np.linalg.det(smoothed.rotation), 1.0, atol=1e-5)
    # Zero lag: on the clean motion, the smoothed head does not trail the true one.
    clean = smooth_pose(truth, FPS, 0.5)
    assert angle_degrees(clean.rotation, truth.rotation)[10:-10].max() < 1.0
    causal = smooth_pose(truth, FPS, 0.5, causal=True)
    assert angle_degrees(causal.rotation, truth.rotation)[10:-10].max() > angle_degrees(clean.rotation, truth.rotation)[10:-10].max()


def test_zero_lag_holds_on_the_first_and_last_frames_too():
    """The lag test above skips 10 frames at each end; the ends are where a zero-lag filter
    without its reflection padding trails the head (1.6° and 1.4 px here instead of 0.3° and
    0.1 px), which misplaces the mesh on a clip's first and last frames."""
    _, truth = head_motion(250)
    clean = smooth_pose(truth, FPS, 0.5)
    errors = angle_degrees(clean.rotation, truth.rotation)
    shifts = np.abs(clean.translation - truth.translation).max(-1)
    assert errors.max() < 1.0
    assert errors[:5].max() < 0.5 and errors[-5:].max() < 0.5
    assert shifts[:5].max() < 0.5 and shifts[-5:].max() < 0.5


def test_stronger_smoothing_is_smoother():
    _, truth = head_motion(200)
    noisy = jittered(truth, seed=3)
    roughness = [np.abs(np.diff(smooth_pose(noisy, FPS, s).translation, 2, axis=0)).mean() for s in (0.2, 0.5, 0.9)]
    assert roughness[0] > roughness[1] > roughness[2]


def test_missing_poses_are_interpolated_between_and_held_beyond_the_valid_frames():
    valid = np.array([False, True, False, False, True, False])
    known = Pose(
        np.array([4.0, 8.0], np.float32),
        np.stack([rotation(0, 0, 0), rotation(30, 0, 0)]).astype(np.float32),
        np.array([[0, 0, 0], [30, 60, 0]], np.float32),
    )
    filled = interpolate_missing_poses(known, valid)
    assert len(filled) == 6
    np.testing.assert_allclose(filled.translation[[0, 2, 3, 5]], [[0, 0, 0], [10, 20, 0], [20, 40, 0], [30, 60, 0]], atol=1e-3)
    np.testing.assert_allclose(filled.scale[[0, 5]], [4.0, 8.0], rtol=1e-6)
    assert 4.0 < filled.scale[2] < filled.scale[3] < 8.0  # geometric interpolation of the scale
    np.testing.assert_allclose(angle_degrees(filled.rotation, known.rotation[:1]), [0, 0, 10, 20, 30, 30], atol=0.3)


def test_invalid_arguments_raise():
    _, pose = head_motion(10)
    with pytest.raises(ValueError):
        smooth_pose(pose, FPS, 1.5)
    with pytest.raises(ValueError):
        interpolate_missing_poses(pose[:3], np.zeros(10, bool))
