"""Stage 1: training the Style-SyncFormer (ReSyncer §3.1) on a preprocessed dataset (dataset.py).

Each sample is a `window`-frame stretch (100, paper) of a clip at 25 fps: its audio features,
its ΔM = canonical − template (the targets, teacher-forced: the model sees the right-shifted
ground truth), and a style reference of T_S = 90 frames (paper) taken from another window of
the same clip (not overlapping the target when the clip is long enough). Loss L_3D
(mesh_losses.py: velocity + λ1·position, λ1 = 1), Adam with lr 1e-3 (paper).

The audio encoder is frozen, so its features are computed once per clip and cached in the
dataset (DATA/clips/<id>/features/); training reads them. (Fine-tuning the Wav2Vec2
transformer as FaceFormer does would need the waveform path instead; not implemented.)
Target windows are drawn uniformly among the windows whose every frame has a tracked face (an
untracked frame's ΔM is 0, the template, which is not what the audio says); the style
reference may include untracked frames.

Validation: the lip vertex error (metrics/mesh.py) of autoregressive predictions on the first
window of each held-out clip, its style from the clip's last T_S frames.

The result, RUN/syncformer.safetensors, is an ordinary SyncFormer checkpoint (the EMA weights
when --ema-decay is set) whose metadata also holds the audio encoder spec it was trained on
("resyncer.audio_encoder") and this stage's config ("resyncer.training").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ..errors import ResyncerInputError
from ..metrics.mesh import lip_vertex_error
from ..models.checkpoint import TRAINING_CONFIG_KEY, save_checkpoint
from ..models.presets import preset_config
from ..models.syncformer import StyleSyncFormer
from .dataset import (
    AUDIO_ENCODER_KEY,
    MESHES_FILE,
    ClipRecord,
    cache_features,
    cached_feature_dim,
    encoder_folder,
    features_path,
    read_index,
)
from .distributed import DistributedContext, accumulated_backward, sample_rng, wrap_model
from .ema import ModelEMA, check_ema_decay
from .loop import (Log, LoopConfig, TrainingResult, check_learning_rate, check_loop_split, check_run_folder, run_training,
                   seed_everything)
from .mesh_losses import syncformer_loss

SYNCFORMER_FILE = "syncformer.safetensors"
DEFAULT_AUDIO_ENCODER = "mel"
MAX_VALIDATION_CLIPS = 8


@dataclass
class Stage1Config:
    """Everything a stage-1 run depends on; saved into its checkpoints and its syncformer file."""

    data: str
    preset: str = "tiny"
    audio_encoder: str = DEFAULT_AUDIO_ENCODER  # spec for resyncer_core.audio.load_audio_encoder
    lr: float = 1e-3                 # (paper) Adam
    position_weight: float = 1.0     # (paper) λ1 of L_3D
    window: int = 100                # (paper) teacher-forced frames per sample
    style_frames: int = 90           # (paper) T_S
    dropout: float | None = None     # None: the preset's
    ema_decay: float = 0.0           # 0: no EMA; else the exported weights are the EMA's
    validation_clips: int | None = None  # held-out clips; None: 1 per 50 clips, at least 1 when there are 2+
    # A sample's target and style ΔM are scaled together by a factor drawn log-uniformly from
    # this range, so the model learns to move the mouth as far as its style reference does
    # (not ours; (1, 1) keeps the corpus's own amplitudes).
    amplitude_range: tuple[float, float] = (1.0, 1.0)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if self.window < 2 or self.style_frames < 1:
            raise ResyncerInputError(f"stage 1 needs a window of at least 2 frames and a style reference of at least "
                                     f"1, got {self.window} and {self.style_frames}")
        self.amplitude_range = tuple(float(v) for v in self.amplitude_range)
        low, high = self.amplitude_range
        if not 0 < low <= high:
            raise ResyncerInputError(f"amplitude range {low:g},{high:g} must be two positive factors, low first")
        check_learning_rate(self.lr)
        check_ema_decay(self.ema_decay)
        # As checkpoints record it, so a resumed run's config compares equal to its record.
        self.audio_encoder = normalised_encoder_spec(self.audio_encoder)


def normalised_encoder_spec(spec: str | os.PathLike) -> str:
    """The spec as stored in checkpoints: a folder as an absolute path (so inference finds it
    from anywhere), a keyword ("mel", "whisper") as given."""
    folder = encoder_folder(spec)
    return str(folder) if folder is not None else str(spec).strip()


def _holdout_order(clip: ClipRecord) -> str:
    return hashlib.sha1(clip.clip.encode()).hexdigest()


def split_clips(clips: list[ClipRecord], validation_clips: int | None) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """(training, held-out) clips; the held-out ones are chosen by a hash of their ids, so the
    split is the same on every rank and every resume."""
    count = (max(1, len(clips) // 50) if len(clips) >= 2 else 0) if validation_clips is None else validation_clips
    if count >= len(clips):
        raise ResyncerInputError(f"{len(clips)} usable clips cannot hold out {count} for validation; "
                                 "lower --validation-clips or add clips")
    held_out = set(clip.clip for clip in sorted(clips, key=_holdout_order)[:count])
    return [c for c in clips if c.clip not in held_out], [c for c in clips if c.clip in held_out]


class ClipSource:
    """Reads windows of ΔM and features from a clip's files on demand (only the frames asked
    for, no file kept open), so a corpus of any size trains in constant memory."""

    def __init__(self, clip: ClipRecord, encoder_spec: str):
        self.clip = clip
        self.frames = clip.frames
        self._meshes_path = str(clip.folder / MESHES_FILE)
        self._features_path = str(features_path(clip, encoder_spec))
        with safe_open(self._meshes_path, framework="np") as handle:
            self.template = handle.get_tensor("template")
            self.valid = handle.get_tensor("valid").astype(bool)

    def tracked_window_starts(self, window: int) -> np.ndarray:
        """First frames of the `window`-frame stretches in which every frame is tracked."""
        if self.frames < window:
            return np.zeros(0, dtype=np.int64)
        tracked = np.convolve(self.valid.astype(np.int64), np.ones(window, dtype=np.int64), mode="valid")
        return np.flatnonzero(tracked == window)

    def delta(self, start: int, stop: int) -> np.ndarray:
        with safe_open(self._meshes_path, framework="np") as handle:
            return handle.get_slice("canonical")[start:stop] - self.template[None]

    def features(self, start: int, stop: int) -> np.ndarray:
        with safe_open(self._features_path, framework="np") as handle:
            return handle.get_slice("features")[start:stop]


def style_start(rng: np.random.Generator, frames: int, target_start: int, window: int, style_length: int) -> int:
    """Start of the style reference: uniformly among the starts whose T_S frames miss the target
    window; any start when the clip is too short for that."""
    before = max(0, target_start - style_length + 1)           # starts 0 … target_start − T_S
    after_low = target_start + window                           # starts target_start + window … frames − T_S
    after = max(0, frames - style_length - after_low + 1)
    if before + after == 0:
        return int(rng.integers(0, frames - style_length + 1))
    pick = int(rng.integers(0, before + after))
    return pick if pick < before else after_low + pick - before


class Stage1:
    """The Style-SyncFormer training stage (see loop.py for the protocol)."""

    name = "stage1"

    def __init__(self, config: Stage1Config, train_clips: list[ClipRecord], validation_clips: list[ClipRecord],
                 model_config, context: DistributedContext):
        self.config, self.context = config, context
        self.model_config = model_config
        self.model = StyleSyncFormer(model_config).to(context.device)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.trained = wrap_model(self.model, context)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.train_sources = [ClipSource(clip, config.audio_encoder) for clip in train_clips]
        self.validation_sources = [ClipSource(clip, config.audio_encoder) for clip in validation_clips]
        # A window is drawn uniformly over all fully tracked windows of all training clips.
        self._window_starts = [source.tracked_window_starts(config.window) for source in self.train_sources]
        self._window_offsets = np.concatenate([[0], np.cumsum([len(starts) for starts in self._window_starts])])
        if self._window_offsets[-1] == 0:
            raise ResyncerInputError(f"no training clip has {config.window} consecutive frames with a tracked face; "
                                     "add clips or lower --window")

    def state_modules(self) -> dict[str, torch.nn.Module]:
        modules = {"syncformer": self.model}
        if self.ema is not None:
            modules["syncformer_ema"] = self.ema
        return modules

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def sample(self, step: int, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(features [W,A], ΔM [W,V,3], style ΔM [T_S,V,3], style features [T_S,A]) of one sample."""
        rng = sample_rng(self.config.loop.seed, step, position)
        window = self.config.window
        drawn = int(rng.integers(0, self._window_offsets[-1]))
        # side="right" skips clips without any window (their offset repeats the next clip's).
        index = int(np.searchsorted(self._window_offsets, drawn, side="right") - 1)
        source = self.train_sources[index]
        start = int(self._window_starts[index][drawn - int(self._window_offsets[index])])
        style_length = min(self.config.style_frames, source.frames)
        style = style_start(rng, source.frames, start, window, style_length)
        amplitude = self._amplitude(rng)
        return (source.features(start, start + window), amplitude * source.delta(start, start + window),
                amplitude * source.delta(style, style + style_length), source.features(style, style + style_length))

    def _amplitude(self, rng: np.random.Generator) -> np.float32:
        low, high = self.config.amplitude_range
        if low == high:  # no draw: runs without the augmentation keep their random stream
            return np.float32(low)
        return np.float32(np.exp(rng.uniform(np.log(low), np.log(high))))

    def _batch(self, step: int, positions: np.ndarray) -> list[torch.Tensor]:
        samples = [self.sample(step, int(position)) for position in positions]
        return [torch.from_numpy(np.stack(parts)).to(self.context.device, torch.float32) for parts in zip(*samples)]

    def train_step(self, step: int, micro_batches: list[np.ndarray]) -> dict[str, float]:
        self.trained.train()

        def micro_loss(positions: np.ndarray):
            def compute() -> torch.Tensor:
                audio, target, style, style_audio = self._batch(step, positions)
                with self.context.autocast(self.config.loop.bf16):
                    predicted = self.trained(audio, target, style,
                                             style_audio if self.model.uses_style_audio else None)
                return syncformer_loss(predicted.float(), target, self.config.position_weight)
            return compute

        self.optimizer.zero_grad(set_to_none=True)
        loss = accumulated_backward(self.trained, (micro_loss(p) for p in micro_batches), len(micro_batches))
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": loss}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if not self.validation_sources:
            return {}
        model = self.ema.average if self.ema is not None else self.model
        model.eval()
        errors = []
        for source in self.validation_sources[:MAX_VALIDATION_CLIPS]:
            length = min(self.config.window, source.frames)
            style_length = min(self.config.style_frames, source.frames)
            device = self.context.device
            audio = torch.from_numpy(source.features(0, length))[None].to(device)
            style_start_frame = source.frames - style_length
            style = torch.from_numpy(source.delta(style_start_frame, source.frames))[None].to(device)
            style_audio = torch.from_numpy(source.features(style_start_frame, source.frames))[None].to(device)
            predicted = model.generate(audio, style, style_audio if model.uses_style_audio else None)
            errors.append(lip_vertex_error(predicted[0].cpu(), source.delta(0, length)))
        return {"lve": float(np.mean(errors))}

    def export(self, run_dir: Path) -> list[Path]:
        model = self.ema.average if self.ema is not None else self.model
        metadata = {AUDIO_ENCODER_KEY: self.config.audio_encoder,
                    TRAINING_CONFIG_KEY: json.dumps(dataclasses.asdict(self.config), sort_keys=True)}
        return [save_checkpoint(model, self.model_config, "syncformer", Path(run_dir) / SYNCFORMER_FILE,
                                extra_metadata=metadata)]


def _usable_clips(clips: list[ClipRecord], window: int, log: Log) -> list[ClipRecord]:
    usable = [clip for clip in clips if clip.frames >= window]
    if len(usable) < len(clips):
        log(f"stage1: {len(clips) - len(usable)} clips shorter than the {window}-frame window are not used")
    if not usable:
        raise ResyncerInputError(f"no clip in the dataset has {window} frames (the training window); "
                                 "add longer clips or lower --window")
    return usable


def build_stage1(config: Stage1Config, context: DistributedContext, log: Log) -> Stage1:
    """Reads the dataset, caches missing features (rank 0), builds the model from the preset
    (its audio_dim taken from the features) and returns the stage."""
    check_loop_split(config.loop, context)  # before features are cached: bad options fail at once
    clips = _usable_clips(read_index(config.data), config.window, log)
    if context.is_main:
        computed = cache_features(clips, config.audio_encoder, device=context.device)
        if computed:
            log(f"stage1: cached {config.audio_encoder} features of {computed} clips")
    context.barrier()
    audio_dim = cached_feature_dim(clips[0], config.audio_encoder)
    overrides = {"audio_dim": audio_dim, "train_window": config.window, "style_frames": config.style_frames}
    if config.dropout is not None:
        overrides["dropout"] = config.dropout
    model_config = preset_config(config.preset, "syncformer", **overrides)
    if max(config.window, config.style_frames) > model_config.max_seq_len:
        raise ResyncerInputError(f"window and style frames must not exceed the model's max_seq_len "
                                 f"({model_config.max_seq_len})")
    train_clips, validation_clips = split_clips(clips, config.validation_clips)
    log(f"stage1: {len(train_clips)} training clips, {len(validation_clips)} held out, audio {config.audio_encoder} "
        f"({audio_dim}-d), preset {config.preset}")
    seed_everything(config.loop.seed)  # the same initial weights on every rank
    return Stage1(config, train_clips, validation_clips, model_config, context)


def train_stage1(config: Stage1Config, run_dir: str | os.PathLike, context: DistributedContext,
                 resume: bool = False, log: Log | None = None, progress: bool | None = None) -> TrainingResult:
    """Runs stage 1 to config.loop.steps and writes RUN/syncformer.safetensors."""
    log = log or (lambda message: None)
    check_run_folder(run_dir, config, resume)
    stage = build_stage1(config, context, log)
    return run_training(stage, config.loop, run_dir, context, config, resume=resume, log=log, progress=progress)
