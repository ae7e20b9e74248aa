"""Stage-2 losses of the generator (ReSyncer §3.2–3.3):

    L_rec = ‖Î − I‖₁ + λ2 Σ_m w_m ‖VGG_m(Î) − VGG_m(I)‖₁,   λ2 = 0.1 (paper, eq. 1)
    L_adv: StyleGAN2's non-saturating logistic loss (eq. 2), R1 on real images for D
    face swap: L_id = 1 − cos(E_id(Î'), E_id(I')) and discriminator feature matching against I_t

The networks are not called here: perceptual, identity and feature-matching losses take the
features the caller computed (models/vgg19.py, models/arcface.py, Discriminator
.forward_with_features). Every ‖·‖₁ is a mean over elements, as pix2pixHD's nn.L1Loss. The
"real"/"source" side of every comparison is a target: it is detached, so a loss on the
generator never sends gradients into the discriminator or a frozen feature network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from ..errors import ResyncerInputError

RECONSTRUCTION_PERCEPTUAL_WEIGHT = 0.1  # λ2 (paper)
# pix2pixHD's VGG loss weights for relu1_1 … relu5_1: deeper layers count more.
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def l1_loss(fake: Tensor, real: Tensor) -> Tensor:
    """Mean absolute error against a detached target."""
    return F.l1_loss(fake, real.detach())


def _check_feature_lists(features_fake: Sequence[Tensor], features_real: Sequence[Tensor], what: str) -> None:
    if len(features_fake) != len(features_real) or not features_fake:
        raise ResyncerInputError(
            f"{what} needs two equally long, non-empty feature lists, got {len(features_fake)} and {len(features_real)}.")


def perceptual_loss(features_fake: Sequence[Tensor], features_real: Sequence[Tensor],
                    layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS) -> Tensor:
    """pix2pixHD's VGG loss Σ_m w_m ‖VGG_m(x̂) − VGG_m(x)‖₁ from the two feature lists
    (one tensor per VGG layer, in the order of `layer_weights`)."""
    _check_feature_lists(features_fake, features_real, "perceptual_loss")
    if len(layer_weights) != len(features_fake):
        raise ResyncerInputError(
            f"perceptual_loss got {len(features_fake)} feature layers but {len(layer_weights)} layer weights.")
    return sum(weight * l1_loss(fake, real)
               for weight, fake, real in zip(layer_weights, features_fake, features_real))


@dataclass(frozen=True)
class ReconstructionLossTerms:
    total: Tensor       # l1 + perceptual_weight * perceptual; call backward() on this
    l1: Tensor          # pixel term
    perceptual: Tensor  # VGG term, before perceptual_weight


def reconstruction_loss_terms(fake: Tensor, real: Tensor, features_fake: Sequence[Tensor],
                              features_real: Sequence[Tensor],
                              perceptual_weight: float = RECONSTRUCTION_PERCEPTUAL_WEIGHT,
                              layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS) -> ReconstructionLossTerms:
    """L_rec (paper eq. 1) and its two terms; images [B,3,H,W], features from the same VGG."""
    pixel = l1_loss(fake, real)
    perceptual = perceptual_loss(features_fake, features_real, layer_weights)
    return ReconstructionLossTerms(total=pixel + perceptual_weight * perceptual, l1=pixel, perceptual=perceptual)


def reconstruction_loss(fake: Tensor, real: Tensor, features_fake: Sequence[Tensor],
                        features_real: Sequence[Tensor],
                        perceptual_weight: float = RECONSTRUCTION_PERCEPTUAL_WEIGHT,
                        layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS) -> Tensor:
    """L_rec as one scalar; see reconstruction_loss_terms."""
    return reconstruction_loss_terms(fake, real, features_fake, features_real,
                                     perceptual_weight, layer_weights).total


def generator_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """G's adversarial loss −log σ(D(Î)), averaged (StyleGAN2)."""
    return F.softplus(-fake_logits).mean()


def discriminator_logistic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's loss −log σ(D(I)) − log(1 − σ(D(Î))), each averaged over its batch."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """Mean over the batch of ‖∇_I D(I)‖² on real images (StyleGAN2's R1, before the caller's
    γ/2 and lazy-regularisation interval). `real_images` must require grad and `real_logits`
    must be computed from them; the graph is kept so the penalty itself can be backpropagated."""
    if not real_images.requires_grad:
        raise ResyncerInputError("r1_penalty needs real_images.requires_grad_(True) before the discriminator runs.")
    (gradient,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return gradient.pow(2).flatten(1).sum(dim=1).mean()


def identity_loss(embedding_fake: Tensor, embedding_source: Tensor) -> Tensor:
    """1 − cos(E_id(Î'), E_id(I')) averaged over the batch; embeddings [B, D], range 0 … 2."""
    return (1.0 - F.cosine_similarity(embedding_fake, embedding_source.detach(), dim=1)).mean()


def feature_matching_loss(feats_fake: Sequence[Tensor], feats_real: Sequence[Tensor]) -> Tensor:
    """Σ over discriminator layers of ‖D_k(Î') − D_k(I_t)‖₁ (pix2pixHD / SimSwap form)."""
    _check_feature_lists(feats_fake, feats_real, "feature_matching_loss")
    return sum(l1_loss(fake, real) for fake, real in zip(feats_fake, feats_real))
