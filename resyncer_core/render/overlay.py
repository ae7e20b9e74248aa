"""MeshOverlay (paper §3.2, §3.3): the masked crop with the white mesh drawn into the hole."""

from __future__ import annotations

import torch


def mesh_overlay(crops: torch.Tensor, rendered: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """I^AM = (1 − A)·I + A·M^p for crops [B,3,H,W] and rendered [B,3,H,W] in −1..1, A [B,1,H,W].

    The paper writes I^AM = I^A + A·M^p with I^A = (1 − A)·I, i.e. the masked area is first
    blacked out and the projected mesh is added on top. The renderer's background is black
    (−1), so inside A but off the mesh — the open mouth (the tessellation leaves it open), the
    eyes for A', any part of A the mesh does not reach — the result is black, exactly as in the
    paper; the mesh's coverage is therefore not used as an extra gate. The formula is affine
    in the pixel values, so it gives the same image in −1..1 as the paper's 0..1 arithmetic.
    The result is on the crops' device and in their dtype (a renderer or mask may live elsewhere).
    """
    mask = mask.to(crops.device, crops.dtype)
    return (1 - mask) * crops + mask * rendered.to(crops.device, crops.dtype)
