"""Face-swap training (ReSyncer §3.3): a stage-2 generator learns to put another person's face
on the target's head, keeping its lip-sync (one set of weights for both tasks).

Per sample: the target frame I_t of clip a (with its reference, as in stage 2) and a frame I'
of a clip b of ANOTHER speaker. Two streams, and only the generator is updated:
- reconstruction (kept from §3.2): Î_t = G(E([I^AM_t, I_ref])) with stage 2's L1 + perceptual
  (+ adversarial against the frozen discriminator);
- cross-identity: the source identity's shape with the target's expression,
  M' = M̄_b + (M_t − M̄_a), posed with frame t's pose and overlaid under A' (the whole face of
  a's posed neutral template, ∪ A): I^{A'M'} = (1 − A')·I_t + A'·M'^p. Î' = G.swap: W from
  E([I^{A'M'}, I']), maps from E([I^{A'M'}, I_ref]). Losses: L_id = 1 − cos(E_id(Î'), E_id(I'))
  (E_id: ArcFace when supplied, else the shipped dlib face descriptor) and feature matching
  Σ_k ‖D_k(Î') − D_k(I_t)‖₁ with the stage-2 discriminator (frozen).

RUN/generator.safetensors holds the EMA generator; samples/ grids show swap overlay, identity
frame I', swap output and target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ResyncerInputError
from ..models.checkpoint import load_checkpoint
from ..stages.model_files import load_identity_network
from .crop_dataset import ImageBatch
from .distributed import DistributedContext, accumulated_backward, wrap_model
from .generator_training import crops_from_uint8, generator_loss
from .image_losses import feature_matching_loss, identity_loss
from .loop import Log, TrainingResult, check_run_folder, run_training, seed_everything
from .stage2 import DISCRIMINATOR_FILE, SAMPLE_ROWS, ImageStage, ImageTrainingConfig, _read_dataset


@dataclass(kw_only=True)
class SwapConfig(ImageTrainingConfig):
    """Everything a swap run depends on (the shared image-training fields and these)."""

    init_generator: str                   # the stage-2 generator to start from
    discriminator: str | None = None      # default: discriminator.safetensors beside init_generator
    identity_weight: float = 1.0
    feature_matching_weight: float = 1.0


class BothStreams(nn.Module):
    """The generator's reconstruction and swap passes as one forward, so DDP sees (and
    averages the gradients of) a single call."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, recon: ImageBatch, swap: ImageBatch, identities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reconstructed = self.generator(recon.overlays, recon.references, mask=recon.masks[:, None])
        swapped = self.generator.swap(swap.overlays, identities, swap.references, mask=swap.masks[:, None])
        return reconstructed, swapped


class SwapStage(ImageStage):
    name = "swap"

    def __init__(self, *args, identity_network, **kwargs):
        super().__init__(*args, **kwargs)
        self.discriminator.requires_grad_(False).eval()
        self.identity = identity_network
        self.streams = wrap_model(BothStreams(self.generator), self.context)
        speakers = [clip.record.speaker for clip in self.data.clips]
        if len(set(speakers)) < 2:
            raise ResyncerInputError("swap training needs clips of at least two speakers (cross-identity pairs); "
                                     f"the dataset's training clips are all of {speakers[0]!r}")
        self._speakers = np.array(speakers)

    def state_modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "generator_ema": self.ema}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator_adam": self.g_optimizer}

    def _sources(self, step: int, samples: list[tuple[int, int, int]], positions: np.ndarray):
        """Per sample: (source clip, source frame) of another speaker, from its own generator."""
        sources = []
        for (clip_index, _, _), position in zip(samples, positions):
            rng = np.random.default_rng([self.config.loop.seed, step, 2, int(position)])
            others = np.flatnonzero(self._speakers != self._speakers[clip_index])
            source = int(others[rng.integers(0, len(others))])
            tracked = self.data.clips[source].tracked
            sources.append((source, int(tracked[rng.integers(0, len(tracked))])))
        return sources

    def swap_batch(self, step: int, positions: np.ndarray) -> tuple[ImageBatch, ImageBatch, torch.Tensor]:
        samples = self.samples(step, positions)
        sources = self._sources(step, samples, positions)
        recon = self.data.batch(samples, self.context.device)
        meshes = []
        for (clip_index, frame, _), (source, _) in zip(samples, sources):
            target = self.data.clips[clip_index]
            meshes.append(self.data.clips[source].template + (target.canonical[frame] - target.template))
        swap = self.data.batch(samples, self.context.device, mask_mode="face", meshes=meshes)
        identities = crops_from_uint8(torch.stack([self.data.crops(c)[f] for c, f in sources]), self.context.device)
        return recon, swap, identities

    def train_step(self, step: int, micro_batches: list[np.ndarray]) -> dict[str, float]:
        self.streams.train()
        terms: list[dict[str, float]] = []

        def micro_loss(positions: np.ndarray):
            def compute() -> torch.Tensor:
                recon, swap, identities = self.swap_batch(step, positions)
                with self.context.autocast(self.config.loop.bf16):
                    reconstructed, swapped = self.streams(recon, swap, identities)
                reconstructed, swapped = reconstructed.float(), swapped.float()
                loss, parts = generator_loss(reconstructed, recon.targets, self.perceptual.network,
                                             self.discriminator, self.weights, recon.masks)
                id_loss = identity_loss(self.identity.network(swapped), self.identity.network(identities))
                matching = feature_matching_loss(self.discriminator.forward_with_features(swapped)[1],
                                                 self.discriminator.forward_with_features(swap.targets)[1])
                parts.update(identity=float(id_loss.detach()), feature_matching=float(matching.detach()))
                terms.append(parts)
                return loss + self.config.identity_weight * id_loss + self.config.feature_matching_weight * matching
            return compute

        self.g_optimizer.zero_grad(set_to_none=True)
        loss = accumulated_backward(self.streams, [micro_loss(p) for p in micro_batches], len(micro_batches))
        self.g_optimizer.step()
        self.ema.update(self.generator)
        self.maybe_write_samples(step)
        metrics = {"loss": loss}
        for name in terms[0]:
            metrics[name] = float(np.mean([part[name] for part in terms]))
        return metrics

    def sample_columns(self) -> list[torch.Tensor]:
        """Swap overlay, identity frame I', EMA swap output, target."""
        _, swap, identities = self.swap_batch(0, np.arange(SAMPLE_ROWS))
        with torch.no_grad():
            output = self.ema.average.eval().swap(swap.overlays, identities, swap.references,
                                                  mask=swap.masks[:, None]).clamp(-1, 1)
        return [swap.overlays, identities, output, swap.targets]

    def export(self, run_dir: Path) -> list[Path]:
        return [self.export_generator(run_dir)]


def build_swap(config: SwapConfig, context: DistributedContext, log: Log) -> SwapStage:
    data, validation = _read_dataset(config, lambda message: log(f"swap: {message}"))
    seed_everything(config.loop.seed)
    generator = load_checkpoint(config.init_generator, kind="generator")[0]
    discriminator_path = Path(config.discriminator) if config.discriminator else Path(config.init_generator).with_name(DISCRIMINATOR_FILE)
    if not discriminator_path.is_file():
        raise ResyncerInputError(f"no discriminator at {discriminator_path} for the feature-matching loss; pass "
                                 "--discriminator (stage 2 writes RUN/discriminator.safetensors)")
    discriminator = load_checkpoint(discriminator_path, kind="discriminator")[0]
    identity = load_identity_network(Path(config.models) if config.models else None, context.device, log)
    log(f"swap: identity network: {identity.name}")
    return SwapStage(config, generator, discriminator, data, validation, context, log, identity_network=identity)


def train_swap(config: SwapConfig, run_dir: str | os.PathLike, context: DistributedContext,
               resume: bool = False, log: Log | None = None, progress: bool | None = None) -> TrainingResult:
    """Runs swap training to config.loop.steps; writes RUN/generator.safetensors (EMA)."""
    log = log or (lambda message: None)
    check_run_folder(run_dir, config, resume)
    stage = build_swap(config, context, log)
    stage.run_dir = Path(run_dir)
    return run_training(stage, config.loop, run_dir, context, config, resume=resume, log=log, progress=progress)
