"""The training loop every stage shares: resume, steps, logging, checkpoints, validation, export.

A stage (stage1.py, stage2, swap, ...) is an object with

    name: str                                          "stage1", shown in logs and progress
    state_modules() -> dict[str, nn.Module]            what a checkpoint holds (EMA copies included)
    state_optimizers() -> dict[str, Optimizer]
    train_step(step, micro_batches) -> dict[str, float]
        one optimiser step. micro_batches: this rank's share of the global batch, split for
        gradient accumulation: a list of int arrays of positions in the global batch; draw
        sample i's randomness from distributed.sample_rng(seed, step, i). Backpropagate with
        distributed.accumulated_backward under context.autocast(). Must return "loss".
    validate() -> dict[str, float]                     may be {}; called on every rank
    export(run_dir) -> list[Path]                      final model files; rank 0 only

and `run_training(stage, loop_config, run_dir, context, run_config)` drives it. Build the
stage's models after `seed_everything(loop_config.seed)` so every rank starts from the same
weights (DDP also broadcasts rank 0's).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..video.partial_file import check_output_folder
from .distributed import DistributedContext, check_global_batch, micro_batches, rank_share
from .run_log import RunLog
from .training_state import check_resumed_config, latest_training_state, load_training_state, save_training_state

Log = Callable[[str], None]


@dataclass
class LoopConfig:
    """Settings of the loop itself (the stage's own live in its config dataclass)."""

    steps: int = 10000
    batch_size: int = 8             # global: samples per optimiser step over all ranks and micro-batches
    grad_accum: int = 1             # micro-batches per optimiser step on each rank
    checkpoint_every: int = 1000    # steps between training-state checkpoints (and the last step)
    validate_every: int = 1000      # steps between validations (and the last step); 0: never
    log_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0
    bf16: bool = True               # bf16 autocast on CUDA; ignored on the CPU

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "log_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ResyncerInputError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.validate_every < 0:
            raise ResyncerInputError(f"validate every must be 0 or more steps, got {self.validate_every}")


class TrainingStage(Protocol):
    name: str

    def state_modules(self) -> dict[str, torch.nn.Module]: ...

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(self, step: int, micro_batches: list[np.ndarray]) -> dict[str, float]: ...

    def validate(self) -> dict[str, float]: ...

    def export(self, run_dir: Path) -> list[Path]: ...


@dataclass
class TrainingResult:
    step: int                                  # last step trained
    exported: list[Path] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)


def check_loop_split(loop: LoopConfig, context: DistributedContext) -> None:
    """Refuses a global batch that the processes and micro-batches cannot share evenly."""
    check_global_batch(loop.batch_size, context)
    micro_batches(np.arange(loop.batch_size // context.world_size), loop.grad_accum)


def check_learning_rate(lr: float) -> None:
    """Refuses a learning rate that is not positive (every stage's and personalize's config)."""
    if not lr > 0:
        raise ResyncerInputError(f"learning rate must be positive, got {lr}")


def check_run_folder(run_dir: str | Path, config: Any, resume: bool) -> None:
    """Before a stage reads its data or builds a model: the run folder can be written in, and
    a resumed run is given the config its checkpoints recorded (check_resumed_config)."""
    check_output_folder(run_dir, "run folder")
    if resume:
        check_resumed_config(run_dir, config)


def seed_everything(seed: int) -> None:
    """Seeds torch, numpy and python's random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rank_weight_spread(modules: dict[str, torch.nn.Module], context: DistributedContext) -> float:
    """Largest difference between ranks of a fingerprint of every weight (0.0: identical), so a
    run that lost DDP sync says so in its log."""
    tensors = [t.detach().double().flatten().cpu() for m in modules.values() for t in m.state_dict().values()
               if t.is_floating_point()]
    flat = torch.cat(tensors) if tensors else torch.zeros(1, dtype=torch.float64)
    ramp = torch.linspace(-1.0, 1.0, len(flat), dtype=torch.float64)
    fingerprint = torch.stack([flat.sum(), (flat * flat).sum(), (flat * ramp).sum()])
    gathered = torch.stack(context.gather_tensors(fingerprint))
    return float((gathered - gathered[0]).abs().max())


def _due(step: int, every: int, last_step: int) -> bool:
    return step == last_step or (every > 0 and step % every == 0)


def run_training(stage: TrainingStage, loop: LoopConfig, run_dir: str | Path, context: DistributedContext,
                 run_config: Any, resume: bool = False, log: Log | None = None,
                 progress: bool | None = None) -> TrainingResult:
    """Trains `stage` to loop.steps, resuming from the run's newest checkpoint when `resume`
    (a run without one starts fresh and says so), saving training state every
    loop.checkpoint_every steps and at the end, and exporting the stage's model files."""
    run_dir = Path(run_dir)
    log = log if (log is not None and context.is_main) else (lambda message: None)
    check_loop_split(loop, context)
    modules, optimizers = stage.state_modules(), stage.state_optimizers()
    start = 0
    latest = latest_training_state(run_dir) if resume else None
    if latest is not None:
        resumed = load_training_state(latest, modules, optimizers, context)
        start = resumed.step
        log(f"{stage.name}: resumed from {latest} at step {start}")
    else:
        if resume:
            log(f"{stage.name}: no checkpoint in {run_dir}, starting from step 0")
        # Each rank draws its own dropout and noise from here on.
        seed_everything(loop.seed + 1 + context.rank)
    if start >= loop.steps and latest is not None:
        log(f"{stage.name}: already at step {start} of {loop.steps}; nothing to train")

    run_log = RunLog(run_dir, loop.steps, stage.name, enabled=context.is_main, progress=progress)
    run_log.start(start)
    result = TrainingResult(step=start)
    positions = rank_share(np.arange(loop.batch_size), context)
    try:
        for step in range(start + 1, loop.steps + 1):
            metrics = stage.train_step(step, micro_batches(positions, loop.grad_accum))
            if _due(step, loop.log_every, loop.steps):
                metrics = {name: context.mean(value) for name, value in metrics.items()}
                metrics["it_per_s"] = round(run_log.iterations_per_second(step), 4)
                run_log.log(step, "train", metrics)
            result.step, result.last_metrics = step, metrics
            if _due(step, loop.validate_every, loop.steps) and loop.validate_every:
                result.validation = {name: context.mean(value) for name, value in stage.validate().items()}
                if result.validation:
                    run_log.log(step, "validation", result.validation)
                    log(f"{stage.name} step {step}: " + ", ".join(f"{k} {v:.5g}" for k, v in result.validation.items()))
            if _due(step, loop.checkpoint_every, loop.steps):
                save_training_state(run_dir, step, modules, optimizers, run_config, context,
                                    extra=result.last_metrics, keep=loop.keep_checkpoints)
        if context.is_distributed:
            spread = _rank_weight_spread(modules, context)
            run_log.log(result.step, "ranks", {"world_size": context.world_size, "weight_spread": spread})
            if spread > 0:
                log(f"{stage.name}: WARNING the ranks' weights differ (spread {spread:.3g}); DDP lost sync")
    finally:
        run_log.close()
    if context.is_main:
        result.exported = stage.export(run_dir)
        for path in result.exported:
            log(f"wrote {path}")
    context.barrier()
    return result
