"""Opening the photo's mouth with exact meshes: the tracked mesh of the photo, a jaw that turns
about its hinge, and the mesh-warp renderer.

The photo is tracked once (the bundled face landmark network, on the photo upscaled so the
face is large for it); its canonical mesh is the clip's neutral face. A frame's mesh is that
mesh plus a displacement ΔM (jaw_open_delta from the speech envelope, or any [468,3] ΔM a
caller supplies, e.g. from a viseme rig), posed back with the photo's own pose; the warp moves
the photo from the tracked to the new mesh and fills the mouth from the photo's own (slightly
open, smiling) mouth, with a dark cavity where it opens wider. The mesh of every frame is
therefore known exactly, in photo and in frame pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..face import topology
from ..face.canonical import Pose, fit_pose, from_canonical, to_canonical
from ..render.mesh_warp import MouthMemory, ring_vertices, warp_faces, warp_triangles

# The photo is tracked at this many times its asset size (288 px): the landmark network
# wants a face of a few hundred pixels.
_TRACKING_UPSCALE = 2
# Jaw hinge in canonical units (x is the axis): level with the ear's root, behind the face.
_JAW_PIVOT_YZ = (0.0, -2.5)
# Jaw rotation at opening 1: about 1.4 units (≈ cm) of extra lip gap, a wide open vowel.
MAX_JAW_ANGLE = 0.16
# Vertical band (canonical units) over which the jaw's share falls from lower to upper lip,
# widening sideways beyond the mouth corners so the cheeks stretch instead of shearing.
_LIP_BAND = 0.25
_CHEEK_BAND_PER_UNIT = 0.8
_MOUTH_CORNER_X = 2.4
_INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_WINDOW_MARGIN = 2  # pixels: bilinear sampling reads one beyond a triangle's edge


@dataclass(frozen=True, eq=False)  # array fields
class PhotoFace:
    """The bundled photo's tracked face, in asset pixels: landmarks [468,3], its pose and its
    pose-free canonical mesh [468,3]."""

    landmarks: np.ndarray
    pose: Pose
    canonical: np.ndarray


@functools.cache
def photo_face() -> PhotoFace:
    """Tracks the bundled photo once per process."""
    from PIL import Image

    from ..face import FaceTracker
    from .portrait import load_portrait

    photo = load_portrait()
    side = photo.shape[0] * _TRACKING_UPSCALE
    large = np.asarray(Image.fromarray(photo).resize((side, side), Image.Resampling.LANCZOS))
    observation = FaceTracker("cpu").detect(large)
    if observation is None:  # the bundled photo is a clear frontal face; this is a broken install
        raise RuntimeError("the face tracker finds no face in the bundled portrait; reinstall the package")
    landmarks = torch.from_numpy(observation.landmarks / _TRACKING_UPSCALE)[None]
    pose = fit_pose(landmarks, torch.tensor(topology.template_vertices()), torch.tensor(topology.rigid_weights()))
    canonical = to_canonical(landmarks, pose)[0].numpy()
    return PhotoFace(landmarks[0].numpy(), pose.numpy(), canonical)


def _jaw_share(mesh: np.ndarray) -> np.ndarray:
    """[468] how much of the jaw's turn each vertex of `mesh` takes: 1 below the lip line (lower
    lip, chin, jaw), 0 above it (upper lip and up), smooth in between."""
    x, y = mesh[:, 0], mesh[:, 1]

    def contour_height(ids):
        points = mesh[list(ids)]
        order = np.argsort(points[:, 0])
        return np.interp(x, points[order, 0], points[order, 1])

    lip_line = 0.5 * (contour_height(_INNER_UPPER_LIP) + contour_height(_INNER_LOWER_LIP))
    band = _LIP_BAND + _CHEEK_BAND_PER_UNIT * np.maximum(0.0, np.abs(x) - _MOUTH_CORNER_X)
    share = np.clip((lip_line - y) / band + 0.5, 0, 1)
    return share * share * (3 - 2 * share)


def jaw_open_delta(mesh: np.ndarray, openings: np.ndarray) -> np.ndarray:
    """ΔM [T,468,3] that opens the jaw of canonical `mesh` [468,3] by `openings` [T] (0 rest,
    1 wide open): the jaw turns down and back about its hinge, the upper face stays."""
    mesh = np.asarray(mesh, dtype=np.float64)
    angles = np.asarray(openings, dtype=np.float64)[:, None] * MAX_JAW_ANGLE * _jaw_share(mesh)[None]
    dy, dz = mesh[:, 1] - _JAW_PIVOT_YZ[0], mesh[:, 2] - _JAW_PIVOT_YZ[1]
    cos, sin = np.cos(angles), np.sin(angles)
    delta = np.zeros(angles.shape + (3,))
    delta[..., 1] = dy * cos - dz * sin - dy
    delta[..., 2] = dy * sin + dz * cos - dz
    return delta.astype(np.float32)


class PortraitMouth:
    """Warps the mouth of the photo scaled by `scale` from the asset: `apply(portrait, ΔM)`."""

    def __init__(self, scale: float, portrait_shape: tuple[int, int]):
        face = photo_face()
        self.scale = scale
        self.canonical = face.canonical
        self._pose = face.pose
        self._tracked = torch.from_numpy(face.landmarks * scale)
        self._window = _moving_window(self._tracked, portrait_shape)

    def landmarks(self, deltas: np.ndarray) -> np.ndarray:
        """[T,468,3] the photo's landmarks (scaled-photo pixels) for displacements ΔM [T,468,3]."""
        meshes = torch.from_numpy(np.asarray(self.canonical + deltas, dtype=np.float32))
        return (from_canonical(meshes, self._pose) * self.scale).numpy()

    def apply(self, portrait: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Copies of `portrait` (uint8 [H,W,C], RGB or RGBA) warped from the tracked landmarks
        to each of `landmarks` [T,468,3] (scaled-photo pixels), [T,H,W,C]."""
        x0, y0, x1, y1 = self._window
        offset = torch.tensor([x0, y0, 0.0])
        region = torch.from_numpy(np.ascontiguousarray(portrait[y0:y1, x0:x1, :3])).permute(2, 0, 1)[None]
        region = region.to(torch.float32) / 127.5 - 1
        tracked = (self._tracked - offset)[None]
        memory = MouthMemory(region, tracked)
        new = torch.from_numpy(np.asarray(landmarks, dtype=np.float32)) - offset
        warped, _ = warp_faces(region.expand(len(new), -1, -1, -1), tracked.expand(len(new), -1, -1), new, memory)
        result = np.repeat(portrait[None], len(new), axis=0)
        result[:, y0:y1, x0:x1, :3] = ((warped + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return result


def _moving_window(tracked: torch.Tensor, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (pixels) of the part of a (height, width) photo the warp can change: its
    triangles (the ring's below the jaw included) at rest, plus a margin."""
    triangles, _ = warp_triangles("mouth")
    points = torch.cat([tracked[:, :2], ring_vertices(tracked[None])[0, :, :2]])
    touched = points[torch.from_numpy(np.unique(triangles))]
    low = (touched.amin(0).floor() - _WINDOW_MARGIN).clamp(min=0)
    high = torch.minimum(touched.amax(0).ceil() + _WINDOW_MARGIN, torch.tensor([shape[1], shape[0]], dtype=torch.float32))
    return int(low[0]), int(low[1]), int(high[0]), int(high[1])
