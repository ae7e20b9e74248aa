"""Pure-torch triangle rasteriser with an exact z-buffer (CPU and CUDA, device follows inputs).

Each triangle enumerates the pixel centres inside its clamped bounding box as flat candidate
(triangle, pixel) pairs; a candidate is kept when its barycentric weights are all ≥ 0 (edges
count as inside, so neighbouring triangles leave no cracks; the z test picks one of the two).
The nearest candidate per pixel is found with scatter_reduce("amin") on depth, so the nearest
surface wins whatever the triangle order (exact depth ties, as on a shared edge, go to the later
candidate). Work is proportional to the summed bounding-box areas (≈ 2× the covered area for a
face mesh), not to triangles × pixels; candidates are generated in chunks of about
CANDIDATE_CHUNK pairs to bound memory, and only those inside their triangle are kept.
"""

from __future__ import annotations

import torch

from .base import MeshRenderer
from .results import Fragments

CANDIDATE_CHUNK = 1 << 18
# Tolerance on barycentric weights: pixel centres exactly on a shared edge are inside both
# triangles despite rounding.
EDGE_TOLERANCE = 1e-5
MIN_DOUBLE_AREA = 1e-10


def _barycentric_gradients(corners_xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """∂λ_k/∂(x, y) per triangle [..., 3, 2] and the doubled signed area [...].

    λ_k(p) is the signed area of (p, next corner, corner after) over the triangle's; it is
    evaluated as λ_k(corner 0) + ∇λ_k · (p − corner 0) so float32 keeps full precision
    (expanding a·x + b·y + c would cancel large terms).
    """
    x, y = corners_xy[..., 0], corners_xy[..., 1]
    x_next, y_next = x.roll(-1, dims=-1), y.roll(-1, dims=-1)
    x_after, y_after = x.roll(-2, dims=-1), y.roll(-2, dims=-1)
    double_area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    gradients = torch.stack([y_next - y_after, x_after - x_next], -1)
    return gradients / double_area[..., None, None], double_area


def _inside_pixels(vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int):
    """Every (pixel, depth, owner, weights) candidate whose pixel centre lies inside its
    triangle, with `triangle`, the triangle index of each owner row; pixels index the flat
    [B·H·W] image."""
    device = vertices.device
    corners = vertices[:, triangles]  # [B,F,3,3]
    gradients, double_area = _barycentric_gradients(corners[..., :2])

    # Columns j (rows i) whose centre j + 0.5 (i + 0.5) lies within the bounding box, clamped to the image.
    low = torch.ceil(corners[..., :2].amin(-2) - 0.5).clamp(min=0)
    high = torch.floor(corners[..., :2].amax(-2) - 0.5)
    high = torch.minimum(high, torch.tensor([width - 1.0, height - 1.0], device=device, dtype=high.dtype))
    extent = (high - low + 1).clamp(min=0)
    usable = (double_area.abs() > MIN_DOUBLE_AREA) & torch.isfinite(corners).all(-1).all(-1) & (extent > 0).all(-1)
    frame, triangle = usable.nonzero(as_tuple=True)
    counts = (extent[..., 0] * extent[..., 1])[frame, triangle].long()
    starts = torch.cumsum(counts, 0) - counts
    # One row per usable triangle, gathered once per candidate (index_select is the fast gather):
    # bounding-box corner and width, start offset, ∇λ (6), corner 0 (2), corner depths (3).
    box = torch.stack([low[frame, triangle, 0], low[frame, triangle, 1], extent[frame, triangle, 0]], -1).long()
    box = torch.cat([box, starts[:, None], (frame * height)[:, None]], -1)
    geometry = torch.cat(
        [gradients[frame, triangle].flatten(1), corners[frame, triangle, 0, :2], corners[frame, triangle, :, 2]], -1
    )

    chunk_of = torch.div(starts, CANDIDATE_CHUNK, rounding_mode="floor")
    inside = [
        _inside_candidates((chunk_of == chunk).nonzero(as_tuple=True)[0], counts, starts, box, geometry, width)
        for chunk in torch.unique(chunk_of).tolist()
    ]
    pixel, depth, owner, weights = (torch.cat(parts) for parts in zip(*inside)) if inside else _no_candidates(vertices)
    return pixel, depth, owner, weights, triangle


def triangle_coverage(vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool [B,H,W]: pixels whose centre lies in any of the triangles over vertices [B,V,≥2]
    (pixel x, y). The same fill rule as `rasterize_triangles` without its z-buffer, for
    masks, which need coverage only."""
    xy = vertices[..., :2]
    flat = torch.cat([xy, torch.zeros_like(xy[..., :1])], -1)
    pixel = _inside_pixels(flat, triangles, height, width)[0]
    covered = torch.zeros(vertices.shape[0] * height * width, dtype=torch.bool, device=vertices.device)
    covered[pixel] = True
    return covered.view(vertices.shape[0], height, width)


def rasterize_triangles(vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int) -> Fragments:
    """Fragments for vertices [B,V,3] (pixel x, y and depth z) and triangles [F,3] int64."""
    batch = vertices.shape[0]
    device = vertices.device
    pixel, depth, owner, weights, triangle = _inside_pixels(vertices, triangles, height, width)

    # Exact z-buffer: the smallest depth per pixel, then one candidate that has it.
    pixels = batch * height * width
    nearest_depth = torch.full((pixels,), float("inf"), device=device, dtype=vertices.dtype)
    nearest_depth.scatter_reduce_(0, pixel, depth, "amin")
    nearest = (depth == nearest_depth.index_select(0, pixel)).nonzero(as_tuple=True)[0]
    winner = torch.full((pixels,), -1, device=device, dtype=torch.int64)
    winner.scatter_reduce_(0, pixel.index_select(0, nearest), nearest, "amax")
    covered = (winner >= 0).nonzero(as_tuple=True)[0]
    chosen = winner.index_select(0, covered)

    triangle_id = torch.full((pixels,), -1, device=device, dtype=torch.int64)
    triangle_id[covered] = triangle.index_select(0, owner.index_select(0, chosen))
    barycentric = torch.zeros(pixels, 3, device=device, dtype=vertices.dtype)
    barycentric[covered] = weights.index_select(0, chosen).clamp(min=0)
    return Fragments(triangle_id.view(batch, height, width), barycentric.view(batch, height, width, 3))


def _inside_candidates(members, counts, starts, box, geometry, width):
    """(pixel, depth, owner, weights) of the bounding-box pixels of triangles `members` whose
    centres lie inside their triangle; owner indexes the usable-triangle rows."""
    device = counts.device
    owner = torch.repeat_interleave(members, counts[members])
    box_x, box_y, box_width, start, frame_row = box.index_select(0, owner).unbind(-1)
    local = torch.arange(len(owner), device=device) + starts[members[0]] - start
    row_in_box = torch.div(local, box_width, rounding_mode="floor")
    column = box_x + local - row_in_box * box_width
    row = box_y + row_in_box
    g = geometry.index_select(0, owner)
    dx = column.to(g.dtype) + 0.5 - g[:, 6]
    dy = row.to(g.dtype) + 0.5 - g[:, 7]
    weights = g[:, 0:6:2] * dx[:, None] + g[:, 1:6:2] * dy[:, None]
    weights[:, 0] += 1.0  # λ(corner 0) = (1, 0, 0)
    inside = (weights >= -EDGE_TOLERANCE).all(-1).nonzero(as_tuple=True)[0]
    weights = weights.index_select(0, inside)
    depth = (weights * g[:, 8:11].index_select(0, inside)).sum(-1)
    pixel = (frame_row.index_select(0, inside) + row.index_select(0, inside)) * width + column.index_select(0, inside)
    return pixel, depth, owner.index_select(0, inside), weights


def _no_candidates(like: torch.Tensor):
    empty = torch.zeros(0, dtype=torch.int64, device=like.device)
    return empty, like.new_zeros(0), empty, like.new_zeros(0, 3)


class TorchRasterizer(MeshRenderer):
    """The default backend: pure torch, any device, no compilation."""

    def rasterize(self, vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int) -> Fragments:
        return rasterize_triangles(vertices, triangles, height, width)
