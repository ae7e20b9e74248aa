"""Personalised fine-tuning of the generator on one target clip (paper §3.2 and A.1).

"The hyperparameters and objective losses are kept the same as the generalized model" (A.1):
personalisation IS stage 2 (stage2.Stage2: its samples, overlays, masks, reference draw, value
ranges, losses, discriminator step with lazy R1 and EMA), run on the target clip held in memory
(crop_dataset.CropClip.from_track, the arrays `resyncer preprocess` would store) for a few
steps, with these settings:

    loss weights   the shipped generator's stage-2 run (weights/NOTICE.generator): L1 + 0.1·perceptual
                   + 5·L1 inside mask A + 0.1·adversarial against its discriminator (fine-tuned
                   alongside). The paper's adversarial weight 1 without the mask term lets a
                   discriminator from a short run repaint the lower face within 20 steps (measured:
                   the demo clip's lower face went from RGB 179/152/130 to 136/107/7, yellow).
    learning rate  1e-4, a tenth of stage 2's: Adam starts here without the run's moment
                   estimates, and its first steps move every weight by about the learning rate
                   (measured at 1e-3: the loss jumps from 0.58 to 2.1 at step 2 and held-out
                   lower-face PSNR falls 1.6 dB in 20 steps; at 1e-4 it rises).
    reference      among the clip's frames (window REFERENCE_WINDOW_FRAMES, the shipped
                   generator's second phase), hidden under A when the generator hides it.
    EMA            none: a few steps are too few for an average to move off the start.

Held-out check: HELD_OUT_FRAMES frames (by default) spread over the clip are kept out of the fine-tune (as
targets and as references), and their lower face is scored before and after as stage 2's
evaluation scores it (`resyncer eval --compare-renderers`): the output's mask-A region pasted
into the real crop, reference SAME_IDENTITY_REFERENCE_OFFSET frames away; PSNR, SSIM, mouth
landmark distance and the shift of the lower face's mean colour. A still (or a clip too short
to spare them) is checked on its tuned frames. A result that got worse (lower PSNR) is still
returned and written, with a one-line warning: the caller decides.

The tuned file records the face it was tuned on (stages.face_identity, as stage 2 records its
speakers), so the `auto` renderer picks it for that face and the mesh warp for others.

W+ option (StyleSync §3.3, `--w-plus`): the generator gains ΔW = MLP(f_f), an offset of every
W+ layer predicted from the encoder's vector (zero at the start), and the MLP and the synthesis
network are tuned with the face encoder and mapping fixed, under StyleSync's penalty
λ_p(‖ΔW‖² + ‖ΔP‖²) on the offsets and on the synthesis weights' drift from where they started
(means over elements here, so λ_p does not grow with the model's size).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.track import FaceTrack
from ..metrics.image import psnr, ssim
from ..metrics.landmarks import landmark_distance, track_crops
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.generator import ReSyncGenerator
from ..stages.frame_source import FrameSource
from ..stages.functions import aligned_crops, select_frames
from ..stages.model_files import LossNetwork, load_generator, model_file, resolve_device, resolve_models_dir
from ..stages.progress import PipelineCallbacks
from ..stages.tracking import track_video
from .crop_dataset import SAME_IDENTITY_REFERENCE_OFFSET, CropClip, CropDataset
from .distributed import DistributedContext
from .evaluate import paste_lower_face
from .generator_training import crops_to_uint8
from .loop import LoopConfig
from .stage2 import Stage2, Stage2Config

_PREPARE_CHUNK_FRAMES = 16
DEFAULT_STEPS = 20
HELD_OUT_FRAMES = 8
REFERENCE_WINDOW_FRAMES = 250
PERSONALIZED_ON_KEY = "resyncer.personalized_on"
HELD_OUT_KEY = "resyncer.personalize_held_out"

Log = Callable[[str], None]


@dataclass
class PersonalizeConfig:
    steps: int = DEFAULT_STEPS
    lr: float = 1e-4                # a tenth of stage 2's (module docstring)
    batch_size: int = 4
    # The clip is held as 256² uint8 crops (~200 kB a frame): 750 frames, 30 s at 25 fps, is
    # ~150 MB, and personalisation needs seconds of video, not minutes.
    max_frames: int = 750
    seed: int = 0
    perceptual_weight: float = 0.1  # (paper) λ2
    adversarial_weight: float = 0.1
    lower_face_weight: float = 5.0
    held_out_frames: int = HELD_OUT_FRAMES   # kept out of tuning and scored before and after
    w_plus: bool = False            # StyleSync's W+ offsets + synthesis tuning instead of full fine-tuning
    w_plus_weight: float = 1.0      # λ_p (StyleSync sets its other λs to 1)
    w_offset_hidden: int = 512      # width of the ΔW MLP

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.max_frames < 1 or self.held_out_frames < 1:
            raise ResyncerInputError(f"personalize needs steps, batch size, max frames and held-out frames of at "
                                     f"least 1, got {self.steps}, {self.batch_size}, {self.max_frames} and "
                                     f"{self.held_out_frames}")
        if self.w_plus_weight < 0 or self.w_offset_hidden < 1:
            raise ResyncerInputError(f"W+ needs a weight of 0 or more and an MLP width of at least 1, got "
                                     f"{self.w_plus_weight} and {self.w_offset_hidden}")
        self.stage2_config("")  # the settings stage 2 shares are checked where stage 2 checks them

    def stage2_config(self, clip_name: str, models: str | None = None,
                      hide_reference_lower_face: bool = False) -> Stage2Config:
        """The stage-2 run this personalisation is (recorded in the tuned file)."""
        return Stage2Config(data=clip_name, models=models, lr=self.lr, perceptual_weight=self.perceptual_weight,
                            adversarial_weight=self.adversarial_weight, lower_face_weight=self.lower_face_weight,
                            ema_decay=0.0, reference_window=REFERENCE_WINDOW_FRAMES,
                            hide_reference_lower_face=hide_reference_lower_face,
                            loop=LoopConfig(steps=self.steps, batch_size=self.batch_size, seed=self.seed))


# ----------------------------------------------------------------------------------------- clip

def clip_from_frames(frames, track: FaceTrack, name: str = "personalisation clip") -> CropClip:
    """The tracked frames among frames [T,H,W,3] (track: theirs) as an in-memory stage-2 clip."""
    return _clip_from_chunks([(np.asarray(frames), track)], track, name)


def clip_from_video(path: str | os.PathLike, tracker, max_frames: int,
                    callbacks: PipelineCallbacks | None = None) -> CropClip:
    """Tracks the first max_frames of a video, then crops its tracked frames chunk by chunk."""
    track = track_video(tracker, path, max_frames, callbacks=callbacks)
    with FrameSource(path) as source:
        chunks = ((source.read(start, min(start + _PREPARE_CHUNK_FRAMES, len(track))),
                   track.slice(start, start + _PREPARE_CHUNK_FRAMES))
                  for start in range(0, len(track), _PREPARE_CHUNK_FRAMES))
        return _clip_from_chunks(chunks, track, Path(path).name)


def _clip_from_chunks(chunks, track: FaceTrack, name: str) -> CropClip:
    crops = []
    for frames, chunk_track in chunks:
        faces = np.flatnonzero(chunk_track.valid)
        if len(faces):
            crops.append(crops_to_uint8(aligned_crops(frames[faces], select_frames(chunk_track, faces))))
    if not crops:
        raise ResyncerInputError("no face was tracked in the personalisation clip; give a video that shows the face")
    return CropClip.from_track(name, select_frames(track, np.flatnonzero(track.valid)), torch.cat(crops))


def held_out_split(clip: CropClip, count: int) -> tuple[np.ndarray, bool]:
    """(held-out frames, whether they are kept out of tuning): `count` frames spread over the
    clip when it has at least four times as many, else all its frames, tuned on and checked."""
    frames = clip.tracked
    if len(frames) < 4 * count:
        return frames, False
    return frames[np.linspace(0, len(frames) - 1, count).round().astype(np.int64)], True


# ------------------------------------------------------------------------------------- check

@dataclass(frozen=True)
class LowerFaceScores:
    psnr: float             # dB, the output's lower face pasted into the real crop
    ssim: float
    lmd: float              # mouth landmark distance, crop pixels (NaN when no face is re-tracked)
    colour_shift: float     # largest |mean output − mean input| over R, G, B inside A, 0..255 levels

    def __str__(self) -> str:
        return (f"PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.3f}, LMD {self.lmd:.2f} px, "
                f"colour shift {self.colour_shift:.1f}")


@torch.no_grad()
def lower_face_scores(stage: Stage2, generator: ReSyncGenerator, frames: np.ndarray, tracker) -> LowerFaceScores:
    """The lower face of `frames` of the stage's (one) clip as `resyncer eval --compare-renderers`
    scores it; the reference of each is the frame SAME_IDENTITY_REFERENCE_OFFSET further on (the
    clip's every frame has a face: clip_from_*)."""
    references = (frames + SAME_IDENTITY_REFERENCE_OFFSET) % len(stage.data.clips[0])
    batch = stage.data.batch([(0, int(t), int(r)) for t, r in zip(frames, references)], stage.context.device)
    outputs = stage.render(generator.eval(), batch).cpu()
    targets, masks = batch.targets.cpu(), batch.masks.cpu()
    pasted = paste_lower_face(outputs, targets, masks)

    def mean_colour(images: torch.Tensor) -> torch.Tensor:
        """Mean R, G, B inside A, in 0..255 levels."""
        return ((images + 1) * 127.5 * masks[:, None]).sum(dim=(0, 2, 3)) / masks.sum().clamp_min(1.0)

    shift = float((mean_colour(outputs) - mean_colour(targets)).abs().max())
    lmd = landmark_distance(track_crops(tracker, pasted), track_crops(tracker, targets))
    return LowerFaceScores(psnr(pasted, targets), ssim(pasted, targets), lmd, shift)


# ------------------------------------------------------------------------------------ tuning

class Personalization(Stage2):
    """Stage 2 on one in-memory clip, with StyleSync's penalty in W+ mode."""

    name = "personalize"

    def __init__(self, config: PersonalizeConfig, stage2_config: Stage2Config, generator: ReSyncGenerator,
                 discriminator, data: CropDataset, context: DistributedContext, log: Log,
                 perceptual: LossNetwork | None):
        super().__init__(stage2_config, generator, discriminator, data, None, context, log, perceptual)
        self.personalize_config = config
        self.synthesis_start = {name: parameter.detach().clone()
                                for name, parameter in self.generator.synthesis.named_parameters()}

    def generator_penalty(self, batch) -> torch.Tensor | None:
        """W+: λ_p(‖ΔW‖² + ‖ΔP‖²), the offsets of this batch and the synthesis drift (means)."""
        if not self.personalize_config.w_plus:
            return None
        with torch.no_grad():  # the encoder is fixed in W+ mode
            f_f, _ = self.generator.encode_pair(batch.overlays, batch.references, batch.masks[:, None])
        drift = torch.stack([(parameter - self.synthesis_start[name]).pow(2).mean()
                             for name, parameter in self.generator.synthesis.named_parameters()]).mean()
        return self.personalize_config.w_plus_weight * (self.generator.latent_offset(f_f).pow(2).mean() + drift)


def with_w_plus_offset(generator: ReSyncGenerator, hidden: int) -> ReSyncGenerator:
    """A copy of `generator` with a (zero) ΔW MLP added, or the generator itself when it has one."""
    if generator.w_offset is not None:
        return generator
    extended = ReSyncGenerator(dataclasses.replace(generator.config, w_offset_hidden=hidden))
    missing, unexpected = extended.load_state_dict(generator.state_dict(), strict=False)
    if unexpected or any(not name.startswith("w_offset.") for name in missing):
        raise ResyncerInputError("the generator's weights do not fit its own config; re-save the checkpoint")
    return extended.to(next(generator.parameters()).device)


@dataclass
class PersonalizationResult:
    generator: ReSyncGenerator      # the tuned generator, in eval mode
    before: LowerFaceScores
    after: LowerFaceScores
    metadata: dict[str, str]        # what its file records: the run, the face, the check

    @property
    def got_worse(self) -> bool:
        return self.after.psnr < self.before.psnr


def personalize_generator(generator: ReSyncGenerator, clip: CropClip, config: PersonalizeConfig, discriminator=None,
                          perceptual: LossNetwork | None = None, log: Log | None = None,
                          callbacks: PipelineCallbacks | None = None, tracker=None,
                          models: str | None = None) -> PersonalizationResult:
    """Fine-tunes `generator` on `clip` for config.steps steps (module docstring): the same module
    tuned in place, or with config.w_plus a copy that holds the ΔW MLP. Without a discriminator
    the adversarial term is left out; without a perceptual network the one of `models` (the
    folder's VGG19, else EfficientNet-Lite0) is loaded. Logs the loss and the held-out check."""
    from ..face import FaceTracker  # the landmark networks load only when a check runs

    log = log or (lambda message: None)
    callbacks = callbacks or PipelineCallbacks()
    device = next(generator.parameters()).device
    tracker = tracker or FaceTracker(device)
    held_out, kept_out = held_out_split(clip, config.held_out_frames)
    training_clip = CropClip(clip.record, _arrays_without(clip, held_out if kept_out else np.zeros(0, np.int64)),
                             clip.frames)
    data = CropDataset([training_clip], reference_window=REFERENCE_WINDOW_FRAMES)
    if config.w_plus:
        generator = with_w_plus_offset(generator, config.w_offset_hidden)
        generator.requires_grad_(False)
        for parameter in [*generator.synthesis.parameters(), *generator.w_offset.parameters()]:
            parameter.requires_grad_(True)
    stage2_config = config.stage2_config(clip.record.clip, models, generator.config.hide_reference_lower_face)
    stage = Personalization(config, stage2_config, generator, discriminator, data,
                            DistributedContext(device=device), log, perceptual)
    terms = ["L1", f"{config.lower_face_weight:g}·L1 in A", f"{config.perceptual_weight:g}·{stage.perceptual.name}"]
    if discriminator is not None:
        terms.append(f"{config.adversarial_weight:g}·adversarial")
    if config.w_plus:
        terms.append(f"{config.w_plus_weight:g}·(‖ΔW‖² + ‖ΔP‖²)")
    log(f"personalize: {len(training_clip.tracked)} frames, {config.steps} steps at lr {config.lr:g}, "
        f"{'W+ offsets and synthesis' if config.w_plus else 'all parameters'}, losses: {' + '.join(terms)}")
    checked_on = f"{len(held_out)} held-out frames" if kept_out else f"its {len(held_out)} tuned frame(s) (too short to hold any out)"
    before = lower_face_scores(stage, stage.generator, held_out, tracker)
    log(f"personalize: lower face on {checked_on}, before: {before}")
    losses = []
    report_every = max(1, config.steps // 10)
    for step in range(1, config.steps + 1):
        callbacks.check_cancel()
        losses.append(stage.train_step(step, [np.arange(config.batch_size)])["loss"])
        callbacks.report("personalize", step, config.steps)
        if step % report_every == 0 or step == config.steps:
            log(f"personalize: step {step}/{config.steps}: loss {np.mean(losses[-report_every:]):.4f} "
                f"(mean of the last {min(report_every, len(losses))})")
    tuned = stage.ema.average.eval()
    after = lower_face_scores(stage, tuned, held_out, tracker)
    log(f"personalize: lower face on {checked_on}, after:  {after}")
    metadata = {**stage.generator_metadata(), PERSONALIZED_ON_KEY: clip.record.clip,
                HELD_OUT_KEY: json.dumps({"frames": len(held_out), "kept_out": kept_out,
                                          "before": _finite(dataclasses.asdict(before)),
                                          "after": _finite(dataclasses.asdict(after))})}
    result = PersonalizationResult(tuned, before, after, metadata)
    if result.got_worse:
        log(f"personalize: WARNING the lower face got worse on {checked_on} (PSNR {before.psnr:.2f} → "
            f"{after.psnr:.2f} dB); try fewer steps or a lower --lr")
    return result


def _arrays_without(clip: CropClip, frames: np.ndarray) -> dict[str, np.ndarray]:
    """The clip's arrays with `frames` marked untracked, so training never draws them."""
    valid = clip.valid.copy()
    valid[frames] = False
    return {"canonical": clip.canonical, "template": clip.template, "valid": valid,
            "pose_scale": clip.pose.scale, "pose_rotation": clip.pose.rotation,
            "pose_translation": clip.pose.translation, "crop_affine": clip.crop_affine}


def _finite(scores: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: an LMD with no re-tracked face is recorded as null."""
    return {name: (round(value, 4) if math.isfinite(value) else None) for name, value in scores.items()}


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
    tracker = tracker or FaceTracker(device)
    clip = clip_from_video(video, tracker, config.max_frames, callbacks)
    result = personalize_generator(generator, clip, config, discriminator, log=log, callbacks=callbacks,
                                   tracker=tracker, models=str(folder))
    return save_checkpoint(result.generator, result.generator.config, "generator", output,
                           extra_metadata=result.metadata)
