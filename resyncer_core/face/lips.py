"""The lips of the 468-vertex mesh: contours (MediaPipe ids) and the measurements speech is judged by.

Contours run from the subject's right mouth corner (image left) to the left one, so upper and
lower contours pair up index by index: INNER_UPPER[i] sits above INNER_LOWER[i]. The first and
last entries are the corners, shared by the upper and lower contour.

Measurements take canonical meshes [..., 468, 3] (torch or numpy) and return [...] arrays in
canonical units (about centimetres):
- lip_aperture: the vertical gap between the inner lip contours, averaged over the three
  middle pairs (0 for closed lips; a wide-open "aa" is about 1.5-2).
- mouth_width: the distance between the outer mouth corners (smaller when the lips round).

aperture_iod is the viewer's measure (DESIGN §10) on meshes or landmarks in any units: the
inner lips' mid-line gap (13-14) over the outer eye corners' distance (33-263, IOD).
"""

from __future__ import annotations

import numpy as np
import torch

OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
OUTER_CORNERS = (61, 291)
INNER_LIP_MIDLINE = (13, 14)
OUTER_EYE_CORNERS = (33, 263)
INNER_CORNERS = (78, 308)

# The three middle pairs of the inner contours (around the philtrum line): where the gap of a
# spoken vowel or a bilabial closure is largest and least affected by how wide the mouth is.
_APERTURE_PAIRS = slice(4, 7)


def lip_aperture(meshes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Mean vertical gap between the middle of the inner lip contours, [...] (canonical units)."""
    meshes = torch.as_tensor(meshes)
    upper = meshes[..., list(INNER_UPPER[_APERTURE_PAIRS]), 1]
    lower = meshes[..., list(INNER_LOWER[_APERTURE_PAIRS]), 1]
    return (upper - lower).mean(-1)


def mouth_width(meshes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Distance between the outer mouth corners, [...] (canonical units)."""
    meshes = torch.as_tensor(meshes)
    return torch.linalg.vector_norm(meshes[..., OUTER_CORNERS[1], :] - meshes[..., OUTER_CORNERS[0], :], dim=-1)


def aperture_iod(points: np.ndarray) -> np.ndarray:
    """Inner-lip aperture [T] in inter-ocular distances of landmarks or meshes [T,468,≥2]
    (pixels or canonical units alike). Frames whose eye corners coincide (no face) give NaN."""
    points = np.asarray(points, dtype=np.float64)
    upper, lower = INNER_LIP_MIDLINE
    right, left = OUTER_EYE_CORNERS
    gap = np.linalg.norm(points[:, upper, :2] - points[:, lower, :2], axis=-1)
    eyes = np.linalg.norm(points[:, right, :2] - points[:, left, :2], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(eyes > 0, gap / eyes, np.nan)
