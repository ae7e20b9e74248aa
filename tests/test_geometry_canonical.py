from __future__ import annotations

import numpy as np
import pytest
import torch

from resyncer_core.face import topology
from resyncer_core.face.canonical import Pose, fit_pose, from_canonical, to_canonical
from test_geometry_fixtures import POSE_SWEEP, reference_landmarks, rotation, template

WEIGHTS = torch.tensor(topology.rigid_weights())


def known_poses() -> Pose:
    angles = POSE_SWEEP + [(-40, -25, 30), (40, 25, -30)]
    rng = np.random.default_rng(1)
    return Pose(
        torch.tensor(rng.uniform(2.0, 30.0, len(angles)), dtype=torch.float32),
        torch.tensor(np.stack([rotation(*a) for a in angles]), dtype=torch.float32),
        torch.tensor(rng.uniform(-200, 800, (len(angles), 3)), dtype=torch.float32),
    )


def rotation_error_degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cosine = ((a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cosine.clamp(-1, 1)))


def test_fit_recovers_a_known_similarity_in_one_batched_call():
    truth = known_poses()
    landmarks = from_canonical(template(), truth)
    fitted = fit_pose(landmarks, template(), WEIGHTS)

    assert rotation_error_degrees(fitted.rotation, truth.rotation).max() < 0.01
    torch.testing.assert_close(fitted.scale, truth.scale, rtol=1e-5, atol=0)
    torch.testing.assert_close(fitted.translation, truth.translation, rtol=0, atol=2e-3)
    torch.testing.assert_close(to_canonical(landmarks, fitted), template().expand_as(landmarks), rtol=0, atol=1e-4)
    torch.testing.assert_close(torch.linalg.det(fitted.rotation), torch.ones(len(truth)), rtol=0, atol=1e-5)


def test_image_axes_flip_y_and_z():
    """A frontal head: forehead above chin in the image (smaller y), nose tip nearer (smaller z)."""
    frontal = Pose(torch.ones(1), torch.eye(3)[None], torch.zeros(1, 3))
    landmarks = from_canonical(template(), frontal)[0]
    assert landmarks[10, 1] < landmarks[topology.CHIN, 1]
    assert landmarks[topology.NOSE_TIP, 2] < landmarks[234, 2]  # 234: the right cheek's edge
    assert landmarks[263, 0] > landmarks[33, 0]  # the subject's left eye is on the image right


def test_to_canonical_is_the_exact_inverse_of_from_canonical():
    pose = known_poses()
    meshes = template() + 0.3 * torch.randn(len(pose), 468, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(to_canonical(from_canonical(meshes, pose), pose), meshes, rtol=0, atol=1e-4)


def test_a_vertex_with_zero_weight_does_not_move_the_pose_but_a_weighted_one_does():
    truth = known_poses()
    landmarks = from_canonical(template(), truth)
    clean = fit_pose(landmarks, template(), WEIGHTS)

    unweighted_vertex = int(np.flatnonzero(topology.rigid_weights() == 0)[0])
    moved = landmarks.clone()
    moved[:, unweighted_vertex] += 500.0
    torch.testing.assert_close(fit_pose(moved, template(), WEIGHTS).rotation, clean.rotation, rtol=0, atol=1e-6)
    torch.testing.assert_close(fit_pose(moved, template(), WEIGHTS).translation, clean.translation, rtol=0, atol=1e-3)

    weighted_vertex = int(np.argmax(topology.rigid_weights()))
    moved = landmarks.clone()
    moved[:, weighted_vertex] += 5.0 * truth.scale[:, None]
    assert rotation_error_degrees(fit_pose(moved, template(), WEIGHTS).rotation, clean.rotation).min() > 0.5


def test_fit_keeps_the_device_and_dtype_of_the_landmarks():
    landmarks = from_canonical(template(), known_poses()).double()
    fitted = fit_pose(landmarks, template(), WEIGHTS)
    assert fitted.rotation.dtype == torch.float64 and fitted.rotation.device == landmarks.device


def test_pose_converts_between_numpy_and_torch_and_slices():
    pose = known_poses()
    as_numpy = pose.numpy()
    assert isinstance(as_numpy.rotation, np.ndarray) and as_numpy.rotation.dtype == np.float32
    torch.testing.assert_close(as_numpy.to("cpu").rotation, pose.rotation)
    assert len(pose[2:5]) == 3


@pytest.mark.parametrize("name, expected_roll", [("rotated_plus20", 20.0), ("rotated_minus20", -20.0)])
def test_real_mediapipe_landmarks_fit_the_template_with_a_proper_rotation(name, expected_roll):
    """Real MediaPipe output (x, y pixels, z pixel-scaled, nearer smaller) fits the canonical model;
    rotating the photo by ±20° shows up as ±20° of roll in canonical axes."""
    upright = fit_pose(torch.tensor(reference_landmarks("astronaut"))[None], template(), WEIGHTS)
    landmarks = torch.tensor(reference_landmarks(name))[None]
    fitted = fit_pose(landmarks, template(), WEIGHTS)

    residual = (to_canonical(landmarks, fitted)[0] - template()).norm(dim=-1)
    assert float((residual * WEIGHTS).sum() / WEIGHTS.sum()) < 1.0  # canonical units, ≈ cm
    relative = upright.rotation[0].T @ fitted.rotation[0]
    roll = np.degrees(np.arctan2(float(relative[1, 0]), float(relative[0, 0])))
    assert roll == pytest.approx(expected_roll, abs=4.0)


def test_opening_the_jaw_does_not_move_the_fitted_head():
    """Speech must stay in the canonical mesh (ΔM), not leak into the pose."""
    truth = known_poses()
    face = template().clone()
    jaw = torch.tensor(topology.lower_face_vertices())
    below_mouth = jaw[face[jaw, 1] < -4.3]  # everything below the mouth corners drops and recedes
    face[below_mouth] += torch.tensor([0.0, -1.5, -0.5])
    fitted = fit_pose(from_canonical(face, truth), template(), WEIGHTS)
    assert rotation_error_degrees(fitted.rotation, truth.rotation).max() < 0.01
    torch.testing.assert_close(to_canonical(from_canonical(face, truth), fitted), face.expand(len(truth), -1, -1), rtol=0, atol=1e-4)
