"""Moving the photo's mouth with exact meshes: the tracked mesh of the photo, the viseme rig,
and the mesh-warp renderer.

The photo is tracked once (the bundled face landmark network, on the photo upscaled so the
face is large for it). A frame's mesh is the photo's canonical mesh plus a displacement ΔM
(the synthetic clips take the viseme rig's: its closed-lip rest plus the speech movement),
posed back with the photo's own pose; the warp moves the photo from the tracked to the new
mesh and fills the mouth from the photo's own (parted, smiling) mouth, with a dark cavity
where it opens wider. The mesh of every frame is therefore known exactly, in photo and in
frame pixels.
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
_WINDOW_MARGIN = 2  # pixels: bilinear sampling reads one beyond a triangle's edge


@dataclass(frozen=True, eq=False)  # array fields
class PhotoFace:
    """The bundled photo's tracked face, in asset pixels: landmarks [468,3], its pose and its
    pose-free canonical mesh [468,3]."""

    landmarks: np.ndarray
    pose: Pose
    canonical: np.ndarray


def jaw_meshes(template: np.ndarray, openings: np.ndarray) -> np.ndarray:
    """Canonical meshes [T,468,3]: the viseme rig's closed-lip rest of `template` [468,3] with
    only the jaw moving, opened by `openings` [T] (0 closed, 1 a wide "aa"): the simplest
    exact driving mesh for checks of a renderer."""
    from ..mouth.articulation import ARTICULATION_PARAMETERS
    from ..mouth.viseme_rig import VisemeRig

    rig = VisemeRig(template)
    parameters = np.zeros((len(openings), len(ARTICULATION_PARAMETERS)), np.float32)
    parameters[:, ARTICULATION_PARAMETERS.index("jaw")] = openings
    return (rig.rest + rig.displacements(parameters)).numpy()


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
