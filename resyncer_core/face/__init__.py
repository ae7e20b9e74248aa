"""Face tracking and face geometry.

Importing this package loads no network: the MediaPipe ports load their weights on first use.
Names are resolved lazily so `import resyncer_core.face` stays cheap.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "FaceTracker": ".tracker",
    "FaceObservation": ".observation",
    "FaceDetector": ".detector",
    "FaceDetection": ".detector",
    "FaceLandmarkModel": ".landmark_model",
    "FaceTrack": ".track",
    "build_face_track": ".track",
    "posed_mesh_in_crop": ".track",
    "Pose": ".canonical",
    "fit_pose": ".canonical",
    "to_canonical": ".canonical",
    "from_canonical": ".canonical",
    "smooth_pose": ".smoothing",
    "crop_affine_from_landmarks": ".alignment",
    "warp_to_crop": ".alignment",
    "warp_from_crop": ".alignment",
    "invert_affine": ".alignment",
    "crop_points": ".alignment",
    "lower_face_mask": ".masks",
    "full_face_mask": ".masks",
    "lip_sync_mask": ".masks",
    "face_swap_mask": ".masks",
    "feathered_mask": ".masks",
    "landmark_hull_mask": ".masks",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
