"""Stage 2: training the style-based generator (ReSyncer §3.2, A.1) on a preprocessed dataset.

Input [I^AM_t, I_ref]: the overlay of frame t (the white mesh over mask A of the posed neutral
template, crop_dataset.py) and a reference among the 30 nearest frames (paper A.1). Losses
(generator_training.py): L1 + 0.1·perceptual (VGG19 when the models folder holds trained
weights, else the shipped EfficientNet-Lite0 feature loss) + non-saturating adversarial against
a StyleGAN2 discriminator trained with lazy R1. Adam, lr 1e-3 (paper, "the whole model").
Meshes: the tracked ones first; from step `predicted_meshes_from` on (with --syncformer) the
Style-SyncFormer's predictions from the clip's audio (paper A.1: "until a certain convergence").
The generator's EMA (decay `ema_decay`) is what is exported and sampled.

Outputs in RUN: generator.safetensors (EMA weights; loads into `resyncer lipsync --generator`),
discriminator.safetensors (for `resyncer train swap`), samples/step-NNNNNNNN.png every
`sample_every` steps (columns overlay, reference, output, target), and the loop's
checkpoints/, log.jsonl. Validation: PSNR and SSIM of the EMA generator on held-out clips with
the reference 75 frames away (the paper's same-identity evaluation).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..metrics.image import psnr, ssim
from ..models.checkpoint import TRAINING_CONFIG_KEY, load_checkpoint, save_checkpoint
from ..models.discriminator import Discriminator
from ..models.generator import ReSyncGenerator
from ..models.presets import preset_config
from ..stages.face_identity import (MAX_RECORDED_FACES, evenly_spaced, face_descriptor_network, mean_face_descriptor,
                                   trained_faces_metadata)
from ..stages.model_files import LossNetwork, load_perceptual_network, trained_audio_encoder_spec
from .crop_dataset import DEFAULT_CACHED_CLIPS, CropDataset, ImageBatch
from .dataset import read_index
from .distributed import DistributedContext, accumulated_backward, sample_rng, unwrap_model, wrap_model
from .ema import ModelEMA, check_ema_decay
from .generator_training import (
    R1_GAMMA,
    R1_INTERVAL,
    REFERENCE_WINDOW,
    GeneratorLossWeights,
    crops_from_uint8,
    discriminator_loss,
    generator_loss,
    write_sample_grid,
)
from .loop import Log, LoopConfig, TrainingResult, check_learning_rate, check_run_folder, run_training, seed_everything
from .stage1 import split_clips

GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
SAMPLES_FOLDER = "samples"
SAMPLE_ROWS = 4
VALIDATION_FRAMES = 8                 # per held-out clip


@dataclass(kw_only=True)
class ImageTrainingConfig:
    """What stage 2 and swap training share (ImageStage reads these); each is saved into its
    run's checkpoints and generator file."""

    data: str
    models: str | None = None             # trained vgg19 (else EfficientNet-Lite0) and, for swap, arcface here
    lr: float = 1e-3                      # (paper) Adam, generator and discriminator
    perceptual_weight: float = 0.1        # (paper) λ2
    adversarial_weight: float = 1.0
    lower_face_weight: float = 0.0        # extra L1 inside mask A (not in the paper; generator_training)
    ema_decay: float = 0.999
    reference_window: int = REFERENCE_WINDOW
    sample_every: int = 500
    max_cached_clips: int = DEFAULT_CACHED_CLIPS
    validation_clips: int | None = None
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        check_learning_rate(self.lr)
        check_ema_decay(self.ema_decay)
        if self.sample_every < 1 or self.reference_window < 1:
            raise ResyncerInputError("sample every and reference window must be at least 1")
        if self.lower_face_weight < 0:
            raise ResyncerInputError(f"lower-face weight {self.lower_face_weight} must be 0 or more")


@dataclass(kw_only=True)
class Stage2Config(ImageTrainingConfig):
    """Everything a stage-2 run depends on."""

    preset: str = "tiny"
    init_generator: str | None = None     # start from this generator (else the preset's random one)
    hide_reference_lower_face: bool = False  # the generator option of that name (not in the paper)
    syncformer: str | None = None         # stage-1 result for predicted meshes
    predicted_meshes_from: int | None = None  # step from which predicted meshes replace tracked ones
    r1_gamma: float = R1_GAMMA
    r1_interval: int = R1_INTERVAL
    style_frames: int = 90                # (paper) T_S for the predicted meshes' style reference

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.predicted_meshes_from is not None and not self.syncformer:
            raise ResyncerInputError("--predicted-meshes-from needs --syncformer (a stage-1 syncformer.safetensors)")
        if self.r1_interval < 1:
            raise ResyncerInputError("R1 interval must be at least 1")


def _read_dataset(config, log: Log) -> tuple[CropDataset, CropDataset | None]:
    clips = [clip for clip in read_index(config.data) if clip.has_crops]
    if not clips:
        raise ResyncerInputError(f"{config.data} has no clip with crop video; make it with `resyncer preprocess --videos`")
    train_clips, validation_clips = split_clips(clips, config.validation_clips)
    log(f"{len(train_clips)} training clips, {len(validation_clips)} held out")
    train = CropDataset(train_clips, config.max_cached_clips, config.reference_window)
    return train, (CropDataset(validation_clips, config.max_cached_clips) if validation_clips else None)


class ImageStage:
    """The generator, its EMA, perceptual network, data and sample grids that stage 2, swap and
    personalisation share; subclasses define the discriminator's role and train_step."""

    name = "image"
    run_dir: Path | None = None   # set by the train_* function: where sample grids go
    _trained_faces: dict[str, str] | None = None

    def __init__(self, config, generator: ReSyncGenerator, discriminator: Discriminator | None, data: CropDataset,
                 validation: CropDataset | None, context: DistributedContext, log: Log,
                 perceptual: LossNetwork | None = None):
        """`perceptual`: the perceptual network when the caller holds one (a ComfyUI node), else
        it is loaded from config.models. A discriminator of None (personalisation without one)
        leaves the adversarial term out."""
        self.config, self.context = config, context
        self.generator = generator.to(context.device)
        self.discriminator = discriminator.to(context.device) if discriminator is not None else None
        self.ema = ModelEMA(self.generator, config.ema_decay)
        self.perceptual = perceptual or load_perceptual_network(Path(config.models) if config.models else None,
                                                                context.device, log)
        log(f"{self.name}: perceptual term: {self.perceptual.name}")
        self.data, self.validation_data = data, validation
        self.weights = GeneratorLossWeights(perceptual=config.perceptual_weight, adversarial=config.adversarial_weight,
                                            lower_face=config.lower_face_weight)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr)

    def uses_predicted_meshes(self, step: int) -> bool:
        start = self.config.predicted_meshes_from
        return start is not None and step >= start

    def samples(self, step: int, positions: np.ndarray) -> list[tuple[int, int, int]]:
        return [self.data.draw(sample_rng(self.config.loop.seed, step, int(position))) for position in positions]

    def sample_columns(self) -> list[torch.Tensor]:
        """The sample grid's columns: overlay, reference, EMA output, target of fixed samples
        (drawn as 'step 0', which training never uses)."""
        batch = self.data.batch(self.samples(0, np.arange(SAMPLE_ROWS)), self.context.device)
        return [batch.overlays, batch.references, self.render(self.ema.average.eval(), batch), batch.targets]

    @torch.no_grad()
    def render(self, generator, batch: ImageBatch) -> torch.Tensor:
        return generator(batch.overlays, batch.references, mask=batch.masks[:, None]).clamp(-1, 1)

    def maybe_write_samples(self, step: int) -> None:
        """RUN/samples/step-N.png every sample_every steps (rank 0)."""
        if self.context.is_main and self.run_dir is not None and step % self.config.sample_every == 0:
            write_sample_grid(self.run_dir / SAMPLES_FOLDER / f"step-{step:08d}.png", self.sample_columns())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.validation_data is None:
            return {}
        generator = self.ema.average.eval()
        outputs, targets = [], []
        for index, clip in enumerate(self.validation_data.clips):
            frames, references = clip.evaluation_frames(VALIDATION_FRAMES)
            batch = self.validation_data.batch([(index, int(t), int(r)) for t, r in zip(frames, references)],
                                               self.context.device)
            outputs.append(self.render(generator, batch).cpu())
            targets.append(batch.targets.cpu())
        return {"psnr": psnr(torch.cat(outputs), torch.cat(targets)), "ssim": ssim(torch.cat(outputs), torch.cat(targets))}

    def trained_faces(self) -> dict[str, str]:
        """The generator file's record of the faces it is trained on (stages.face_identity):
        each speaker's mean face descriptor over crops of its first clip, for a dataset of at
        most MAX_RECORDED_FACES speakers. Computed once."""
        if self._trained_faces is None:
            first_clips: dict[str, int] = {}
            for index, clip in enumerate(self.data.clips):
                first_clips.setdefault(clip.record.speaker, index)
            descriptors = []
            if len(first_clips) <= MAX_RECORDED_FACES:
                network = face_descriptor_network(self.context.device)
                for index in first_clips.values():
                    clip = self.data.clips[index]
                    frames = torch.from_numpy(clip.tracked[evenly_spaced(len(clip.tracked))])
                    descriptors.append(mean_face_descriptor(network, crops_from_uint8(self.data.crops(index)[frames],
                                                                                      self.context.device)))
            self._trained_faces = trained_faces_metadata(descriptors)
        return self._trained_faces

    def generator_metadata(self) -> dict[str, str]:
        """What the exported generator file records: this run's config and its trained faces."""
        return {TRAINING_CONFIG_KEY: json.dumps(dataclasses.asdict(self.config), sort_keys=True),
                **self.trained_faces()}

    def export_generator(self, run_dir: Path) -> Path:
        return save_checkpoint(self.ema.average, self.generator.config, "generator", Path(run_dir) / GENERATOR_FILE,
                               extra_metadata=self.generator_metadata())


class Stage2(ImageStage):
    """Generator + discriminator training (see loop.py for the protocol)."""

    name = "stage2"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trained_generator = wrap_model(self.generator, self.context)
        if self.discriminator is not None:
            self.trained_discriminator = wrap_model(self.discriminator, self.context)
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.config.lr)

    def state_modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "generator_ema": self.ema}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator_adam": self.g_optimizer, "discriminator_adam": self.d_optimizer}

    def generator_penalty(self, batch: ImageBatch) -> torch.Tensor | None:
        """An extra term of the generator's loss on `batch` (personalisation's W+ penalty); stage 2 has none."""
        return None

    def train_step(self, step: int, micro_batches: list[np.ndarray]) -> dict[str, float]:
        self.trained_generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        predicted = self.uses_predicted_meshes(step)
        batches = [self.data.batch(self.samples(step, positions), self.context.device, predicted)
                   for positions in micro_batches]
        fakes, terms = [], []

        def generator_step(batch: ImageBatch):
            def compute() -> torch.Tensor:
                with self.context.autocast(self.config.loop.bf16):
                    fake = self.trained_generator(batch.overlays, batch.references, mask=batch.masks[:, None]).float()
                fakes.append(fake.detach())
                loss, parts = generator_loss(fake, batch.targets, self.perceptual.network, self.discriminator, self.weights,
                                             batch.masks)
                penalty = self.generator_penalty(batch)
                if penalty is not None:
                    loss = loss + penalty
                    parts["penalty"] = float(penalty.detach())
                terms.append(parts)
                return loss
            return compute

        def discriminator_step(batch: ImageBatch, fake: torch.Tensor):
            def compute() -> torch.Tensor:
                loss, parts = discriminator_loss(self.trained_discriminator, batch.targets, fake, step,
                                                 self.config.r1_gamma, self.config.r1_interval)
                terms.append(parts)
                return loss
            return compute

        self.g_optimizer.zero_grad(set_to_none=True)
        loss = accumulated_backward(self.trained_generator, [generator_step(b) for b in batches], len(batches))
        self.g_optimizer.step()
        if self.discriminator is not None:
            self.d_optimizer.zero_grad(set_to_none=True)
            accumulated_backward(self.trained_discriminator, [discriminator_step(b, f) for b, f in zip(batches, fakes)],
                                 len(batches))
            self.d_optimizer.step()
        self.ema.update(self.generator)
        self.maybe_write_samples(step)
        metrics = {"loss": loss}
        for name in {key for part in terms for key in part}:
            metrics[name] = float(np.mean([part[name] for part in terms if name in part]))
        return metrics

    def export(self, run_dir: Path) -> list[Path]:
        return [self.export_generator(run_dir),
                save_checkpoint(unwrap_model(self.discriminator), self.discriminator.config, "discriminator",
                                Path(run_dir) / DISCRIMINATOR_FILE)]


def build_stage2(config: Stage2Config, context: DistributedContext, log: Log) -> Stage2:
    data, validation = _read_dataset(config, lambda message: log(f"stage2: {message}"))
    seed_everything(config.loop.seed)  # the same initial weights on every rank
    if config.init_generator:
        generator = load_checkpoint(config.init_generator, kind="generator")[0]
    else:
        generator = ReSyncGenerator(preset_config(config.preset, "generator"))
    if config.hide_reference_lower_face:
        # The option adds no weights: the same generator (random or --init), told to hide it.
        generator.config = dataclasses.replace(generator.config, hide_reference_lower_face=True)
    discriminator = Discriminator(preset_config(config.preset, "discriminator"))
    if config.syncformer:
        syncformer = load_checkpoint(config.syncformer, kind="syncformer", device=context.device)[0]
        spec = trained_audio_encoder_spec(config.syncformer)
        if spec is None:
            raise ResyncerInputError(f"{config.syncformer} does not record its audio encoder; use a file written by "
                                     "`resyncer train stage1`")
        from .dataset import cache_features

        if context.is_main:
            cache_features([clip.record for clip in data.clips], spec, device=context.device)
        context.barrier()
        data.predict_meshes(syncformer, spec, config.style_frames)
        log(f"stage2: predicted meshes of {len(data.clips)} clips ready, used from step {config.predicted_meshes_from}")
    return Stage2(config, generator, discriminator, data, validation, context, log)


def train_stage2(config: Stage2Config, run_dir: str | os.PathLike, context: DistributedContext,
                 resume: bool = False, log: Log | None = None, progress: bool | None = None) -> TrainingResult:
    """Runs stage 2 to config.loop.steps; writes RUN/generator.safetensors and discriminator.safetensors."""
    log = log or (lambda message: None)
    check_run_folder(run_dir, config, resume)
    stage = build_stage2(config, context, log)
    stage.run_dir = Path(run_dir)
    return run_training(stage, config.loop, run_dir, context, config, resume=resume, log=log, progress=progress)
