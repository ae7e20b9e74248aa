"""The renderer interface: a backend rasterises, the shared shading turns fragments into the image."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from .results import Fragments, RenderResult, image_size
from .shading import shade


class MeshRenderer(ABC):
    """Renders posed meshes as the paper's guidance image: white, Lambertian, no texture.

    Backends implement `rasterize` only, so every backend shades identically.
    """

    @abstractmethod
    def rasterize(self, vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int) -> Fragments:
        """Visible triangle per pixel for vertices [B,V,3] and triangles [F,3] (smallest z wins)."""

    def render(self, vertices: torch.Tensor, triangles: torch.Tensor, size: int | tuple[int, int]) -> RenderResult:
        """Render vertices [B,V,3] (pixels + depth) with triangles [F,3] at size (side or (H, W)).

        The result is on the device the backend rasterised on: the vertices' for the torch
        backend, the backend's own CUDA device for nvdiffrast, whatever device the vertices are on."""
        vertices = torch.as_tensor(vertices, dtype=torch.float32)
        triangles = torch.as_tensor(triangles, dtype=torch.int64, device=vertices.device)
        height, width = image_size(size)
        fragments = self.rasterize(vertices, triangles, height, width)
        device = fragments.triangle_id.device
        return shade(vertices.to(device), triangles.to(device), fragments)
