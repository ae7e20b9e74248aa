"""Stage-1 loss of the Style-SyncFormer (ReSyncer §3.1, L_3D):

    L_3D = Σ_{t=1}^{T-1} ‖(ΔM̂_t − ΔM̂_{t−1}) − (ΔM_t − ΔM_{t−1})‖₂ + λ1 Σ_{t=0}^{T-1} ‖ΔM̂_t − ΔM_t‖₂

Reduction: each norm is the plain (not squared) L2 norm of one frame's error flattened to
V·3 values; norms are summed over the T frames of a window (T−1 velocities) and averaged
over the batch. The loss therefore grows with the window length, as the paper's sum does;
keep the training window fixed (config.train_window) so learning rates stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, linalg

from ..errors import ResyncerInputError


@dataclass(frozen=True)
class MeshLossTerms:
    total: Tensor      # velocity + position_weight * position; call backward() on this
    velocity: Tensor   # temporal-consistency term, unweighted
    position: Tensor   # displacement term, before position_weight


def syncformer_loss_terms(pred: Tensor, target: Tensor, position_weight: float = 1.0) -> MeshLossTerms:
    """L_3D and its two terms for predicted and target ΔM [B, T, V, 3] (any [B, T, ...])."""
    if pred.shape != target.shape or pred.dim() < 3:
        raise ResyncerInputError(
            f"pred and target must share one shape [B, T, V, 3], got {list(pred.shape)} and {list(target.shape)}.")
    error = (pred - target).flatten(2)
    # The velocity error (p_t − p_{t−1}) − (g_t − g_{t−1}) is the change of the error between frames.
    velocity = linalg.vector_norm(error[:, 1:] - error[:, :-1], dim=-1).sum(dim=1).mean()
    position = linalg.vector_norm(error, dim=-1).sum(dim=1).mean()
    return MeshLossTerms(total=velocity + position_weight * position, velocity=velocity, position=position)


def syncformer_loss(pred: Tensor, target: Tensor, position_weight: float = 1.0) -> Tensor:
    """L_3D as one scalar (λ1 = position_weight, 1 in the paper); see syncformer_loss_terms
    for the two terms it sums."""
    return syncformer_loss_terms(pred, target, position_weight).total
