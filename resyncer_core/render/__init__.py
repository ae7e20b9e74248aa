"""Mesh renderers: a pure-torch rasteriser (default, CPU/CUDA) and an optional nvdiffrast backend."""

from .base import MeshRenderer
from .factory import get_renderer
from .nvdiffrast_rasterizer import NvdiffrastRasterizer, nvdiffrast_available
from .overlay import mesh_overlay
from .results import Fragments, RenderResult
from .shading import shade, vertex_normals
from .torch_rasterizer import TorchRasterizer, rasterize_triangles

__all__ = [
    "Fragments",
    "MeshRenderer",
    "NvdiffrastRasterizer",
    "RenderResult",
    "TorchRasterizer",
    "get_renderer",
    "mesh_overlay",
    "nvdiffrast_available",
    "rasterize_triangles",
    "shade",
    "vertex_normals",
]
