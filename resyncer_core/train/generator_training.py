"""What every generator-training loop shares (stage 2, swap, personalisation; paper §3.2, A.1):
reference-frame sampling, the stage-2 generator loss, the discriminator step with lazy R1,
uint8 storage of crops, and PNG sample grids.

    L_G = ‖Î − I‖₁ + λ2 Σ_m w_m ‖φ_m(Î) − φ_m(I)‖₁ + λ_adv · softplus(−D(Î))     λ2 = 0.1 (paper)
    L_D = softplus(−D(I)) + softplus(D(Î))  (+ γ/2 · R1 every R1_INTERVAL steps, scaled by it)

φ is the perceptual network (stages.model_files.load_perceptual_network: VGG19 when supplied,
else the shipped EfficientNet-Lite0 feature loss); the layer weights w_m are pix2pixHD's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .image_losses import (
    RECONSTRUCTION_PERCEPTUAL_WEIGHT,
    discriminator_logistic_loss,
    generator_nonsaturating_loss,
    l1_loss,
    perceptual_loss,
    r1_penalty,
)

REFERENCE_WINDOW = 30          # (paper A.1) the reference is one of the 30 nearest frames
R1_GAMMA = 10.0                # StyleGAN2's R1 weight at 256²
R1_INTERVAL = 16               # StyleGAN2's lazy regularisation interval


@dataclass
class GeneratorLossWeights:
    perceptual: float = RECONSTRUCTION_PERCEPTUAL_WEIGHT   # λ2 (paper)
    adversarial: float = 1.0
    # Extra L1 inside mask A, per masked pixel (not in the paper: its whole-crop L1 gives the mouth,
    # a few % of the crop, so little weight that a short run learns to copy the reference's mouth).
    lower_face: float = 0.0


def reference_indices(targets: np.ndarray, count: int, rng: np.random.Generator,
                      window: int = REFERENCE_WINDOW) -> np.ndarray:
    """For each target index among `count` frames, a random other frame among the `window`
    nearest (the frame itself when there is only one)."""
    targets = np.asarray(targets)
    if count == 1:
        return np.zeros_like(targets)
    span = min(window, count - 1)
    low = np.clip(targets - span // 2, 0, count - 1 - span)
    # Draw among the span + 1 positions low … low+span and skip the target itself.
    draws = low + rng.integers(0, span, size=targets.shape)
    return np.where(draws >= targets, draws + 1, draws)


def crops_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Crops in -1..1 → uint8 0..255 (how training holds them: a quarter of the memory)."""
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def crops_from_uint8(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, torch.float32) / 127.5 - 1


def generator_loss(fake: torch.Tensor, real: torch.Tensor, perceptual_network=None, discriminator=None,
                   weights: GeneratorLossWeights | None = None,
                   mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """L_G (module docstring) and its terms as floats. Without a perceptual network or a
    discriminator that term is left out. The discriminator's parameters get no gradient.
    `mask` (A, [B,H,W]) is needed only for a lower-face weight, and then required: a weight
    with nothing to weigh would be dropped without a word."""
    weights = weights or GeneratorLossWeights()
    if weights.lower_face and mask is None:
        raise ValueError("a lower-face weight needs the lower-face mask A; pass mask=")
    l1 = l1_loss(fake, real)
    total, terms = l1, {"l1": float(l1.detach())}
    if weights.lower_face:
        lower_face = masked_l1_loss(fake, real, mask)
        total = total + weights.lower_face * lower_face
        terms["lower_face_l1"] = float(lower_face.detach())
    if perceptual_network is not None and weights.perceptual:
        perceptual = perceptual_loss(perceptual_network(fake), perceptual_network(real))
        total = total + weights.perceptual * perceptual
        terms["perceptual"] = float(perceptual.detach())
    if discriminator is not None and weights.adversarial:
        # Only the generator learns from this term; a frozen discriminator (swap) stays frozen.
        trainable = [parameter for parameter in discriminator.parameters() if parameter.requires_grad]
        for parameter in trainable:
            parameter.requires_grad_(False)
        adversarial = generator_nonsaturating_loss(discriminator(fake))
        for parameter in trainable:
            parameter.requires_grad_(True)
        total = total + weights.adversarial * adversarial
        terms["g_adversarial"] = float(adversarial.detach())
    return total, terms


def masked_l1_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |fake − real| over the pixels (and channels) inside mask [B,H,W] (weights 0..1)."""
    weights = mask[:, None].to(fake.dtype)
    return ((fake - real).abs() * weights).sum() / (weights.sum() * fake.shape[1]).clamp_min(1.0)


def discriminator_loss(discriminator, real: torch.Tensor, fake: torch.Tensor, step: int,
                       r1_gamma: float = R1_GAMMA, r1_interval: int = R1_INTERVAL) -> tuple[torch.Tensor, dict[str, float]]:
    """L_D with lazy R1 on the steps divisible by r1_interval (StyleGAN2)."""
    loss = discriminator_logistic_loss(discriminator(real.detach()), discriminator(fake.detach()))
    terms = {"d_loss": float(loss.detach())}
    if r1_gamma > 0 and step % r1_interval == 0:
        real_for_r1 = real.detach().requires_grad_(True)
        penalty = r1_penalty(discriminator(real_for_r1), real_for_r1)
        loss = loss + r1_gamma / 2 * r1_interval * penalty
        terms["r1"] = float(penalty.detach())
    return loss, terms


def write_sample_grid(path: str | Path, columns: list[torch.Tensor]) -> Path:
    """A PNG with one row per sample and one column per image batch in `columns` (each
    [B,3,H,W] in -1..1), e.g. overlay, reference, output, target. Written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Each column stacks its batch vertically ([3, B·H, W]); the columns sit side by side.
    grid = torch.cat([torch.cat(list(crops_to_uint8(column.detach().cpu().clamp(-1, 1))), dim=1)
                      for column in columns], dim=2)
    temporary = path.with_name(f".{path.name}.partial")
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(temporary, format="PNG")
    temporary.replace(path)
    return path
