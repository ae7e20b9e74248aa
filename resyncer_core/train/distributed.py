"""Distributed training from torchrun's environment, and the rank-aware sampling every stage uses.

`setup_distributed(device)` reads the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK)
and starts a process group: NCCL on CUDA (one GPU per local rank), gloo on CPU. Without them
it returns a one-process context and no group is started, so a stage runs unchanged under
`python -m`, `resyncer ...` and `torchrun --nproc_per_node N resyncer ...`.

Sampling is a pure function of (seed, step): every rank draws the same GLOBAL batch of
sample indices from `global_batch_rng(seed, step)` and keeps its own contiguous share
(`rank_share`). Each sample's own random choices (window start, style window, ...) come from
`sample_rng(seed, step, position)` with its position in the global batch. Hence N ranks with
batch B and one process with batch N·B see exactly the same samples, and a resumed run needs
no sampler state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import distributed as dist

from ..errors import ResyncerInputError
from ..launcher_env import env_int
from ..stages.model_files import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among world_size processes and its torch device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and prints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self, enabled: bool = True):
        """bf16 autocast on CUDA (when `enabled`); a no-op context on the CPU."""
        if enabled and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of a per-rank number over all ranks (a logged loss, a validation error)."""
        if not self.is_distributed:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def gather_tensors(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """The same-shaped tensor of every rank, in rank order (CPU copies)."""
        if not self.is_distributed:
            return [tensor.detach().cpu()]
        local = tensor.detach().to(self._collective_device)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        return [part.cpu() for part in gathered]

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's boolean on every rank (a stop request seen by rank 0 only)."""
        if not self.is_distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self._collective_device)
        dist.broadcast(tensor, 0)
        return bool(tensor.item())

    @property
    def _collective_device(self) -> torch.device:
        # NCCL collectives need CUDA tensors; gloo takes CPU ones.
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def setup_distributed(device: str | torch.device = "cpu") -> DistributedContext:
    """The context of this process. Under torchrun (WORLD_SIZE > 1) it joins the process group
    (NCCL for a CUDA `device`, each local rank on its own GPU; gloo for the CPU). Alone it only
    resolves the device."""
    world_size = env_int("WORLD_SIZE") or 1
    resolved = resolve_device(device)
    if world_size == 1:
        return DistributedContext(device=resolved)
    rank, local_rank = env_int("RANK") or 0, env_int("LOCAL_RANK") or 0
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=resolved)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """DDP around `model` in a distributed run (gradients averaged over ranks), else the model.
    DDP broadcasts rank 0's weights at construction, so all ranks start identical."""
    if not context.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def global_batch_rng(seed: int, step: int) -> np.random.Generator:
    """The generator every rank uses to draw step `step`'s global batch."""
    return np.random.default_rng([seed, step, 0])


def sample_rng(seed: int, step: int, position: int) -> np.random.Generator:
    """The generator of one sample's random choices: its position in step `step`'s global batch."""
    return np.random.default_rng([seed, step, 1, position])


def check_global_batch(batch_size: int, context: DistributedContext) -> None:
    if batch_size < context.world_size or batch_size % context.world_size:
        raise ResyncerInputError(
            f"the global batch size {batch_size} must be a multiple of the {context.world_size} processes; "
            "change --batch-size or --nproc_per_node")


def rank_share(global_positions: np.ndarray, context: DistributedContext) -> np.ndarray:
    """This rank's contiguous share of a global batch (its length must divide evenly)."""
    check_global_batch(len(global_positions), context)
    share = len(global_positions) // context.world_size
    return global_positions[context.rank * share:(context.rank + 1) * share]


def micro_batches(positions: np.ndarray, accumulation_steps: int) -> list[np.ndarray]:
    """`positions` split into `accumulation_steps` equal micro-batches (gradient accumulation)."""
    if accumulation_steps < 1 or len(positions) % accumulation_steps:
        raise ResyncerInputError(
            f"{len(positions)} samples per process cannot be split into {accumulation_steps} equal micro-batches; "
            "make --batch-size a multiple of processes × --grad-accum")
    return np.split(positions, accumulation_steps)


def accumulated_backward(model: torch.nn.Module, losses, count: int) -> float:
    """Backpropagates `count` micro-batch losses (an iterable of zero-argument callables that
    build each loss) as the mean over them, exchanging DDP gradients only after the last one.
    Returns that mean as a float. The caller steps the optimiser."""
    total = 0.0
    for index, compute_loss in enumerate(losses):
        last = index == count - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            loss = compute_loss()
            (loss / count).backward()
        total += float(loss.detach())
    return total / count
