"""Synthetic talking-head clips made from the bundled face photo.

Frame t shows the portrait (feathered into a gradient background) with its mouth shaped by the
viseme rig for the speech plan's phones at t (synth.mouth: the photo's tracked mesh, the rig,
the mesh warp) and the whole head moved by a smooth seeded pose at t. Every frame
is a pure function of (seed, motion, size, fps, t): clips are reproducible, any range of
frames can be rendered on its own, and a 60 s 720p clip streams in chunks.

The returned `SyntheticClipInfo` is ground truth for tests: mouth opening, head pose, five
keypoints, a face box and the exact 468-vertex mesh per frame (canonical, and in frame pixels).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from ..errors import ResyncerInputError
from ..face.lips import lip_aperture
from ..video.frame_rate import FrameRate, as_frame_rate
from ..video.frame_size import as_frame_size
from .head_motion import HeadMotion
from .mouth import PortraitMouth
from .portrait import FACE_LAYOUT, KEYPOINT_NAMES, load_portrait, vignette_alpha
from .speech_plan import SpeechPlan
from ..mouth.articulation import ARTICULATION_PARAMETERS
from ..mouth.viseme_rig import SpeakingStyle, VisemeRig, articulation_curves

DEFAULT_SIZE = (720, 1280)
DEFAULT_CHUNK_SIZE = 32
_MIN_SIDE = 32  # below this the mouth region shrinks to a few pixels
# Hair-top-to-chin height as a fraction of the frame height: a head-and-shoulders framing
# in which the face is large enough for short-range face detectors.
_HEAD_HEIGHT_FRACTION = 0.5
_HEAD_CENTER = (0.5, 0.45)  # fractions of width and height where the head's middle rests
# The studio backdrop of the photo continued: its own tone at the top, darker below, so the
# feathered edge of the portrait is hard to see.
_BACKGROUND_TOP_RGB = np.array([202.0, 193.0, 189.0])
_BACKGROUND_BOTTOM_RGB = np.array([172.0, 164.0, 162.0])
# The photo's speaker articulates clearly (the rig's reference speaker, a third more movement),
# so the mouth reads at small frame sizes.
SPEAKING_STYLE = SpeakingStyle(amplitude=1.3)
# Mesh vertices the moving keypoints follow: the inner lips' mid-line (mouth centre), the chin.
_MOUTH_CENTRE_VERTICES = [13, 14]
_CHIN_VERTEX = 152


@dataclass(frozen=True, eq=False)  # array fields: no meaningful == or hash
class SyntheticClipInfo:
    """Ground truth of a synthetic clip; per-frame arrays have the frame count as first axis."""

    frame_rate: Fraction
    size: tuple[int, int]  # (height, width)
    seed: int
    motion: str
    plan: SpeechPlan
    mouth_opening: np.ndarray  # float32 [T] in 0..1: the shown mesh's lip aperture over its widest "aa"
    head_pose: np.ndarray  # float32 [T, 4]: rotation (deg, counter-clockwise), scale, shift x, shift y (pixels)
    # float32 [T, 5, 2] x, y in frame pixels, named by KEYPOINT_NAMES; hand-measured on the photo,
    # so within a few pixels of where a landmark network puts its own (differently defined) points.
    keypoints: np.ndarray
    face_box: np.ndarray  # float32 [T, 4] x0, y0, x1, y1 in frame pixels, brows to chin (may cross the frame edge)
    meshes: np.ndarray  # float32 [T, 468, 3] the exact canonical mesh shown (photo's neutral mesh + ΔM)
    landmarks: np.ndarray  # float32 [T, 468, 3] that mesh in frame pixels (x, y) and pixel-scaled depth (z)
    keypoint_names: tuple[str, ...] = KEYPOINT_NAMES

    @property
    def frame_count(self) -> int:
        return len(self.mouth_opening)

    @property
    def fps(self) -> float:
        return float(self.frame_rate)


class TalkingHeadRenderer:
    """Renders frames of one synthetic clip; `render(indices)` -> uint8 [n, H, W, 3]."""

    def __init__(self, frame_count: int, fps: FrameRate = 25, size: tuple[int, int] = DEFAULT_SIZE,
                 seed: int = 0, motion: str = "gentle", plan: SpeechPlan | None = None):
        if frame_count < 1:
            raise ResyncerInputError(f"frame_count {frame_count} must be at least 1; ask for a positive number of frames")
        height, width = as_frame_size(size, minimum=_MIN_SIDE)
        self.frame_count, self.size, self.seed, self.motion = frame_count, (height, width), seed, motion
        self.frame_rate = as_frame_rate(fps)
        self.plan = plan if plan is not None else SpeechPlan.generate(float(frame_count / self.frame_rate), seed)
        self._head_motion = HeadMotion(motion, seed)

        photo = load_portrait()
        side = round(photo.shape[0] * _HEAD_HEIGHT_FRACTION * height / FACE_LAYOUT.head_height)
        self._scale = side / photo.shape[0]
        scaled = np.asarray(Image.fromarray(photo).resize((side, side), Image.Resampling.LANCZOS))
        alpha = np.rint(vignette_alpha(side, side, feather=0.25) * 255).astype(np.uint8)
        self._portrait = np.dstack([scaled, alpha])
        self._mouth = PortraitMouth(self._scale, (side, side))
        self._rig = VisemeRig(self._mouth.canonical)
        self._phones = self.plan.phone_timings()
        # ΔM from the photo's own mesh to the rig's closed-lip rest, where speech starts.
        self._to_rest = (self._rig.rest.numpy() - self._mouth.canonical)[None]
        wide_open = np.zeros((1, len(ARTICULATION_PARAMETERS)), dtype=np.float32)
        wide_open[0, ARTICULATION_PARAMETERS.index("jaw")] = SPEAKING_STYLE.amplitude
        self._full_aperture = float(lip_aperture(self._rig.rest + self._rig.displacements(wide_open))[0])
        self._pivot = np.array([FACE_LAYOUT.nose_tip[0], (FACE_LAYOUT.hair_top_y + FACE_LAYOUT.chin[1]) / 2]) * self._scale
        self._rest_position = np.array([_HEAD_CENTER[0] * width, _HEAD_CENTER[1] * height])
        self._background = Image.fromarray(_vertical_gradient(height, width))

    def times(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices, dtype=np.float64) / float(self.frame_rate)

    def poses(self, indices: np.ndarray) -> np.ndarray:
        """[n, 4] rotation (deg), scale, shift x, shift y (pixels)."""
        pose = self._head_motion.pose(self.times(indices))
        pose[:, 2:] *= self.size[0]
        return pose

    def deltas(self, indices: np.ndarray) -> np.ndarray:
        """ΔM [n,468,3] of frames `indices` from the photo's mesh: the rig's mouth for the plan's phones."""
        curves = articulation_curves(self._phones, self.times(indices), SPEAKING_STYLE)
        return self._to_rest + self._rig.displacements(curves, SPEAKING_STYLE).numpy()

    def render(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        portraits = self._mouth.apply(self._portrait, self._mouth.landmarks(self.deltas(indices)))
        frames = np.empty((len(indices), *self.size, 3), dtype=np.uint8)
        for i, (portrait, pose) in enumerate(zip(portraits, self.poses(indices), strict=True)):
            frames[i] = self._render_one(portrait, pose)
        return frames

    def info(self) -> SyntheticClipInfo:
        indices = np.arange(self.frame_count)
        poses = self.poses(indices)
        deltas = self.deltas(indices)
        meshes = self._mouth.canonical + deltas
        openings = np.clip(lip_aperture(meshes).numpy() / self._full_aperture, 0, 1)
        landmarks = self._mouth.landmarks(deltas)  # scaled-photo pixels
        rest = self._mouth.landmarks(np.zeros_like(deltas[:1]))[0]
        keypoints = np.repeat(FACE_LAYOUT.keypoints()[None] * self._scale, len(indices), axis=0)
        mouth_shift = (landmarks[:, _MOUTH_CENTRE_VERTICES] - rest[_MOUTH_CENTRE_VERTICES]).mean(1)[:, :2]
        chin_shift = (landmarks[:, _CHIN_VERTEX] - rest[_CHIN_VERTEX])[:, :2]
        keypoints[:, 3] += mouth_shift
        keypoints[:, 4] += chin_shift
        x0, y0, x1, y1 = np.array(FACE_LAYOUT.face_box) * self._scale
        corners = np.repeat(np.array([[[x0, y0], [x1, y0], [x0, y1], [x1, y1]]]), len(indices), axis=0)
        corners[:, 2:, 1] += chin_shift[:, None, 1]  # the bottom edge is the chin
        keypoints = np.stack([self._map_points(points, pose) for points, pose in zip(keypoints, poses, strict=True)])
        corners = np.stack([self._map_points(points, pose) for points, pose in zip(corners, poses, strict=True)])
        face_box = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
        frame_landmarks = np.stack([
            np.concatenate([self._map_points(points[:, :2], pose), points[:, 2:] * pose[1]], axis=1)
            for points, pose in zip(landmarks, poses, strict=True)])
        return SyntheticClipInfo(self.frame_rate, self.size, self.seed, self.motion, self.plan,
                                 openings.astype(np.float32), poses.astype(np.float32),
                                 keypoints.astype(np.float32), face_box.astype(np.float32),
                                 meshes.astype(np.float32), frame_landmarks.astype(np.float32))

    def _render_one(self, portrait: np.ndarray, pose: np.ndarray) -> np.ndarray:
        portrait = Image.fromarray(portrait)
        matrix, offset = self._portrait_to_frame(pose)
        # Warp only the frame box the portrait lands in: the full frame would be 2-3x the work.
        side = self._portrait.shape[0]
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]]) @ matrix.T + offset
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, None)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), (self.size[1], self.size[0]))
        frame = self._background.copy()
        if x1 > x0 and y1 > y0:
            inverse = np.linalg.inv(matrix)
            box_offset = offset - (x0, y0)
            # PIL's AFFINE data is the inverse map, box pixel -> portrait pixel.
            coefficients = (*inverse[0], -inverse[0] @ box_offset, *inverse[1], -inverse[1] @ box_offset)
            layer = portrait.transform((x1 - x0, y1 - y0), Image.Transform.AFFINE, coefficients,
                                       resample=Image.Resampling.BILINEAR)
            frame.paste(layer, (x0, y0), layer)  # alpha blend over the opaque background
        return np.asarray(frame)

    def _portrait_to_frame(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Portrait->frame map q = A p + b for this pose: rotate and scale about the pivot,
        which lands at the rest position plus the shift."""
        angle = np.deg2rad(pose[0])
        # Counter-clockwise on screen with y pointing down.
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        matrix = pose[1] * rotation
        offset = self._rest_position + pose[2:4] - matrix @ self._pivot
        return matrix, offset

    def _map_points(self, points: np.ndarray, pose: np.ndarray) -> np.ndarray:
        matrix, offset = self._portrait_to_frame(pose)
        return points @ matrix.T + offset


def iter_synthetic_talking_clip(frame_count: int, fps: FrameRate = 25, size: tuple[int, int] = DEFAULT_SIZE,
                                seed: int = 0, motion: str = "gentle", plan: SpeechPlan | None = None,
                                chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[np.ndarray]:
    """The frames of `synthetic_talking_clip` as uint8 [n, H, W, 3] chunks, one in memory at a time."""
    if chunk_size < 1:
        raise ResyncerInputError(f"chunk_size {chunk_size} must be at least 1; pass a positive number of frames")
    renderer = TalkingHeadRenderer(frame_count, fps, size, seed, motion, plan)
    for start in range(0, frame_count, chunk_size):
        yield renderer.render(np.arange(start, min(start + chunk_size, frame_count)))


def synthetic_talking_clip(frame_count: int, fps: FrameRate = 25, size: tuple[int, int] = DEFAULT_SIZE,
                           seed: int = 0, motion: str = "gentle",
                           plan: SpeechPlan | None = None) -> tuple[np.ndarray, SyntheticClipInfo]:
    """A whole clip, uint8 [T, H, W, 3] RGB, and its ground truth. size is (height, width);
    motion is "still", "gentle" or "lively". The mouth follows `plan`, by default the plan
    `synthetic_speech` makes from the same seed, so the two are in sync."""
    renderer = TalkingHeadRenderer(frame_count, fps, size, seed, motion, plan)
    return renderer.render(np.arange(frame_count)), renderer.info()


def _vertical_gradient(height: int, width: int) -> np.ndarray:
    weight = np.linspace(0, 1, height)[:, None, None]
    column = _BACKGROUND_TOP_RGB * (1 - weight) + _BACKGROUND_BOTTOM_RGB * weight
    return np.rint(np.broadcast_to(column, (height, width, 3))).astype(np.uint8)
