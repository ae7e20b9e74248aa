"""MediaPipe's short-range face detector (BlazeFace, 128×128 input) ported to PyTorch.

The network mirrors `face_detection_short_range.tflite` layer for layer; its weights are
converted by tools/convert_mediapipe.py into weights/face_detection_short_range.safetensors.
Pre- and post-processing follow MediaPipe's face_detection_short_range graph:

- the whole frame is letterboxed into 128×128 (aspect kept, black bars), values in −1..1;
- 896 SSD anchors (16×16 cells × 2 at stride 8, 8×8 cells × 6 at stride 16, unit size);
- boxes and 6 keypoints decoded relative to the anchors (scale 128), score = sigmoid(logit);
- detections with score ≥ 0.5 merged by MediaPipe's *weighted* non-maximum suppression
  (IoU > 0.3 clusters are averaged with score weights; the cluster keeps its best score);
- coordinates mapped back through the letterbox to image pixels.

Keypoints, in MediaPipe's order: 0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right
ear tragion, 5 left ear tragion — the subject's sides, so on a frontal face keypoint 0 is on the
image's left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .blaze_blocks import BlazeBlock, SameConv2d
from .roi_warp import SquareRois, crop_square_rois

WEIGHTS_PATH = Path(__file__).parent / "weights" / "face_detection_short_range.safetensors"

INPUT_SIZE = 128
NUM_KEYPOINTS = 6
_ANCHORS_PER_CELL = {8: 2, 16: 6}  # stride → anchors per feature-map cell
_BOX_SCALE = 128.0


class BlazeFaceShortRange(nn.Module):
    """The detector network: [B, 3, 128, 128] in −1..1 → (box regressions [B, 896, 16],
    score logits [B, 896])."""

    def __init__(self):
        super().__init__()
        self.stem = SameConv2d(3, 24, 5, stride=2)
        self.stem_activation = nn.ReLU()
        widths_stride8 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2),
                          (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
        widths_stride16 = [(88, 96, 2), (96, 96, 1), (96, 96, 1), (96, 96, 1), (96, 96, 1)]
        self.backbone_stride8 = nn.Sequential(*[BlazeBlock(i, o, s) for i, o, s in widths_stride8])
        self.backbone_stride16 = nn.Sequential(*[BlazeBlock(i, o, s) for i, o, s in widths_stride16])
        self.classifier_stride8 = nn.Conv2d(88, _ANCHORS_PER_CELL[8], 1)
        self.regressor_stride8 = nn.Conv2d(88, _ANCHORS_PER_CELL[8] * 16, 1)
        self.classifier_stride16 = nn.Conv2d(96, _ANCHORS_PER_CELL[16], 1)
        self.regressor_stride16 = nn.Conv2d(96, _ANCHORS_PER_CELL[16] * 16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features8 = self.backbone_stride8(self.stem_activation(self.stem(x)))
        features16 = self.backbone_stride16(features8)
        batch = x.shape[0]

        def per_anchor(head: nn.Module, features: torch.Tensor, values: int) -> torch.Tensor:
            # NHWC flattening, as the TFLite graph's RESHAPE: anchor index = (y·W + x)·A + a.
            return head(features).permute(0, 2, 3, 1).reshape(batch, -1, values)

        regressions = torch.cat([per_anchor(self.regressor_stride8, features8, 16),
                                 per_anchor(self.regressor_stride16, features16, 16)], dim=1)
        logits = torch.cat([per_anchor(self.classifier_stride8, features8, 1),
                            per_anchor(self.classifier_stride16, features16, 1)], dim=1)
        return regressions, logits[..., 0]


def ssd_anchor_centers() -> torch.Tensor:
    """[896, 2] anchor centres (x, y) in 0..1, ordered cell row, cell column, anchor."""
    centers = []
    for stride, per_cell in _ANCHORS_PER_CELL.items():
        cells = INPUT_SIZE // stride
        grid = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells
        y, x = torch.meshgrid(grid, grid, indexing="ij")
        cell_centers = torch.stack([x, y], dim=-1).reshape(-1, 1, 2)
        centers.append(cell_centers.expand(-1, per_cell, -1).reshape(-1, 2))
    return torch.cat(centers)


@dataclass(frozen=True)
class FaceDetection:
    """One detected face in image pixels."""

    box: np.ndarray  # float32 [4]: x0, y0, x1, y1
    keypoints: np.ndarray  # float32 [6, 2]: see the module docstring for the order
    score: float  # 0..1


def _box_area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def weighted_non_max_suppression(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                                 iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: the best remaining box and every box overlapping it by
    IoU > threshold (itself included) are averaged with score weights; the merged detection
    keeps the best score. Returns (box, keypoints, score) tuples, best first."""
    order = np.argsort(-scores, kind="stable")
    merged = []
    while order.size:
        best = boxes[order[0]]
        rest = boxes[order]
        inter_w = np.clip(np.minimum(rest[:, 2], best[2]) - np.maximum(rest[:, 0], best[0]), 0, None)
        inter_h = np.clip(np.minimum(rest[:, 3], best[3]) - np.maximum(rest[:, 1], best[1]), 0, None)
        intersection = inter_w * inter_h
        union = _box_area(rest) + _box_area(best) - intersection
        iou = np.where(union > 0, intersection / np.where(union > 0, union, 1), 0)
        cluster = order[iou > iou_threshold]
        weights = scores[cluster][:, None]
        box = (boxes[cluster] * weights).sum(0) / weights.sum()
        points = (keypoints[cluster] * weights[:, :, None]).sum(0) / weights.sum()
        merged.append((box, points, float(scores[order[0]])))
        order = order[iou <= iou_threshold]
    return merged


class FaceDetector:
    """Batched short-range face detection; the network loads on first use."""

    def __init__(self, device: str | torch.device = "cpu", min_score: float = 0.5, iou_threshold: float = 0.3):
        self.device = torch.device(device)
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self._network: BlazeFaceShortRange | None = None
        self._anchors: torch.Tensor | None = None

    @property
    def network(self) -> BlazeFaceShortRange:
        if self._network is None:
            from .weights import load_network

            self._network = load_network(BlazeFaceShortRange(), WEIGHTS_PATH, self.device)
            self._anchors = ssd_anchor_centers().to(self.device)
        return self._network

    @staticmethod
    def letterbox_rois(batch: int, height: int, width: int, device: torch.device) -> SquareRois:
        """The whole frame, padded to a square around its centre (MediaPipe's keep_aspect_ratio)."""
        center = torch.tensor([[width / 2, height / 2]], device=device).expand(batch, 2)
        size = torch.full((batch,), float(max(height, width)), device=device)
        return SquareRois(center, size, torch.zeros(batch, device=device))

    @torch.inference_mode()
    def detect(self, frames: torch.Tensor) -> list[list[FaceDetection]]:
        """frames: uint8 [B, H, W, 3] RGB on this detector's device → per frame, the detections
        sorted by score (best first); an empty list where no face scores ≥ min_score."""
        network = self.network
        batch, height, width, _ = frames.shape
        rois = self.letterbox_rois(batch, height, width, frames.device)
        pixels = crop_square_rois(frames, rois, INPUT_SIZE, border="zero")
        regressions, logits = network(pixels * (2.0 / 255.0) - 1.0)
        scores = torch.sigmoid(logits.clamp(-100.0, 100.0))

        anchors = self._anchors
        centers = regressions[..., 0:2] / _BOX_SCALE + anchors
        half_size = regressions[..., 2:4] / _BOX_SCALE / 2
        boxes = torch.cat([centers - half_size, centers + half_size], dim=-1)  # unit letterbox coords
        keypoints = regressions[..., 4:].reshape(batch, -1, NUM_KEYPOINTS, 2) / _BOX_SCALE + anchors[:, None]

        # Letterbox unit coordinates → image pixels.
        side = float(max(height, width))
        origin = torch.tensor([(width - side) / 2, (height - side) / 2], device=frames.device)
        boxes = boxes * side + origin.repeat(2)
        keypoints = keypoints * side + origin

        results = []
        keep = (scores >= self.min_score).cpu().numpy()
        boxes_np, keypoints_np, scores_np = boxes.cpu().numpy(), keypoints.cpu().numpy(), scores.cpu().numpy()
        for b in range(batch):
            candidates = keep[b]
            merged = weighted_non_max_suppression(boxes_np[b, candidates], keypoints_np[b, candidates],
                                                  scores_np[b, candidates], self.iou_threshold)
            results.append([FaceDetection(box.astype(np.float32), points.astype(np.float32), score)
                            for box, points, score in merged])
        return results
