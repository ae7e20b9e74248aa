"""Personalised fine-tuning of the generator on one target clip (paper §3.2 and A.1).

Full-parameter fine-tuning of G on seconds of the target video, with the paper's stage-2
losses: L1 + λ2·VGG19 perceptual (λ2 = 0.1) + the non-saturating adversarial loss against the
StyleGAN2 discriminator. The meshes are the tracked ones (the paper's substitution for
Style-SyncFormer output early in training; for personalisation they are also the exact
guidance for the frames being reconstructed). The reference frame of each sample is drawn
from the 30 tracked frames nearest to it (paper, training), never the frame itself.

The perceptual term needs real ImageNet VGG19 weights: a models/vgg19.safetensors marked as
random-initialised (what `resyncer models init` writes) would only add noise, so it is skipped
and the log says so. The discriminator is fine-tuned alongside (logistic loss, lazy R1 as in
StyleGAN2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..models.checkpoint import is_random_initialised, load_checkpoint, save_checkpoint
from ..models.presets import MODEL_FILES
from ..stages.frame_source import FrameSource
from ..stages.functions import overlay_crops, select_frames
from ..stages.model_files import load_generator, model_file, resolve_device, resolve_models_dir
from ..stages.progress import PipelineCallbacks
from ..stages.tracking import track_video
from .image_losses import (
    RECONSTRUCTION_PERCEPTUAL_WEIGHT,
    discriminator_logistic_loss,
    generator_nonsaturating_loss,
    l1_loss,
    perceptual_loss,
    r1_penalty,
)

REFERENCE_WINDOW = 30          # (paper) the reference is one of the 30 nearest frames
R1_GAMMA = 10.0                # StyleGAN2's R1 weight at 256²
R1_INTERVAL = 16               # StyleGAN2's lazy regularisation interval
_PREPARE_CHUNK_FRAMES = 16

Log = Callable[[str], None]


@dataclass
class PersonalizeConfig:
    steps: int
    lr: float = 1e-4
    batch_size: int = 4
    # The clip is held as 256² uint8 crops and overlays (~390 kB a frame): 750 frames, 30 s at
    # 25 fps, is ~290 MB, and personalisation needs seconds of video, not minutes.
    max_frames: int = 750
    perceptual_weight: float = RECONSTRUCTION_PERCEPTUAL_WEIGHT
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.max_frames < 1:
            raise ResyncerInputError(f"personalize needs steps, batch size and max frames of at least 1, got "
                                     f"{self.steps}, {self.batch_size} and {self.max_frames}")
        if not self.lr > 0:
            raise ResyncerInputError(f"learning rate must be positive, got {self.lr}")


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, torch.float32) / 127.5 - 1


class PersonalizationClip:
    """The tracked frames of a target clip as training samples: aligned crops I_t, tracked-mesh
    overlays I^AM_t and masks A_t, stored compactly as uint8 on the CPU."""

    def __init__(self) -> None:
        self._crops: list[torch.Tensor] = []
        self._overlays: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    def add(self, frames, track: FaceTrack, renderer=None) -> None:
        """Adds the tracked frames among frames [T,H,W,3] (track: theirs)."""
        faces = np.flatnonzero(track.valid)
        if not len(faces):
            return
        faces_track = select_frames(track, faces)
        crops, overlays, masks = overlay_crops(np.asarray(frames)[faces], faces_track,
                                               torch.from_numpy(faces_track.canonical), "mouth", renderer)
        self._crops.append(_to_uint8(crops))
        self._overlays.append(_to_uint8(overlays))
        self._masks.append(masks > 0.5)

    @classmethod
    def from_frames(cls, frames, track: FaceTrack) -> PersonalizationClip:
        clip = cls()
        clip.add(frames, track)
        return clip.finish()

    @classmethod
    def from_video(cls, path: str | os.PathLike, tracker, max_frames: int,
                   callbacks: PipelineCallbacks | None = None) -> PersonalizationClip:
        """Tracks the first max_frames of a video, then builds the samples chunk by chunk."""
        track = track_video(tracker, path, max_frames, callbacks=callbacks)
        clip = cls()
        with FrameSource(path) as source:
            for start in range(0, len(track), _PREPARE_CHUNK_FRAMES):
                stop = min(start + _PREPARE_CHUNK_FRAMES, len(track))
                clip.add(source.read(start, stop), track.slice(start, stop))
        return clip.finish()

    def finish(self) -> PersonalizationClip:
        if not self._crops:
            raise ResyncerInputError("no face was tracked in the personalisation clip; give a video that shows the face")
        self.crops, self.overlays, self.masks = (torch.cat(parts) for parts in (self._crops, self._overlays, self._masks))
        self._crops = self._overlays = self._masks = []
        return self

    def __len__(self) -> int:
        return len(self.crops)


def reference_indices(targets: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """For each target sample, a random other sample among the REFERENCE_WINDOW nearest in
    the clip (the clip's own sample when it has only one)."""
    if count == 1:
        return np.zeros_like(targets)
    span = min(REFERENCE_WINDOW, count - 1)
    low = np.clip(targets - span // 2, 0, count - 1 - span)
    # Draw among the span + 1 positions low … low+span and skip the target itself.
    draws = low + rng.integers(0, span, size=len(targets))
    return np.where(draws >= targets, draws + 1, draws)


def personalize_generator(generator, clip: PersonalizationClip, config: PersonalizeConfig, discriminator=None,
                          vgg=None, log: Log | None = None, callbacks: PipelineCallbacks | None = None):
    """Fine-tunes `generator` in place on `clip` for config.steps steps and returns it in eval
    mode. Without a discriminator the adversarial term is left out, without a (pretrained)
    vgg the perceptual one; the log says which terms are used."""
    log = log or (lambda message: None)
    callbacks = callbacks or PipelineCallbacks()
    device = next(generator.parameters()).device
    rng = np.random.default_rng(config.seed)
    terms = ["L1"] + (["VGG"] if vgg is not None else []) + (["adversarial"] if discriminator is not None else [])
    log(f"personalize: {len(clip)} tracked frames, {config.steps} steps, losses: {' + '.join(terms)}")
    generator.train()
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(0.0, 0.99))
    if discriminator is not None:
        discriminator.train()
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(0.0, 0.99))
    for step in range(1, config.steps + 1):
        callbacks.check_cancel()
        targets = rng.integers(0, len(clip), size=config.batch_size)
        references = reference_indices(targets, len(clip), rng)
        real = _to_float(clip.crops[targets], device)
        fake = generator(_to_float(clip.overlays[targets], device), _to_float(clip.crops[references], device),
                         mask=clip.masks[targets].to(device, torch.float32))
        l1 = l1_loss(fake, real)
        loss = l1
        if vgg is not None:
            loss = loss + config.perceptual_weight * perceptual_loss(vgg(fake), vgg(real))
        if discriminator is not None:
            discriminator.requires_grad_(False)
            loss = loss + generator_nonsaturating_loss(discriminator(fake))
            discriminator.requires_grad_(True)
        g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        g_optimizer.step()
        if discriminator is not None:
            d_loss = discriminator_logistic_loss(discriminator(real), discriminator(fake.detach()))
            if step % R1_INTERVAL == 0:
                real_for_r1 = real.detach().requires_grad_(True)
                d_loss = d_loss + R1_GAMMA / 2 * R1_INTERVAL * r1_penalty(discriminator(real_for_r1), real_for_r1)
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
        callbacks.report("personalize", step, config.steps)
        if step == 1 or step == config.steps or step % 50 == 0:
            log(f"step {step}/{config.steps}: loss {loss.item():.4f} (L1 {l1.item():.4f})")
    return generator.eval()


def _perceptual_network(models_dir: Path, device: torch.device, log: Log):
    path = models_dir / MODEL_FILES["vgg19"]
    if not path.is_file():
        log(f"no VGG19 at {path}: perceptual loss skipped")
        return None
    if is_random_initialised(path):
        log(f"{path} is random-initialised (not ImageNet weights): perceptual loss skipped")
        return None
    return load_checkpoint(path, kind="vgg19", device=device)[0]


def personalize_video(video: str | os.PathLike, output: str | os.PathLike, config: PersonalizeConfig,
                      models_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                      generator_path: str | os.PathLike | None = None, log: Log | None = None,
                      callbacks: PipelineCallbacks | None = None, tracker=None) -> Path:
    """Fine-tunes the models folder's generator (or generator_path) on `video` and saves it
    to `output` (atomic: an interrupted run leaves no file). Returns `output`."""
    from ..face import FaceTracker  # the landmark networks load only when a clip is tracked

    log = log or (lambda message: None)
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ResyncerInputError(f"output {output} must be a .safetensors file; name it e.g. generator_person.safetensors")
    torch.manual_seed(config.seed)
    device = resolve_device(device)
    folder = resolve_models_dir(models_dir)
    generator = load_generator(folder, device, generator_path)
    discriminator = load_checkpoint(model_file(folder, "discriminator"), kind="discriminator", device=device)[0]
    vgg = _perceptual_network(folder, device, log)
    clip = PersonalizationClip.from_video(video, tracker or FaceTracker(device), config.max_frames, callbacks)
    personalize_generator(generator, clip, config, discriminator, vgg, log, callbacks)
    return save_checkpoint(generator, generator.config, "generator", output,
                           extra_metadata={"resyncer.personalized_on": Path(video).name,
                                           "resyncer.personalize_steps": str(config.steps)})
