"""Identity similarity: cosine similarity of identity embeddings (ArcFace, or the shipped dlib
face descriptor: stages.model_files.load_identity_network) between generated and reference crops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ResyncerInputError


@torch.no_grad()
def identity_similarity(network: torch.nn.Module, generated: torch.Tensor, reference: torch.Tensor,
                        batch_size: int = 16) -> float:
    """Mean cosine similarity of E_id over pairs of crops [B,3,H,W] in -1..1 (reference [1,…]
    is compared with every generated crop)."""
    if generated.ndim != 4 or reference.ndim != 4 or len(reference) not in (1, len(generated)):
        raise ResyncerInputError(f"identity_similarity needs crops [B,3,H,W] and references [1 or B,3,H,W], got "
                                 f"{list(generated.shape)} and {list(reference.shape)}")
    device = next(network.parameters()).device
    embed = lambda crops: torch.cat([network(crops[i:i + batch_size].to(device, torch.float32))  # noqa: E731
                                     for i in range(0, len(crops), batch_size)])
    similarities = F.cosine_similarity(embed(generated), embed(reference), dim=1)
    return float(similarities.mean())
