"""What the face tracker reports about one face in one image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceObservation:
    """One face: MediaPipe's 468-point mesh plus where it came from.

    landmarks: float32 [468, 3]; x, y in image pixels (x right, y down, pixel centres at integer
        coordinates), z in the same pixel scale as x — MediaPipe's relative depth, smaller is
        nearer the camera, about zero at the face's centre plane.
    box: float32 [4] (x0, y0, x1, y1) in pixels — the detector's box when the observation comes
        from a detection, otherwise the landmarks' bounding box.
    score: the landmark network's face-presence probability (0..1; faces below 0.5 are dropped).
    keypoints: float32 [6, 2] detector keypoints in pixels (right eye, left eye, nose tip, mouth
        centre, right ear tragion, left ear tragion — the subject's sides), or None when the
        observation was tracked from the previous frame instead of detected.
    detection_score: the detector's score (0..1), or None when not detected.
    """

    landmarks: np.ndarray
    box: np.ndarray
    score: float
    keypoints: np.ndarray | None = None
    detection_score: float | None = None
