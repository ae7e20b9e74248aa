"""The person's neutral template M̄ and the mouth opening it is chosen by (DESIGN §4 Template).

M̄ must be the face "without expression" (paper): video-driven transfer, style transfer and
swap move ΔM = M − M̄ between people, so whatever expression M̄ carries is carried into every
transfer. The clip mean carries the person's average expression, half-open during speech.
The neutral template is therefore the mean canonical mesh over the frames whose mouth is
most closed (the NEUTRAL_FRACTION of tracked frames with the smallest lip gap): still an
average (robust to tracking noise), but of the rest pose of the mouth.
"""

from __future__ import annotations

import math

import numpy as np

from . import topology
from .lips import INNER_LIP_MIDLINE
# Share of the tracked frames, those with the most closed mouth, that the template averages.
NEUTRAL_FRACTION = 0.2


def mouth_opening(meshes: np.ndarray) -> np.ndarray:
    """Lip gap [T] of canonical meshes [T,468,3]: the distance between the inner-lip midpoints,
    in canonical units (about centimetres)."""
    meshes = np.asarray(meshes, dtype=np.float32)
    upper, lower = INNER_LIP_MIDLINE
    return np.linalg.norm(meshes[:, upper] - meshes[:, lower], axis=-1)


def neutral_template(meshes: np.ndarray, fraction: float = NEUTRAL_FRACTION) -> np.ndarray:
    """M̄ [468,3]: the mean of the `fraction` of canonical meshes [T,468,3] (tracked frames only)
    with the smallest mouth opening, at least one frame. No frames give MediaPipe's canonical face."""
    meshes = np.asarray(meshes, dtype=np.float32)
    if len(meshes) == 0:
        return topology.template_vertices().copy()
    count = max(1, math.ceil(fraction * len(meshes)))
    closest = np.argsort(mouth_opening(meshes), kind="stable")[:count]
    return meshes[closest].mean(axis=0)
