"""Mesh metrics of stage 1 (the Style-SyncFormer's predicted meshes against tracked ones)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.topology import lip_vertices


def lip_vertex_error(predicted, target, vertex_ids=None) -> float:
    """FaceFormer's lip vertex error: per frame the largest L2 distance over the lip vertices,
    averaged over the frames. Meshes [T,V,3] or [B,T,V,3] (canonical meshes or ΔM: the template
    cancels), numpy or torch; the result is in the meshes' units (canonical units for ours).
    vertex_ids defaults to the 40 MediaPipe lip vertices."""
    predicted = torch.as_tensor(predicted, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=torch.float32)
    if predicted.shape != target.shape or predicted.dim() < 3 or predicted.shape[-1] != 3:
        raise ResyncerInputError(f"lip_vertex_error needs two meshes of one shape [..., T, V, 3], got "
                                 f"{list(predicted.shape)} and {list(target.shape)}")
    ids = torch.as_tensor(lip_vertices() if vertex_ids is None else np.asarray(vertex_ids), dtype=torch.long)
    distances = torch.linalg.vector_norm(predicted[..., ids, :] - target[..., ids, :], dim=-1)
    return float(distances.amax(dim=-1).mean())
