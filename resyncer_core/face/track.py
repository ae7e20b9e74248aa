"""FaceTrack: per-frame landmarks turned into pose, canonical meshes, template and crop transforms.

build_face_track is the geometry half of the tracker: the tracking loop produces MediaPipe
landmarks per frame (image pixels, see canonical.py for axes) and hands them here.

- Pose: weighted Procrustes fit of the rigid points (topology.rigid_weights: MediaPipe's 33
  less the 6 that follow the jaw) to the canonical model, per valid frame; invalid frames get
  poses interpolated from their valid neighbours (held at the ends); then the sequence is
  smoothed (smoothing.py, zero-lag one-euro) — SyncTalk's idea of stabilising the head, not
  the expression.
- Canonical meshes use each frame's own fitted (unsmoothed) pose, so head jitter does not leak
  into the expression; the stored pose is the smoothed one, hence from_canonical(canonical,
  pose) reproduces the landmarks up to the jitter that smoothing removed.
- Template M̄ = the neutral template (template.py): the mean canonical mesh over the valid
  frames with the most closed mouth, not the clip mean, which would carry the person's
  average (half-open, speaking) expression into every transfer. With no valid frame the
  template is MediaPipe's canonical model.
- Crop: derived from the template posed with the smoothed pose (crop_affine_from_landmarks on
  rigid, expression-free points), so the crop follows the head, not the mouth, and is as
  steady as the pose.
- Invalid frames stay flagged in `valid`; their canonical mesh is the template (ΔM = 0) and
  their landmarks are the template posed with the interpolated pose, so every array is finite.
  A frame flagged valid whose landmarks are not finite, or whose rigid points collapse so that
  no pose can be fitted (scale ≤ MIN_POSE_SCALE), is flagged invalid too: one such frame would
  otherwise make the template, every smoothed pose and every crop NaN.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from . import topology
from .alignment import CROP_SIZE, crop_affine_from_landmarks, crop_points
from .canonical import Pose, fit_pose, from_canonical, to_canonical
from .smoothing import interpolate_missing_poses, smooth_pose
from .template import neutral_template

FORMAT_VERSION = 1
# Placeholder pose for a track without any face: frontal, centred, the canonical face about
# half the frame height tall (the model is about 17.7 units from chin to forehead).
NO_FACE_HEIGHT_FRACTION = 0.5
CANONICAL_FACE_HEIGHT = 17.7
# Smallest fitted scale (image pixels per canonical unit) a frame's pose may have: below it the
# face is under about 0.02 px tall, i.e. the landmarks are degenerate, not a face.
MIN_POSE_SCALE = 1e-3


@dataclass(eq=False)  # fields are arrays: compare them explicitly
class FaceTrack:
    """A tracked clip. Arrays are numpy float32 unless noted; T frames.

    landmarks [T,468,3] image pixels (x, y) and pixel-scaled depth (z, smaller is nearer);
    valid [T] bool; pose: smoothed per-frame similarity (Pose of numpy arrays);
    canonical [T,468,3] pose-free meshes; template [468,3] the person's neutral mesh M̄;
    crop_affine [T,2,3] frame → 256² crop similarity; fps; frame_size (H, W).
    """

    landmarks: np.ndarray
    valid: np.ndarray
    pose: Pose
    canonical: np.ndarray
    template: np.ndarray
    crop_affine: np.ndarray
    fps: float
    frame_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.valid)

    def delta(self) -> np.ndarray:
        """ΔM = canonical − template, [T,468,3]."""
        return self.canonical - self.template[None]

    def slice(self, start: int | None, stop: int | None) -> FaceTrack:
        """Frames start:stop; the template stays the whole clip's."""
        frames = slice(start, stop)
        return FaceTrack(
            landmarks=self.landmarks[frames],
            valid=self.valid[frames],
            pose=self.pose[frames],
            canonical=self.canonical[frames],
            template=self.template,
            crop_affine=self.crop_affine[frames],
            fps=self.fps,
            frame_size=self.frame_size,
        )

    def mesh_in_crop(self, canonical_mesh: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """Canonical meshes [T,V,3] (default: the tracked ones) posed into this track's crops."""
        mesh = self.canonical if canonical_mesh is None else canonical_mesh
        return posed_mesh_in_crop(torch.as_tensor(mesh), self.pose, self.crop_affine)

    def save(self, path: str | Path) -> None:
        """Write an .npz (no pickled objects)."""
        with open(path, "wb") as file:  # a file object keeps numpy from appending ".npz"
            np.savez_compressed(
                file,
                format_version=np.array(FORMAT_VERSION),
                landmarks=self.landmarks,
                valid=self.valid,
                pose_scale=self.pose.scale,
                pose_rotation=self.pose.rotation,
                pose_translation=self.pose.translation,
                canonical=self.canonical,
                template=self.template,
                crop_affine=self.crop_affine,
                fps=np.array(self.fps, dtype=np.float64),
                frame_size=np.array(self.frame_size, dtype=np.int64),
            )

    @classmethod
    def load(cls, path: str | Path) -> FaceTrack:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: face track format {version}, this version reads {FORMAT_VERSION}")
            return cls(
                landmarks=data["landmarks"],
                valid=data["valid"].astype(bool),
                pose=Pose(data["pose_scale"], data["pose_rotation"], data["pose_translation"]),
                canonical=data["canonical"],
                template=data["template"],
                crop_affine=data["crop_affine"],
                fps=float(data["fps"]),
                frame_size=tuple(int(v) for v in data["frame_size"]),
            )


def posed_mesh_in_crop(canonical_mesh: torch.Tensor, pose: Pose, crop_affine: torch.Tensor | np.ndarray) -> torch.Tensor:
    """M̂ [T,V,3] (or one [V,3] for all frames) posed with each frame's pose, in crop pixels.

    x, y are crop pixels; z is depth in crop-pixel scale, smaller nearer — what the renderer
    and the masks take. Computed on the mesh's device.
    """
    canonical_mesh = torch.as_tensor(canonical_mesh, dtype=torch.float32)
    affine = torch.as_tensor(crop_affine, dtype=torch.float32, device=canonical_mesh.device)
    return crop_points(from_canonical(canonical_mesh, pose), affine)


def _no_face_pose(num_frames: int, frame_size: tuple[int, int]) -> Pose:
    height, width = frame_size
    scale = NO_FACE_HEIGHT_FRACTION * height / CANONICAL_FACE_HEIGHT
    return Pose(
        np.full(num_frames, scale, dtype=np.float32),
        np.tile(np.eye(3, dtype=np.float32), (num_frames, 1, 1)),
        np.tile(np.array([width / 2, height / 2, 0.0], dtype=np.float32), (num_frames, 1)),
    )


def build_face_track(
    landmarks: np.ndarray,
    valid: np.ndarray,
    fps: float,
    frame_size: tuple[int, int],
    smoothing: float = 0.5,
) -> FaceTrack:
    """FaceTrack from landmarks [T,468,3] (image pixels; rows of invalid frames are ignored)."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise ResyncerInputError(f"fps must be a positive frame rate, got {fps!r}; pass the video frame rate (e.g. 25).")
    landmarks = np.asarray(landmarks, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (topology.NUM_VERTICES, 3) or valid.shape != landmarks.shape[:1]:
        raise ValueError(f"expected landmarks [T,468,3] and valid [T], got {landmarks.shape} and {valid.shape}")
    valid = valid & np.isfinite(landmarks).all(axis=(1, 2))
    valid_frames = np.flatnonzero(valid)

    if len(valid_frames):
        observed = torch.from_numpy(landmarks[valid_frames])
        fitted = fit_pose(observed, torch.tensor(topology.template_vertices()), torch.tensor(topology.rigid_weights()))
        fittable = (fitted.scale > MIN_POSE_SCALE).numpy()
        if not fittable.all():
            valid[valid_frames[~fittable]] = False
            valid_frames, observed, fitted = valid_frames[fittable], observed[fittable], fitted[torch.from_numpy(fittable)]
    if len(valid_frames):
        observed_canonical = to_canonical(observed, fitted)
        template = neutral_template(observed_canonical.numpy())
        pose = smooth_pose(interpolate_missing_poses(fitted, valid), fps, smoothing)
    else:
        template = topology.template_vertices().copy()
        pose = _no_face_pose(len(valid), frame_size)

    canonical = np.broadcast_to(template, landmarks.shape).copy()
    rigid = from_canonical(torch.from_numpy(template), pose).numpy()
    tracked = rigid.copy()
    if len(valid_frames):
        canonical[valid_frames] = observed_canonical.numpy()
        tracked[valid_frames] = landmarks[valid_frames]
    return FaceTrack(
        landmarks=tracked,
        valid=valid,
        pose=pose,
        canonical=canonical,
        template=template,
        crop_affine=crop_affine_from_landmarks(rigid, CROP_SIZE).numpy(),
        fps=float(fps),
        frame_size=(int(frame_size[0]), int(frame_size[1])),
    )
