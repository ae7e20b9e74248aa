"""Per-frame head pose: weighted Procrustes (Umeyama) similarity between landmarks and template.

Axis conventions
----------------
MediaPipe landmarks (what the tracker produces) live in image axes: x right, y down, z in the
same pixel scale with smaller z closer to the camera. The canonical face model lives in
x right, y up, z towards the viewer. Going from one to the other flips y and z, i.e. multiplies
by IMAGE_FROM_CANONICAL_AXES = diag(1, -1, -1): a 180° turn about x, itself a proper rotation,
so both frames are right-handed and the fitted rotation can be constrained to det = +1.
MediaPipe's own geometry pipeline does the same (it flips y for a top-left origin and
"changes handedness" by negating z).

The pose of frame t maps a canonical mesh M (rows are vertices) to image landmarks L:

    L = scale · (M Rᵀ) F + translation,    F = IMAGE_FROM_CANONICAL_AXES

so rotation is the head rotation in canonical axes (identity for a frontal face looking at the
camera), scale is pixels per canonical unit and translation is where the model's origin lands,
in image pixels (x, y) and pixel-scaled depth (z). The projection is weak-perspective
(orthographic), which is what the 2.5D landmark network's output supports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IMAGE_FROM_CANONICAL_AXES = (1.0, -1.0, -1.0)


@dataclass(eq=False)  # fields are arrays: compare them explicitly
class Pose:
    """Per-frame similarity: scale [T], rotation [T,3,3] (det +1), translation [T,3].

    Fields are torch tensors from fit_pose; FaceTrack keeps numpy copies. The functions in this
    module accept either and compute on the device of the points they are given.
    """

    scale: torch.Tensor | np.ndarray
    rotation: torch.Tensor | np.ndarray
    translation: torch.Tensor | np.ndarray

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Pose:
        """The pose as torch tensors on `device`."""
        return Pose(*(torch.as_tensor(f).to(device=device, dtype=dtype) for f in self._fields()))

    def numpy(self) -> Pose:
        """The pose as float32 numpy arrays."""
        return Pose(*(np.asarray(torch.as_tensor(f).detach().cpu(), dtype=np.float32) for f in self._fields()))

    def _fields(self) -> tuple:
        return self.scale, self.rotation, self.translation

    def __getitem__(self, index) -> Pose:
        return Pose(*(f[index] for f in self._fields()))

    def __len__(self) -> int:
        return len(self.scale)


def _axes_flip(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(IMAGE_FROM_CANONICAL_AXES, dtype=like.dtype, device=like.device)


def fit_pose(landmarks: torch.Tensor, template: torch.Tensor, weights: torch.Tensor) -> Pose:
    """Weighted least-squares similarity taking template [V,3] onto landmarks [T,V,3].

    Minimises Σ_i w_i ‖L_i − (s F R m_i + t)‖² per frame (Umeyama 1991 with weights), with the
    reflection case removed so det R = +1. Only vertices with non-zero weight influence the fit.
    Computed in float64 (the 3×3 SVDs are tiny) and returned in the landmarks' dtype and device.
    """
    landmarks = torch.as_tensor(landmarks)
    device, dtype = landmarks.device, landmarks.dtype if landmarks.is_floating_point() else torch.float32
    points = landmarks.to(torch.float64) * _axes_flip(landmarks.to(torch.float64))  # into canonical axes
    model = torch.as_tensor(template).to(device, torch.float64)
    w = torch.as_tensor(weights).to(device, torch.float64)
    w = w / w.sum()

    model_mean = w @ model  # [3]
    points_mean = torch.einsum("v,tvc->tc", w, points)  # [T,3]
    model_centred = model - model_mean
    points_centred = points - points_mean[:, None]
    covariance = torch.einsum("v,tvi,vj->tij", w, points_centred, model_centred)  # Σ w y xᵀ
    u, singular, vh = torch.linalg.svd(covariance)
    reflection = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
    correction = torch.ones_like(singular)
    correction[:, 2] = torch.where(reflection == 0, torch.ones_like(reflection), reflection)
    rotation = u @ (correction[:, :, None] * vh)
    model_variance = (w * model_centred.pow(2).sum(-1)).sum()
    scale = (singular * correction).sum(-1) / model_variance
    translation_canonical_axes = points_mean - scale[:, None] * (rotation @ model_mean)
    translation = translation_canonical_axes * _axes_flip(translation_canonical_axes)
    return Pose(scale.to(dtype), rotation.to(dtype), translation.to(dtype))


def from_canonical(canonical: torch.Tensor, pose: Pose) -> torch.Tensor:
    """Pose canonical meshes [T,V,3] into image landmarks [T,V,3] (L = s (M Rᵀ) F + t)."""
    canonical = torch.as_tensor(canonical)
    p = pose.to(canonical.device, canonical.dtype)
    rotated = canonical @ p.rotation.transpose(-1, -2)
    return p.scale[:, None, None] * rotated * _axes_flip(canonical) + p.translation[:, None]


def to_canonical(landmarks: torch.Tensor, pose: Pose) -> torch.Tensor:
    """Remove the pose from image landmarks [T,V,3]: the exact inverse of from_canonical."""
    landmarks = torch.as_tensor(landmarks)
    p = pose.to(landmarks.device, landmarks.dtype)
    centred = (landmarks - p.translation[:, None]) * _axes_flip(landmarks)
    return (centred @ p.rotation) / p.scale[:, None, None]
