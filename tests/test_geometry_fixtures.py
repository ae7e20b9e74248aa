"""Shared builders for the geometry and render tests (no tests here; imported by them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from resyncer_core.face import topology
from resyncer_core.face.alignment import crop_affine_from_landmarks, crop_points
from resyncer_core.face.canonical import Pose, from_canonical

FACE_DATA = Path(__file__).parent / "data" / "face"
REFERENCE = FACE_DATA / "mediapipe_reference.npz"

# Head poses the tests sweep: (yaw, pitch, roll) in degrees, up to the ±40° the brief asks for.
POSE_SWEEP = [(0, 0, 0), (40, 0, 0), (-40, 0, 0), (0, 25, 0), (0, -25, 0), (0, 0, 30), (0, 0, -30), (-30, 15, -20), (35, -20, 25)]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation in canonical axes (x right, y up, z to the viewer): roll·yaw·pitch, degrees."""
    a, b, c = np.radians([pitch, yaw, roll])
    about_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    about_y = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    about_z = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return about_z @ about_y @ about_x


def pose_of(angles: list[tuple[float, float, float]], scale: float = 10.0, centre=(320.0, 240.0, 0.0)) -> Pose:
    return Pose(
        torch.full((len(angles),), scale),
        torch.tensor(np.stack([rotation(*a) for a in angles]), dtype=torch.float32),
        torch.tensor(centre, dtype=torch.float32).expand(len(angles), 3).clone(),
    )


def template() -> torch.Tensor:
    return torch.tensor(topology.template_vertices())


def crop_vertices_for(angles: list[tuple[float, float, float]]) -> torch.Tensor:
    """The canonical model posed with each head pose and mapped into its aligned crop."""
    landmarks = from_canonical(template(), pose_of(angles))
    return crop_points(landmarks, crop_affine_from_landmarks(landmarks))


def band_limited_texture(height: int, width: int, max_cycles_per_pixel: float = 0.15, seed: int = 0) -> np.ndarray:
    """A textured test image [H,W,3] in 0..1: random plane waves with periods down to
    1 / max_cycles_per_pixel pixels (≈ 7 px by default, 30 % of the Nyquist frequency)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(12):
            fx, fy = rng.uniform(-max_cycles_per_pixel, max_cycles_per_pixel, 2) / np.sqrt(2)
            image[..., channel] += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    image -= image.min((0, 1))
    return (image / image.max((0, 1))).astype(np.float32)


def reference_landmarks(name: str) -> np.ndarray:
    """Real MediaPipe landmarks [468,3] saved by the tracker's reference tool, or skip."""
    if not REFERENCE.exists():
        pytest.skip("tests/data/face/mediapipe_reference.npz is not present")
    with np.load(REFERENCE, allow_pickle=False) as data:
        key = f"{name}/landmarks"
        if key not in data.files:
            pytest.skip(f"{key} is not in the MediaPipe reference file")
        return data[key]
