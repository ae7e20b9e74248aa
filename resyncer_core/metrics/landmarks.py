"""Landmark metrics from our own tracker (resyncer_core/face): LMD and mouth-aperture sync.

- landmark_distance (LMD, paper Table 1): mean Euclidean distance between the mouth landmarks
  tracked in generated crops and in the real crops, in crop pixels (256² crops), over the
  frames where both have a face.
- aperture_sync: does the generated mouth open when the driving mesh says it should? The lip
  aperture (inner-lip gap, face/template.mouth_opening) re-tracked from the generated frames
  is correlated with the driving meshes' aperture at lags of ±max_lag frames; the result is the
  correlation at lag 0 and the lag with the highest correlation (0 for frames in sync; a
  positive lag means the video trails the driver).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face import topology
from ..face.template import mouth_opening

DEFAULT_MAX_LAG = 5  # frames: 0.2 s at 25 fps either way


def mouth_landmark_ids() -> np.ndarray:
    """The MediaPipe lip vertices (outer and inner contours)."""
    return np.asarray(topology.lip_vertices())


def track_crops(tracker, crops: torch.Tensor):
    """FaceTrack of crops [T,3,H,W] in -1..1 (as 0..255 frames; a clip, so smoothing applies)."""
    frames = ((torch.as_tensor(crops).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    return tracker.track(frames.contiguous().numpy(), 25.0, smoothing=0.0)


def landmark_distance(generated_track, real_track, vertex_ids=None) -> float:
    """LMD between two tracks of the same crops' size: mean over frames (both tracked) and
    mouth landmarks of the 2D distance, in pixels. NaN when no frame has a face in both."""
    ids = mouth_landmark_ids() if vertex_ids is None else np.asarray(vertex_ids)
    if len(generated_track) != len(real_track):
        raise ResyncerInputError(f"LMD needs tracks of equal length, got {len(generated_track)} and {len(real_track)}")
    both = generated_track.valid & real_track.valid
    if not both.any():
        return float("nan")
    difference = generated_track.landmarks[both][:, ids, :2] - real_track.landmarks[both][:, ids, :2]
    return float(np.linalg.norm(difference, axis=-1).mean())


@dataclass(frozen=True)
class ApertureSync:
    correlation: float   # Pearson correlation at lag 0 (1: opens exactly when the driver does)
    best_lag: int        # frames; the lag of the highest correlation within ±max_lag
    best_correlation: float


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-8 or b.std() < 1e-8:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def aperture_sync(video_aperture, driving_aperture, valid=None, max_lag: int = DEFAULT_MAX_LAG) -> ApertureSync:
    """Correlation and best lag between two aperture series [T] (see the module docstring);
    `valid` [T] marks the frames whose video aperture was tracked."""
    video = np.asarray(video_aperture, dtype=np.float64)
    driving = np.asarray(driving_aperture, dtype=np.float64)
    if video.shape != driving.shape or video.ndim != 1:
        raise ResyncerInputError(f"aperture_sync needs two series of one length, got {video.shape} and {driving.shape}")
    valid = np.ones(len(video), bool) if valid is None else np.asarray(valid, bool)
    correlations = {}
    for lag in range(-max_lag, max_lag + 1):
        # video[t] against driving[t − lag]: a positive lag means the video trails the driver.
        index = np.arange(max(0, lag), min(len(video), len(video) + lag))
        keep = index[valid[index]]
        correlations[lag] = _correlation(video[keep], driving[keep - lag])
    finite = {lag: value for lag, value in correlations.items() if np.isfinite(value)}
    best = max(finite, key=lambda lag: (finite[lag], -abs(lag))) if finite else 0
    return ApertureSync(correlation=correlations[0], best_lag=int(best),
                        best_correlation=float(finite.get(best, float("nan"))))


def mesh_aperture(meshes) -> np.ndarray:
    """Lip aperture [T] of canonical meshes [T,468,3]."""
    return mouth_opening(np.asarray(meshes, dtype=np.float32))
