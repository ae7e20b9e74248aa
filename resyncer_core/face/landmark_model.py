"""MediaPipe's 468-point face-mesh landmark network (192×192 input) ported to PyTorch.

The network mirrors `face_landmark.tflite` (the model FaceMesh runs with refine_landmarks off);
its weights are converted by tools/convert_mediapipe.py into weights/face_landmark.safetensors.
The surrounding steps follow MediaPipe's face_landmark graphs:

- ROI from a detection: the detector's box centre, rotated so the eye keypoints (0 → 1) are
  level, side = 1.5 × the box's longer side;
- ROI from landmarks (tracking): the landmarks' bounding-box centre, rotated so the outer eye
  corners (33 → 263) are level, side = 1.5 × the bounding box's longer side;
- the ROI is cropped to 192×192 (edge pixels replicated outside the frame), values in 0..1;
- outputs: 468 × (x, y, z) in crop pixels and a face-presence logit (sigmoid → probability;
  MediaPipe drops the face below 0.5);
- landmarks are mapped back through the ROI to image pixels. MediaPipe scales z by the ROI
  width like x, so here z is in image pixels too (same scale as x, smaller = nearer the camera,
  roughly zero at the face's centre plane).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .blaze_blocks import BlazeBlock, SameConv2d
from .roi_warp import SquareRois, crop_square_rois

WEIGHTS_PATH = Path(__file__).parent / "weights" / "face_landmark.safetensors"

INPUT_SIZE = 192
NUM_LANDMARKS = 468
ROI_SCALE = 1.5
RIGHT_EYE_OUTER_CORNER = 33  # the subject's right eye: image left on a frontal face
LEFT_EYE_OUTER_CORNER = 263


class _OutputHead(nn.Module):
    """A branch from the 6×6×128 trunk: BlazeBlocks down to 3×3, a 128→32 projection, one more
    block, and a 3×3 valid convolution to a single output vector."""

    def __init__(self, wide_blocks: int, outputs: int):
        super().__init__()
        self.blocks = nn.Sequential(BlazeBlock(128, 128, 2, "prelu"),
                                    *[BlazeBlock(128, 128, 1, "prelu") for _ in range(wide_blocks - 1)])
        self.projection = nn.Conv2d(128, 32, 1)
        self.projection_activation = nn.PReLU(32)
        self.refine = BlazeBlock(32, 32, 1, "prelu")
        self.output = nn.Conv2d(32, outputs, 3, stride=3)  # as in the graph; on a 3×3 map, one output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection_activation(self.projection(self.blocks(x)))
        return self.output(self.refine(x)).flatten(1)


class FaceMeshNetwork(nn.Module):
    """[B, 3, 192, 192] RGB in 0..1 → (landmarks [B, 468, 3] in crop pixels, presence logits [B])."""

    def __init__(self):
        super().__init__()
        self.stem = SameConv2d(3, 16, 3, stride=2)
        self.stem_activation = nn.PReLU(16)
        widths = [(16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 32, 1), (32, 64, 2), (64, 64, 1),
                  (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 2), (128, 128, 1),
                  (128, 128, 1)]
        self.trunk = nn.Sequential(*[BlazeBlock(i, o, s, "prelu") for i, o, s in widths])
        self.landmark_head = _OutputHead(wide_blocks=3, outputs=NUM_LANDMARKS * 3)
        self.presence_head = _OutputHead(wide_blocks=1, outputs=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(self.stem_activation(self.stem(x)))
        landmarks = self.landmark_head(features).reshape(-1, NUM_LANDMARKS, 3)
        return landmarks, self.presence_head(features)[:, 0]


def _square_roi(box_min: torch.Tensor, box_max: torch.Tensor, eye_from: torch.Tensor,
                eye_to: torch.Tensor) -> SquareRois:
    center = (box_min + box_max) / 2
    size = (box_max - box_min).amax(dim=-1) * ROI_SCALE
    eye_vector = eye_to - eye_from
    return SquareRois(center, size, torch.atan2(eye_vector[:, 1], eye_vector[:, 0]))


def roi_from_detection(boxes: torch.Tensor, keypoints: torch.Tensor) -> SquareRois:
    """boxes [B, 4] (x0, y0, x1, y1) and detector keypoints [B, 6, 2], pixels → landmark ROIs."""
    return _square_roi(boxes[:, :2], boxes[:, 2:], keypoints[:, 0], keypoints[:, 1])


def roi_from_landmarks(landmarks: torch.Tensor) -> SquareRois:
    """landmarks [B, 468, 2 or 3] in pixels → the ROIs MediaPipe tracks the next frame with."""
    xy = landmarks[..., :2]
    return _square_roi(xy.amin(dim=1), xy.amax(dim=1), xy[:, RIGHT_EYE_OUTER_CORNER], xy[:, LEFT_EYE_OUTER_CORNER])


class FaceLandmarkModel:
    """Batched face-mesh inference on ROIs; the network loads on first use."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self._network: FaceMeshNetwork | None = None

    @property
    def network(self) -> FaceMeshNetwork:
        if self._network is None:
            from .weights import load_network

            self._network = load_network(FaceMeshNetwork(), WEIGHTS_PATH, self.device)
        return self._network

    @torch.inference_mode()
    def predict(self, frames: torch.Tensor, rois: SquareRois) -> tuple[torch.Tensor, torch.Tensor]:
        """frames: uint8 [B, H, W, 3] RGB, one ROI each → (landmarks float32 [B, 468, 3] with x, y,
        z in image pixels, face-presence probability [B])."""
        pixels = crop_square_rois(frames, rois, INPUT_SIZE, border="replicate")
        raw, logits = self.network(pixels / 255.0)
        unit = raw / INPUT_SIZE
        xy = rois.to_image(unit[..., :2])
        z = unit[..., 2] * rois.size[:, None]
        return torch.cat([xy, z[..., None]], dim=-1), torch.sigmoid(logits)
