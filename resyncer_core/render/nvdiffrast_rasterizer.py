"""nvdiffrast backend (CUDA only): hardware-speed rasterisation, same fragments as the torch one.

nvdiffrast is optional and imported when the backend is constructed, never at module import.
Pixel positions map to clip space as x_clip = 2x/W − 1, y_clip = 2y/H − 1: nvdiffrast's first
output row is y_clip = −1, so row i still has its centre at y = i + 0.5 (no flip). Depth is
rescaled per batch item into (−1, 1) for the hardware depth test (smaller is nearer in both
conventions). Its rasteriser output is (u, v, z/w, triangle id + 1) with barycentric weights
(u, v, 1 − u − v) for the triangle's three corners.
"""

from __future__ import annotations

import importlib.util

import torch

from ..errors import ResyncerInputError
from .base import MeshRenderer
from .results import Fragments

DEPTH_RANGE = 0.9  # keep the rescaled depth strictly inside the clip volume


def nvdiffrast_available() -> bool:
    return importlib.util.find_spec("nvdiffrast") is not None


class NvdiffrastRasterizer(MeshRenderer):
    def __init__(self, device: torch.device | str = "cuda"):
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ResyncerInputError(f"the nvdiffrast backend needs a CUDA device, got {self.device}; use --device cuda or the torch renderer")
        import nvdiffrast.torch as dr

        self._dr = dr
        self._context = dr.RasterizeCudaContext(device=self.device)

    def rasterize(self, vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int) -> Fragments:
        vertices = vertices.to(self.device, torch.float32)
        depth = vertices[..., 2]
        nearest, farthest = depth.amin(-1, keepdim=True), depth.amax(-1, keepdim=True)
        depth_clip = DEPTH_RANGE * (2 * (depth - nearest) / (farthest - nearest).clamp(min=1e-6) - 1)
        clip = torch.stack(
            [2 * vertices[..., 0] / width - 1, 2 * vertices[..., 1] / height - 1, depth_clip, torch.ones_like(depth)], -1
        ).contiguous()
        raster, _ = self._dr.rasterize(
            self._context, clip, triangles.to(self.device, torch.int32).contiguous(), resolution=[height, width]
        )
        triangle_id = raster[..., 3].long() - 1
        u, v = raster[..., 0], raster[..., 1]
        barycentric = torch.stack([u, v, 1 - u - v], -1) * (triangle_id >= 0)[..., None]
        return Fragments(triangle_id=triangle_id, barycentric=barycentric)
