"""Masks in the aligned crop: A (lower face), A' (whole face), feathering, landmark hulls.

Every mask is a filled set of triangles drawn with the torch rasteriser's coverage, so the
renderer and the masks share one fill rule (pixel centre inside, edges included):
- A (paper §3.2, the lip-sync mask): closed-mesh triangles of the jaw, lower cheeks and mouth
  (topology.lower_face_vertices), mouth opening filled, then dilated so the overlaid mesh and
  some jaw motion stay inside.
- A' (paper §3.3, the swap mask): the same for eyes, brows, nose, mouth, cheeks and jaw
  (topology.full_face_vertices). A's vertex set is a subset of A''s and dilation is monotone,
  so A ⊂ A' pixel by pixel for any pose.
- lip_sync_mask / face_swap_mask: the masks the overlay actually uses (DESIGN §4 MeshOverlay).
  They are drawn from the person's expression-free template posed with the frame's pose, never
  from the frame's own mesh, and A reaches JAW_DROP_PER_CROP_SIDE further down the crop (where
  an opening jaw goes): the same for every frame of a pose, at training and at inference, so
  the outline of the erased region says nothing about the true mouth (no shortcut for the
  generator) while holding every plausible jaw and mouth. face_swap_mask is A' ∪ A, so A ⊂ A'.
Masks are float tensors [T,1,S,S] with values 0 or 1 (feathered masks in 0..1), on the
vertices' device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..render.torch_rasterizer import triangle_coverage
from . import topology
from .alignment import CROP_SIZE

# Default dilation of A and A' as a fraction of the crop side (8 px at 256²): about the
# distance the chin moves when the mouth opens from closed to half open.
DILATION_PER_CROP_SIDE = 1 / 32
# How far below the neutral template's lower face A reaches, as a fraction of the crop side
# (24 px at 256²): about how far the chin drops for a wide-open mouth. Together with the
# dilation the mask then reaches the lowest point a speaking jaw goes in the aligned crop
# (which leaves ~26 px below the neutral chin, see alignment.py).
JAW_DROP_PER_CROP_SIDE = 3 / 32


def _triangle_coverage(points: torch.Tensor, triangles: torch.Tensor, size: int) -> torch.Tensor:
    """[T,1,S,S] in {0,1}: pixels whose centre lies in any of the triangles over points [T,N,≥2]."""
    xy = torch.as_tensor(points)[..., :2].to(torch.float32)
    triangles = torch.as_tensor(triangles, dtype=torch.int64, device=xy.device)
    return triangle_coverage(xy, triangles, size, size)[:, None].to(torch.float32)


def _window_sum(values: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sum over a centred window of 2·radius+1 along dim (zero outside), by cumulative sums:
    the cost does not grow with the radius."""
    padding = [0, 0] * (values.dim() - 1 - dim % values.dim()) + [radius + 1, radius]
    totals = F.pad(values, padding).cumsum(dim)
    window = 2 * radius + 1
    return totals.narrow(dim, window, values.shape[dim]) - totals.narrow(dim, 0, values.shape[dim])


def dilate(mask: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Grow a binary [T,1,H,W] mask by radius_px pixels (square structuring element).

    The window sums are differences of running sums that reach H·(2·radius+1); they are taken in
    float32, where such whole numbers are exact (float16 and bfloat16 are not past 2048 and 256)."""
    if radius_px <= 0:
        return mask
    counts = mask.to(torch.float32)
    covered = _window_sum(_window_sum(counts, radius_px, -1), radius_px, -2)
    return (covered > 0.5).to(mask.dtype)


def erode(mask: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Shrink a binary [T,1,H,W] mask by radius_px pixels; the image border does not erode it."""
    return 1 - dilate(1 - mask, radius_px)


def gaussian_blur(mask: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Separable Gaussian blur of [T,1,H,W], kernel 2·radius+1, σ = radius/2, edges replicated.

    The frames are filtered as the channels of one image (a depthwise conv): a one-channel
    conv2d over a batch runs on a generic kernel about 5× slower on a CPU."""
    if radius_px <= 0 or mask.numel() == 0:
        return mask
    offsets = torch.arange(-radius_px, radius_px + 1, dtype=mask.dtype, device=mask.device)
    kernel = torch.exp(-0.5 * (offsets / (radius_px / 2)) ** 2)
    kernel = kernel / kernel.sum()
    frames, channels, height, width = mask.shape
    planes = frames * channels
    padded = F.pad(mask, (radius_px, radius_px, radius_px, radius_px), mode="replicate")
    padded = padded.reshape(1, planes, height + 2 * radius_px, width + 2 * radius_px)
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(planes, 1, 1, -1), groups=planes)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(planes, 1, -1, 1), groups=planes)
    return blurred.view(frames, channels, height, width)


def _region_mask(crop_vertices: torch.Tensor, vertex_ids: np.ndarray, size: int, dilate_px: int | None) -> torch.Tensor:
    coverage = _triangle_coverage(crop_vertices, torch.from_numpy(topology.region_triangles(vertex_ids)), size)
    radius = round(size * DILATION_PER_CROP_SIDE) if dilate_px is None else dilate_px
    return dilate(coverage, radius)


def lower_face_mask(crop_vertices: torch.Tensor, size: int = CROP_SIZE, dilate_px: int | None = None) -> torch.Tensor:
    """A: jaw, lower cheeks and mouth below about the nose bottom, [T,1,S,S] from crop vertices [T,468,2|3].

    For lip-sync pass the tracked mesh of the frame (the area whose pixels must be
    regenerated); dilate_px defaults to size/32.
    """
    return _region_mask(crop_vertices, topology.lower_face_vertices(), size, dilate_px)


def full_face_mask(crop_vertices: torch.Tensor, size: int = CROP_SIZE, dilate_px: int | None = None) -> torch.Tensor:
    """A': eyes, brows, nose, mouth, cheeks and jaw, [T,1,S,S] from crop vertices [T,468,2|3]."""
    return _region_mask(crop_vertices, topology.full_face_vertices(), size, dilate_px)


def extend_downward(mask: torch.Tensor, distance_px: int) -> torch.Tensor:
    """Sweep a binary [T,1,H,W] mask down the image by up to distance_px pixels (the union of
    its copies shifted down by 0 … distance_px)."""
    if distance_px <= 0:
        return mask
    padded = F.pad(mask.to(torch.float32), (0, 0, distance_px, 0))
    return F.max_pool2d(padded, kernel_size=(distance_px + 1, 1), stride=1).to(mask.dtype)


def lip_sync_mask(template_in_crop: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """A [T,1,S,S]: the lower face of the expression-free template posed into each crop
    ([T,468,2|3] crop pixels), dilated and swept down by the jaw's reach (see the module docstring)."""
    return extend_downward(lower_face_mask(template_in_crop, size), round(size * JAW_DROP_PER_CROP_SIDE))


def face_swap_mask(template_in_crop: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """A' [T,1,S,S]: the whole face of the posed expression-free template, united with A (so the
    jaw's reach is regenerated too and A ⊂ A')."""
    return torch.maximum(full_face_mask(template_in_crop, size), lip_sync_mask(template_in_crop, size))


def feathered_mask(mask: torch.Tensor, erode_px: int, blur_px: int) -> torch.Tensor:
    """Soft blend weights from a hard mask: erode (so the blur stays inside), then blur."""
    return gaussian_blur(erode(mask, erode_px), blur_px).clamp(0, 1)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Indices of the 2D convex hull of points [N,2], counter-clockwise (Andrew's monotone chain)."""
    order = np.lexsort((points[:, 1], points[:, 0]))

    def half(indices):
        chain = []
        for i in indices:
            while len(chain) >= 2:
                a, b = points[chain[-2]], points[chain[-1]]
                if (b[0] - a[0]) * (points[i][1] - a[1]) - (b[1] - a[1]) * (points[i][0] - a[0]) > 0:
                    break
                chain.pop()
            chain.append(i)
        return chain[:-1]

    return np.array(half(order) + half(order[::-1]))


def landmark_hull_mask(points: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """[T,1,S,S] fill of the 2D convex hull of points [T,N,≥2] (crop pixels), e.g. projected landmarks."""
    points = torch.as_tensor(points)
    masks = []
    for frame_points in points[..., :2]:
        hull = _convex_hull(frame_points.detach().cpu().double().numpy())
        fan = np.stack([np.full(len(hull) - 2, hull[0]), hull[1:-1], hull[2:]], -1)
        masks.append(_triangle_coverage(frame_points[None], torch.from_numpy(fan), size))
    return torch.cat(masks)
