"""Personalised fine-tuning of the generator on one target clip (paper §3.2 and A.1).

Full-parameter fine-tuning of G on seconds of the target video, with the paper's stage-2
losses and optimiser ("the hyperparameters and objective losses are kept the same as the
generalized model", A.1): L1 + λ2·perceptual (λ2 = 0.1; VGG19 when the models folder holds
trained weights, else the shipped EfficientNet-Lite0 feature loss) + the non-saturating
adversarial loss against the StyleGAN2 discriminator (fine-tuned alongside, lazy R1), Adam with
lr 1e-3. The meshes are the tracked ones (for personalisation they are the exact guidance of
the frames being reconstructed). The reference frame of each sample is drawn from the 30
tracked frames nearest to it (paper, training), never the frame itself.

W+ option (StyleSync §3.3, `--w-plus`): the generator gains ΔW = MLP(f_f), an offset of every
W+ layer predicted from the encoder's vector (zero at the start), and the MLP and the synthesis
network are tuned with the face encoder and mapping fixed, under StyleSync's penalty
λ_p(‖ΔW‖² + ‖ΔP‖²) on the offsets and on the synthesis weights' drift from where they started
(means over elements here, so λ_p does not grow with the model's size).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.generator import ReSyncGenerator
from ..stages.frame_source import FrameSource
from ..stages.functions import overlay_crops, select_frames
from ..stages.model_files import (
    load_generator,
    load_perceptual_network,
    model_file,
    resolve_device,
    resolve_models_dir,
)
from ..stages.progress import PipelineCallbacks
from ..stages.tracking import track_video
from .generator_training import (
    RECONSTRUCTION_PERCEPTUAL_WEIGHT,
    GeneratorLossWeights,
    crops_from_uint8,
    crops_to_uint8,
    discriminator_loss,
    generator_loss,
    reference_indices,
)
from .loop import check_learning_rate

_PREPARE_CHUNK_FRAMES = 16

Log = Callable[[str], None]


@dataclass
class PersonalizeConfig:
    steps: int
    lr: float = 1e-3                # (paper A.1) the generalized model's Adam learning rate
    batch_size: int = 4
    # The clip is held as 256² uint8 crops and overlays (~390 kB a frame): 750 frames, 30 s at
    # 25 fps, is ~290 MB, and personalisation needs seconds of video, not minutes.
    max_frames: int = 750
    perceptual_weight: float = RECONSTRUCTION_PERCEPTUAL_WEIGHT
    seed: int = 0
    w_plus: bool = False            # StyleSync's W+ offsets + synthesis tuning instead of full fine-tuning
    w_plus_weight: float = 1.0      # λ_p (StyleSync sets its other λs to 1)
    w_offset_hidden: int = 512      # width of the ΔW MLP

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.max_frames < 1:
            raise ResyncerInputError(f"personalize needs steps, batch size and max frames of at least 1, got "
                                     f"{self.steps}, {self.batch_size} and {self.max_frames}")
        check_learning_rate(self.lr)
        if self.w_plus_weight < 0 or self.w_offset_hidden < 1:
            raise ResyncerInputError(f"W+ needs a weight of 0 or more and an MLP width of at least 1, got "
                                     f"{self.w_plus_weight} and {self.w_offset_hidden}")


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
        self._crops.append(crops_to_uint8(crops))
        self._overlays.append(crops_to_uint8(overlays))
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


def with_w_plus_offset(generator: ReSyncGenerator, hidden: int) -> ReSyncGenerator:
    """A copy of `generator` with a (zero) ΔW MLP added, or the generator itself when it has one."""
    if generator.w_offset is not None:
        return generator
    extended = ReSyncGenerator(dataclasses.replace(generator.config, w_offset_hidden=hidden))
    missing, unexpected = extended.load_state_dict(generator.state_dict(), strict=False)
    if unexpected or any(not name.startswith("w_offset.") for name in missing):
        raise ResyncerInputError("the generator's weights do not fit its own config; re-save the checkpoint")
    return extended.to(next(generator.parameters()).device)


def _w_plus_penalty(generator: ReSyncGenerator, f_f: torch.Tensor, start: dict[str, torch.Tensor]) -> torch.Tensor:
    """StyleSync's ‖ΔW‖² + ‖ΔP‖² (means): the offsets of this batch and the synthesis drift."""
    drift = torch.stack([(parameter - start[name]).pow(2).mean()
                         for name, parameter in generator.synthesis.named_parameters()]).mean()
    return generator.latent_offset(f_f).pow(2).mean() + drift


def personalize_generator(generator, clip: PersonalizationClip, config: PersonalizeConfig, discriminator=None,
                          perceptual=None, log: Log | None = None, callbacks: PipelineCallbacks | None = None):
    """Fine-tunes `generator` on `clip` for config.steps steps and returns it in eval mode: the
    same module, tuned in place, or with config.w_plus a copy that holds the ΔW MLP. Without a
    discriminator the adversarial term is left out, without a perceptual network (VGG19 or
    EfficientNet-Lite0) the perceptual one; the log says which terms are used."""
    log = log or (lambda message: None)
    callbacks = callbacks or PipelineCallbacks()
    device = next(generator.parameters()).device
    rng = np.random.default_rng(config.seed)
    weights = GeneratorLossWeights(perceptual=config.perceptual_weight, adversarial=1.0)
    terms = ["L1"] + (["perceptual"] if perceptual is not None else []) + (["adversarial"] if discriminator is not None else [])
    if config.w_plus:
        generator = with_w_plus_offset(generator, config.w_offset_hidden)
        generator.requires_grad_(False)
        tuned = [*generator.synthesis.parameters(), *generator.w_offset.parameters()]
        for parameter in tuned:
            parameter.requires_grad_(True)
        start = {name: parameter.detach().clone() for name, parameter in generator.synthesis.named_parameters()}
        terms.append(f"{config.w_plus_weight:g}·(‖ΔW‖² + ‖ΔP‖²)")
    else:
        tuned = list(generator.parameters())
    log(f"personalize: {len(clip)} tracked frames, {config.steps} steps, "
        f"{'W+ offsets and synthesis' if config.w_plus else 'all parameters'}, losses: {' + '.join(terms)}")
    generator.train()
    g_optimizer = torch.optim.Adam(tuned, lr=config.lr)
    if discriminator is not None:
        discriminator.train()
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.lr)
    for step in range(1, config.steps + 1):
        callbacks.check_cancel()
        targets = rng.integers(0, len(clip), size=config.batch_size)
        references = reference_indices(targets, len(clip), rng)
        real = crops_from_uint8(clip.crops[targets], device)
        mask = clip.masks[targets].to(device, torch.float32)
        f_f, maps = generator.encode_pair(crops_from_uint8(clip.overlays[targets], device),
                                          crops_from_uint8(clip.crops[references], device), mask)
        fake = generator.synthesize(generator.latent_from_features(f_f), maps)
        loss, parts = generator_loss(fake, real, perceptual, discriminator, weights)
        if config.w_plus:
            loss = loss + config.w_plus_weight * _w_plus_penalty(generator, f_f, start)
        g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        g_optimizer.step()
        if discriminator is not None:
            d_loss, _ = discriminator_loss(discriminator, real, fake, step)
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
        callbacks.report("personalize", step, config.steps)
        if step == 1 or step == config.steps or step % 50 == 0:
            log(f"step {step}/{config.steps}: loss {loss.item():.4f} (L1 {parts['l1']:.4f})")
    return generator.eval()


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
    perceptual = load_perceptual_network(folder, device, log)
    log(f"personalize: perceptual term: {perceptual.name}")
    clip = PersonalizationClip.from_video(video, tracker or FaceTracker(device), config.max_frames, callbacks)
    generator = personalize_generator(generator, clip, config, discriminator, perceptual.network, log, callbacks)
    return save_checkpoint(generator, generator.config, "generator", output,
                           extra_metadata={"resyncer.personalized_on": Path(video).name,
                                           "resyncer.personalize_steps": str(config.steps)})
