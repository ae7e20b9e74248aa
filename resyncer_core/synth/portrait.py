"""The bundled face photo and where its features are.

A real photograph (NASA's public-domain portrait of Eileen Collins, see assets/NOTICE) rather
than a drawn face, so that real face detectors and landmark networks find a face in the
synthetic clips. The feature positions below were measured by hand on the 288x288 asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

ASSET_NAME = "astronaut_face.png"


@dataclass(frozen=True)
class FaceLayout:
    """Feature positions in asset pixels (x right, y down); "left" is image left."""

    left_eye: tuple[float, float] = (122.5, 102.0)
    right_eye: tuple[float, float] = (165.0, 103.0)
    nose_tip: tuple[float, float] = (142.5, 128.0)
    mouth_center: tuple[float, float] = (142.5, 146.0)
    chin: tuple[float, float] = (145.0, 177.5)
    mouth_half_width: float = 21.0
    lip_line_y: float = 147.0  # between the upper and lower teeth of the smile
    hair_top_y: float = 15.0
    face_box: tuple[float, float, float, float] = (100.0, 80.0, 188.0, 178.0)  # x0, y0, x1, y1: brows to chin

    @property
    def head_height(self) -> float:
        """Hair top to chin: the size the clip scales to a fraction of the frame height."""
        return self.chin[1] - self.hair_top_y

    def keypoints(self) -> np.ndarray:
        """[5, 2] float32: left eye, right eye, nose tip, mouth centre, chin."""
        return np.array([self.left_eye, self.right_eye, self.nose_tip, self.mouth_center, self.chin], dtype=np.float32)


KEYPOINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_center", "chin")
FACE_LAYOUT = FaceLayout()


def load_portrait() -> np.ndarray:
    """The face photo as uint8 [288, 288, 3] RGB."""
    with resources.files(__package__).joinpath("assets", ASSET_NAME).open("rb") as file:
        return np.asarray(Image.open(file).convert("RGB"))


def vignette_alpha(height: int, width: int, feather: float) -> np.ndarray:
    """float32 [H, W] in 0..1: an ellipse filling the image with a soft edge `feather` (a
    fraction of the radius) wide, so the photo's own background and the flag and shuttle at
    its borders fade into the clip's background instead of showing a rectangle."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((x + 0.5) / width * 2 - 1, (y + 0.5) / height * 2 - 1)
    return np.clip((1 - radius) / feather, 0, 1)
