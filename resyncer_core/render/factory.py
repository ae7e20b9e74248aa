"""Choosing a renderer backend."""

from __future__ import annotations

import torch

from ..errors import ResyncerInputError
from .base import MeshRenderer
from .nvdiffrast_rasterizer import NvdiffrastRasterizer, nvdiffrast_available
from .torch_rasterizer import TorchRasterizer

BACKENDS = ("auto", "torch", "nvdiffrast")


def get_renderer(backend: str = "auto", device: torch.device | str = "cpu") -> MeshRenderer:
    """A renderer; "auto" picks nvdiffrast when installed and the device is CUDA, else the torch rasteriser."""
    if backend not in BACKENDS:
        raise ResyncerInputError(f"unknown renderer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    on_cuda = torch.device(device).type == "cuda"
    if backend == "nvdiffrast" or (backend == "auto" and on_cuda and nvdiffrast_available()):
        return NvdiffrastRasterizer(device)
    return TorchRasterizer()
