"""Temporal clean-up of a head-pose sequence: gap filling and one-euro smoothing.

SyncTalk's head stabilisation idea, reduced to what a landmark tracker allows: smooth the rigid
head pose (scale, rotation, translation) over time and leave the expression alone. The crop
transform is derived from the smoothed pose (see track.py), so it is stabilised with it.

Poses are handled as per-frame feature vectors: log scale, translation in TRANSLATION_UNIT
canonical units (about a decimetre, so translation and rotation speeds have similar magnitudes
and one `beta` suits both) and a unit quaternion kept on one hemisphere along the sequence.
Filtering quaternion components and re-normalising stays a proper rotation and is accurate for
the small frame-to-frame changes of a head. Per-track bookkeeping, so numpy.
"""

from __future__ import annotations

import math

import numpy as np

from .canonical import Pose

TRANSLATION_UNIT = 10.0
# smoothing ∈ (0, 1] maps log-linearly onto the one-euro minimum cutoff between these (Hz):
# 0.5 (the default) gives 1 Hz, which removes landmark jitter but keeps nods and turns.
LIGHTEST_MIN_CUTOFF_HZ = 5.0
STRONGEST_MIN_CUTOFF_HZ = 0.2
# Cutoff increase per feature unit per second: fast head motion is let through with less lag.
SPEED_COEFFICIENT = 2.0
DERIVATIVE_CUTOFF_HZ = 1.0


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) [T,4] from rotation matrices [T,3,3]."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = np.stack(
        [
            1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2],
            1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2],
            1 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2],
            1 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2],
        ],
        axis=-1,
    )
    magnitude = 0.5 * np.sqrt(np.clip(trace, 0.0, None))
    signs = np.stack(
        [np.ones(len(r)), r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], axis=-1
    )
    quaternion = np.copysign(magnitude, signs)
    return quaternion / np.linalg.norm(quaternion, axis=-1, keepdims=True)


def quaternion_to_rotation(quaternion: np.ndarray) -> np.ndarray:
    """Rotation matrices [T,3,3] from (not necessarily unit) quaternions (w, x, y, z) [T,4]."""
    q = np.asarray(quaternion, dtype=np.float64)
    w, x, y, z = (q / np.linalg.norm(q, axis=-1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def _continuous_hemisphere(quaternion: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions are on the same side (q and −q are one rotation)."""
    flips = np.ones(len(quaternion))
    flips[1:] = np.sign(np.sum(quaternion[1:] * quaternion[:-1], axis=-1) + 1e-12)
    return quaternion * np.cumprod(flips)[:, None]


def _pose_features(pose: Pose, length_scale: float) -> np.ndarray:
    pose = pose.numpy()
    return np.concatenate(
        [
            np.log(pose.scale.astype(np.float64))[:, None],
            pose.translation / (length_scale * TRANSLATION_UNIT),
            _continuous_hemisphere(rotation_to_quaternion(pose.rotation)),
        ],
        axis=-1,
    )


def _features_pose(features: np.ndarray, length_scale: float) -> Pose:
    return Pose(
        np.exp(features[:, 0]),
        quaternion_to_rotation(features[:, 4:8]),
        features[:, 1:4] * (length_scale * TRANSLATION_UNIT),
    ).numpy()


def _length_scale(pose: Pose) -> float:
    """Pixels per canonical unit of the sequence, for unit-free translation features."""
    return float(np.median(np.asarray(pose.numpy().scale)))


def interpolate_missing_poses(known: Pose, valid: np.ndarray) -> Pose:
    """Poses for all frames from the poses of the valid ones (`known`, one per valid frame, in order).

    Invalid frames between valid ones get an interpolation of their nearest valid neighbours
    (quaternions normalised-linear along the short arc); frames before the first / after the
    last valid frame hold that frame's pose.
    """
    valid_frames = np.flatnonzero(np.asarray(valid, dtype=bool))
    if len(valid_frames) == 0 or len(valid_frames) != len(known):
        raise ValueError(f"need one known pose per valid frame, got {len(known)} for {len(valid_frames)}")
    length_scale = _length_scale(known)
    features = _pose_features(known, length_scale)
    frames = np.arange(len(valid))
    filled = np.stack([np.interp(frames, valid_frames, channel) for channel in features.T], axis=-1)
    return _features_pose(filled, length_scale)


def smoothing_min_cutoff(smoothing: float) -> float:
    """One-euro minimum cutoff (Hz) for a smoothing strength in (0, 1]."""
    return math.exp(
        (1 - smoothing) * math.log(LIGHTEST_MIN_CUTOFF_HZ) + smoothing * math.log(STRONGEST_MIN_CUTOFF_HZ)
    )


def _smoothing_factor(cutoff_hz: np.ndarray | float, fps: float) -> np.ndarray | float:
    time_constant = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + time_constant * fps)


def one_euro_filter(
    signal: np.ndarray,
    fps: float,
    min_cutoff: float,
    beta: float = SPEED_COEFFICIENT,
    derivative_cutoff: float = DERIVATIVE_CUTOFF_HZ,
) -> np.ndarray:
    """Causal one-euro filter (Casiez et al., CHI 2012) of signal [T,D], per channel."""
    signal = np.asarray(signal, dtype=np.float64)
    filtered = np.empty_like(signal)
    filtered[0] = signal[0]
    speed = np.zeros(signal.shape[1:])
    derivative_alpha = _smoothing_factor(derivative_cutoff, fps)
    for t in range(1, len(signal)):
        raw_speed = (signal[t] - filtered[t - 1]) * fps
        speed = derivative_alpha * raw_speed + (1 - derivative_alpha) * speed
        alpha = _smoothing_factor(min_cutoff + beta * np.abs(speed), fps)
        filtered[t] = alpha * signal[t] + (1 - alpha) * filtered[t - 1]
    return filtered


def zero_lag_one_euro_filter(signal: np.ndarray, fps: float, min_cutoff: float) -> np.ndarray:
    """Mean of the forward and the time-reversed one-euro passes.

    For offline video the two lags (behind, ahead) cancel to first order, so the smoothed head
    does not trail the real one, which would misplace the rendered mesh in the crop. The clip
    is first extended by up to a second of odd reflection at both ends (as scipy's filtfilt
    pads), so both passes are settled on the first and last frames too.
    """
    signal = np.asarray(signal, dtype=np.float64)
    pad = min(len(signal) - 1, int(round(fps)))
    extended = np.concatenate(
        [2 * signal[:1] - signal[pad:0:-1], signal, 2 * signal[-1:] - signal[-2 : -pad - 2 : -1]]
    )
    forward = one_euro_filter(extended, fps, min_cutoff)
    backward = one_euro_filter(extended[::-1], fps, min_cutoff)[::-1]
    return 0.5 * (forward + backward)[pad : pad + len(signal)]


def smooth_pose(pose: Pose, fps: float, smoothing: float, causal: bool = False) -> Pose:
    """Smoothed copy of a complete pose sequence (fill gaps first); smoothing 0 returns it as is.

    causal=True uses only past frames (live streaming) at the price of some lag.
    """
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be within [0, 1], got {smoothing}")
    if smoothing == 0.0 or len(pose) < 2:
        return pose.numpy()
    length_scale = _length_scale(pose)
    features = _pose_features(pose, length_scale)
    min_cutoff = smoothing_min_cutoff(smoothing)
    if causal:
        smoothed = one_euro_filter(features, fps, min_cutoff)
    else:
        smoothed = zero_lag_one_euro_filter(features, fps, min_cutoff)
    return _features_pose(smoothed, length_scale)
