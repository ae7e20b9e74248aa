"""What rasterisers and renderers return.

Pixel convention for every renderer: vertices are in output pixel coordinates (x right,
y down; pixel (row i, column j) has its centre at (j + 0.5, i + 0.5)) with a depth z in the
same pixel scale where smaller z is nearer the camera (MediaPipe's convention). Projection is
orthographic: the caller has already posed and projected the mesh
(resyncer_core.face.track.posed_mesh_in_crop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(eq=False)  # fields are tensors: compare them explicitly
class Fragments:
    """Per pixel: the visible triangle (−1 where none) and its barycentric weights.

    triangle_id [B,H,W] int64; barycentric [B,H,W,3] (zero where no triangle), the weights of
    the triangle's three corners in the order of the triangles array.
    """

    triangle_id: torch.Tensor
    barycentric: torch.Tensor


@dataclass(eq=False)  # fields are tensors: compare them explicitly
class RenderResult:
    """image [B,3,H,W] in −1..1 (white shaded mesh on black), coverage [B,1,H,W] in {0, 1},
    depth [B,1,H,W] (the vertices' z interpolated; 0 where coverage is 0)."""

    image: torch.Tensor
    coverage: torch.Tensor
    depth: torch.Tensor


def image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) from a square side or a (height, width) pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
