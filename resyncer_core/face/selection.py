"""Which face to follow when a frame shows several.

The rule (`FaceChoice`), applied where the tracker has to pick among fresh detections (the
first frame with a face, and whenever the followed face was lost):

    largest   the face with the biggest detection box (the default: usually the speaker)
    center    the face whose box centre is nearest the frame centre
    index N   the N-th face counted from the left edge of the frame (0 = leftmost)

Consistency across frames: between detections the tracker follows its face by that face's
own landmarks, so it never jumps. When the face is lost and faces are detected again, the
selector prefers the detection nearest to where the followed face was last seen (within one
face width), so a face briefly hidden or missed is picked up again instead of whichever face
the rule would pick among strangers; only when none is that close does the rule decide
afresh. Each pick reports how many faces the frame showed (`on_count`), so front-ends can say
"2 faces in view: edited the largest".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ResyncerInputError
from .detector import FaceDetection

FACE_RULES = ("largest", "center", "index")


@dataclass(frozen=True)
class FaceChoice:
    """A face-selection rule; `index` counts only for the "index" rule."""

    rule: str = "largest"
    index: int = 0

    def __post_init__(self) -> None:
        if self.rule not in FACE_RULES:
            raise ResyncerInputError(f"face rule {self.rule!r} is unknown; use largest, center or index N")
        if self.index < 0:
            raise ResyncerInputError(f"face index {self.index} is negative; count faces from 0 at the left")

    @classmethod
    def parse(cls, text: str | FaceChoice) -> FaceChoice:
        """From "largest", "center", "index N" (or "index:N", or a bare "N")."""
        if isinstance(text, FaceChoice):
            return text
        words = str(text).replace(":", " ").split()
        if len(words) == 1 and words[0].isdigit():
            return cls("index", int(words[0]))
        if len(words) == 2 and words[0] == "index" and words[1].lstrip("-").isdigit():
            return cls("index", int(words[1]))
        if len(words) == 1 and words[0] in ("largest", "center"):
            return cls(words[0])
        raise ResyncerInputError(f"face choice {text!r} is not understood; use largest, center or index N")

    def describe(self) -> str:
        return f"face {self.index} from the left" if self.rule == "index" else f"the {self.rule} face"


def _centers(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


class FaceSelector:
    """Picks one detection per frame by `choice`, staying with the face it followed (see the
    module docstring). One selector per tracked clip."""

    def __init__(self, choice: FaceChoice, on_count: Callable[[int], None] | None = None):
        self.choice = choice
        self.on_count = on_count
        self._last_center: np.ndarray | None = None
        self._last_width = 0.0

    def pick(self, detections: list[FaceDetection], frame_size: tuple[int, int]) -> FaceDetection | None:
        """The detection to follow in a frame of (height, width), or None when the rule names
        a face the frame does not have (index past the last face)."""
        if not detections:
            return None
        if self.on_count is not None:
            self.on_count(len(detections))
        boxes = np.stack([d.box for d in detections]).astype(np.float64)
        centers = _centers(boxes)
        if self._last_center is not None:
            distances = np.linalg.norm(centers - self._last_center, axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= max(self._last_width, 1.0):
                return detections[nearest]
        if self.choice.rule == "largest":
            chosen = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        elif self.choice.rule == "center":
            middle = np.array([frame_size[1] / 2, frame_size[0] / 2])
            chosen = int(np.argmin(np.linalg.norm(centers - middle, axis=1)))
        else:
            left_to_right = np.argsort(centers[:, 0], kind="stable")
            if self.choice.index >= len(detections):
                return None
            chosen = int(left_to_right[self.choice.index])
        return detections[chosen]

    def follow(self, landmarks: np.ndarray) -> None:
        """Remembers where the followed face is ([468, 2+] landmarks in frame pixels)."""
        points = np.asarray(landmarks)[:, :2]
        self._last_center = (points.min(0) + points.max(0)) / 2
        self._last_width = float(points[:, 0].max() - points[:, 0].min())
