"""Frame windows around a face: crop and paste back only the pixels a crop touches.

Warping whole 720p frames into 256² crops (and back) costs time and memory in proportion to
the frame; a face covers a small part of it. These helpers find, per frame, the frame window
that a region of the crop maps to, and re-express the frame → crop affine in that window's
coordinates, so the warps in face.alignment run on the window alone and give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..face.alignment import invert_affine

# Bilinear sampling reads one pixel beyond a sample position; one more guards rounding.
_WINDOW_MARGIN_PX = 2


@dataclass(frozen=True)
class FrameWindow:
    """Frame pixels [y0:y1, x0:x1]."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def window_of_crop_box(affine: np.ndarray | torch.Tensor, crop_box: tuple[float, float, float, float],
                       frame_size: tuple[int, int]) -> FrameWindow:
    """The frame window covering crop pixels crop_box = (x0, y0, x1, y1) under one frame → crop
    affine [2,3], widened by a sampling margin and clipped to the frame (H, W)."""
    x0, y0, x1, y1 = crop_box
    corners = torch.tensor([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], dtype=torch.float64)
    to_frame = invert_affine(torch.as_tensor(affine, dtype=torch.float64)[None])[0]
    frame_corners = corners @ to_frame[:, :2].T + to_frame[:, 2]
    low = torch.floor(frame_corners.min(0).values).to(torch.int64) - _WINDOW_MARGIN_PX
    high = torch.ceil(frame_corners.max(0).values).to(torch.int64) + _WINDOW_MARGIN_PX
    height, width = frame_size
    return FrameWindow(x0=int(low[0].clamp(0, width)), y0=int(low[1].clamp(0, height)),
                       x1=int(high[0].clamp(0, width)), y1=int(high[1].clamp(0, height)))


def affine_in_window(affine: np.ndarray | torch.Tensor, window: FrameWindow) -> torch.Tensor:
    """The frame → crop affine [2,3] re-expressed for window pixels (window origin at frame
    (x0, y0)): crop = L·(p + o) + b = L·p + (L·o + b)."""
    affine = torch.as_tensor(affine, dtype=torch.float64)
    linear = affine[:, :2]
    offset = linear @ torch.tensor([window.x0, window.y0], dtype=torch.float64) + affine[:, 2]
    return torch.cat([linear, offset[:, None]], dim=1).to(torch.float32)


def nonzero_box(weights: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) bounding the nonzero pixels of one [H,W] map, None when all are zero."""
    rows = torch.nonzero(weights.any(dim=1)).flatten()
    if rows.numel() == 0:
        return None
    columns = torch.nonzero(weights.any(dim=0)).flatten()
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1
