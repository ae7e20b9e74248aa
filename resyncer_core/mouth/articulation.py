"""Articulation parameters as displacement fields on the 468-vertex face mesh.

Six parameters, each 0 at rest and about 1 at its full speech movement:
- jaw: the mandible rotates about a hinge in front of the ears; everything below the lip line
  (lower lip, chin, jaw line) follows with a weight that fades across the lip line and the cheeks;
- round: lips pushed forward and drawn towards the mouth centre (oo, w);
- spread: mouth corners pulled outwards and back, lips thinned (ee, s);
- closure: the inner lip contours brought together wherever they are (p, b, m), whatever the
  jaw is doing: the gap left by the other parameters is measured and closed, half by each lip;
- tuck: the lower lip raised and drawn back under the upper teeth (f, v);
- raise_upper: the upper lip lifted (sh, ch; shows the teeth).

Every weight is computed from the mesh's own geometry: where each vertex lies relative to the
inner lip contours (the lip line) and to an ellipse around the mouth, so the rig works on any
468-vertex mesh in canonical axes (x to the subject's left, y up, z towards the viewer,
units about centimetres), e.g. a synthetic speaker's template with its own identity shape.

The rig's rest pose is the mesh with its lips closed (MediaPipe's canonical model has them
slightly parted): a person's neutral template is the frame with the least mouth opening, so
ΔM = 0 means closed lips and a speech displacement opens them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..face import lips

ARTICULATION_PARAMETERS = ("jaw", "round", "spread", "closure", "tuck", "raise_upper")

# Jaw: rotation at jaw = 1 and the hinge (temporomandibular joint: level with the nose base,
# behind the face surface).
_JAW_MAX_DEGREES = 11.0
_JAW_HINGE_BELOW_NOSE_BOTTOM = 0.0
_JAW_HINGE_Z = -2.5
_JAW_BAND = 0.45  # the jaw weight goes from 0 to 1 across this height around the lip line
_JAW_LINE_RISE = 0.55  # beside the mouth the mandible's upper edge rises towards the ear (per unit of x)
# Lip region: 1 inside an ellipse around the mouth, fading to 0 at _LIP_FADE times its radii.
_LIP_ELLIPSE_MARGIN_X = 0.45  # beyond the outer mouth corners
_LIP_ELLIPSE_HALF_HEIGHT = 1.3
_LIP_FADE = 1.8
_LIP_SIDE_BAND = 0.25  # height over which a vertex changes from lower-lip to upper-lip side
# Movement sizes at parameter 1.
_ROUND_INWARD = 0.36  # fraction of the distance to the mouth centre line
_ROUND_FORWARD = 0.55
_SPREAD_OUTWARD = 0.2
_SPREAD_BACK = 0.3
_SPREAD_THINNING = 0.15  # fraction of the height above/below the lip line
_TUCK_UP = 0.3
_TUCK_BACK = 0.5
_RAISE_UP = 0.32


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class ArticulationRig:
    """Displacement fields of one mesh; `deform` maps parameters [T, 6] to meshes [T, V, 3]."""

    def __init__(self, template: np.ndarray | torch.Tensor):
        base = np.array(template.detach().cpu() if isinstance(template, torch.Tensor) else template, dtype=np.float64)
        upper, lower = list(lips.INNER_UPPER), list(lips.INNER_LOWER)
        pair_x = 0.5 * (base[upper, 0] + base[lower, 0])
        pair_mid = 0.5 * (base[upper, 1] + base[lower, 1])
        x, y = base[:, 0], base[:, 1]
        centre_x = 0.5 * (pair_x[0] + pair_x[-1])
        corner_half_width = 0.5 * (pair_x[-1] - pair_x[0])
        lateral = np.abs(x - centre_x)
        beyond_corner = np.clip(lateral - corner_half_width, 0.0, None)
        lip_line = np.interp(x, pair_x, pair_mid) + _JAW_LINE_RISE * beyond_corner
        below_line = lip_line - y

        # Jaw: 0 above the lip line, 1 below it; the band widens beside the mouth so the cheeks stretch.
        band = _JAW_BAND * (1.0 + 1.5 * beyond_corner)
        jaw_weight = _smoothstep(0.5 + below_line / band)
        nose_bottom_y = base[2, 1]
        hinge = np.array([centre_x, nose_bottom_y - _JAW_HINGE_BELOW_NOSE_BOTTOM, _JAW_HINGE_Z])

        # Lip region: an ellipse around the mouth.
        outer = base[list(lips.OUTER_CORNERS)]
        radius_x = 0.5 * abs(outer[1, 0] - outer[0, 0]) + _LIP_ELLIPSE_MARGIN_X
        centre_y = float(np.interp(centre_x, pair_x, pair_mid))
        ellipse = np.sqrt(((x - centre_x) / radius_x) ** 2 + ((y - centre_y) / _LIP_ELLIPSE_HALF_HEIGHT) ** 2)
        lip_weight = 1.0 - _smoothstep((ellipse - 1.0) / (_LIP_FADE - 1.0))
        upper_side = _smoothstep(0.5 - below_line / _LIP_SIDE_BAND)
        upper_side[upper[1:-1]], upper_side[lower[1:-1]] = 1.0, 0.0
        upper_side[[upper[0], upper[-1]]] = 0.5

        # Each vertex reads the lip gap of the contour pair at its x (contour vertices their own pair).
        gap_weights = np.zeros((len(base), len(pair_x)))
        order = np.argsort(pair_x)
        clipped = np.clip(x, pair_x[order[0]], pair_x[order[-1]])
        position = np.interp(clipped, pair_x[order], np.arange(len(pair_x)))
        left = np.floor(position).astype(np.int64)
        right = np.minimum(left + 1, len(pair_x) - 1)
        fraction = position - left
        rows = np.arange(len(base))
        np.add.at(gap_weights, (rows, order[left]), 1.0 - fraction)
        np.add.at(gap_weights, (rows, order[right]), fraction)
        for index, (u, lo) in enumerate(zip(upper, lower)):
            gap_weights[[u, lo]] = 0.0
            gap_weights[[u, lo], index] = 1.0

        offset_x = x - centre_x
        corner_emphasis = np.clip(lateral / corner_half_width, 0.0, 1.5) ** 2
        fields = np.zeros((len(ARTICULATION_PARAMETERS), len(base), 3))
        index = ARTICULATION_PARAMETERS.index
        fields[index("round"), :, 0] = -_ROUND_INWARD * offset_x * lip_weight
        fields[index("round"), :, 2] = _ROUND_FORWARD * lip_weight
        fields[index("spread"), :, 0] = _SPREAD_OUTWARD * offset_x * lip_weight
        fields[index("spread"), :, 1] = _SPREAD_THINNING * below_line * lip_weight
        fields[index("spread"), :, 2] = -_SPREAD_BACK * corner_emphasis * lip_weight
        lower_lip = lip_weight * (1.0 - upper_side)
        fields[index("tuck"), :, 1] = _TUCK_UP * lower_lip
        fields[index("tuck"), :, 2] = -_TUCK_BACK * lower_lip
        fields[index("raise_upper"), :, 1] = _RAISE_UP * lip_weight * upper_side

        as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self._template = as_tensor(base)
        self._fields = as_tensor(fields)  # linear parameters; jaw and closure rows stay zero
        self._jaw_weight = as_tensor(jaw_weight)
        self._hinge = as_tensor(hinge)
        self._closure_weight = as_tensor(lip_weight * (2.0 * upper_side - 1.0))  # +1 upper lip, -1 lower lip
        self._gap_weights = as_tensor(gap_weights)
        self._upper, self._lower = upper, lower
        self.rest = self._close_lips(self._template[None], torch.ones(1))[0]

    def deform(self, parameters: torch.Tensor) -> torch.Tensor:
        """Meshes [T, V, 3] for articulation parameters [T, 6] (order ARTICULATION_PARAMETERS),
        starting from the closed-lip rest pose; float32 on the parameters' device."""
        parameters = torch.as_tensor(parameters, dtype=torch.float32)
        device = parameters.device
        rest = self.rest.to(device)
        meshes = rest + torch.einsum("tp,pvc->tvc", parameters, self._fields.to(device))
        meshes = self._open_jaw(meshes, parameters[:, ARTICULATION_PARAMETERS.index("jaw")])
        return self._close_lips(meshes, parameters[:, ARTICULATION_PARAMETERS.index("closure")])

    def _open_jaw(self, meshes: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        angle = jaw * math.radians(_JAW_MAX_DEGREES)
        cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        hinge = self._hinge.to(meshes.device)
        y, z = meshes[..., 1] - hinge[1], meshes[..., 2] - hinge[2]
        rotated_y = y * cos - z * sin
        rotated_z = y * sin + z * cos
        weight = self._jaw_weight.to(meshes.device)
        shift = torch.stack([torch.zeros_like(y), rotated_y - y, rotated_z - z], dim=-1)
        return meshes + weight[None, :, None] * shift

    def _close_lips(self, meshes: torch.Tensor, closure: torch.Tensor) -> torch.Tensor:
        """Move the lips towards each other by `closure` [T] times half the inner-contour gap."""
        gaps = (meshes[:, self._upper, 1] - meshes[:, self._lower, 1]).clamp(min=0.0)  # [T, pairs]
        vertex_gap = gaps @ self._gap_weights.to(meshes.device).T  # [T, V]
        shift_y = -0.5 * closure[:, None] * vertex_gap * self._closure_weight.to(meshes.device)
        return meshes + torch.stack([torch.zeros_like(shift_y), shift_y, torch.zeros_like(shift_y)], dim=-1)
