"""This process's place among the processes a launcher started, read from the variables the
launcher sets; we run no scheduler of our own.

Two levels multiply:
- processes of one launch: torchrun's RANK of WORLD_SIZE; else srun's SLURM_PROCID of
  SLURM_STEP_NUM_TASKS (the tasks of this srun step: a batch script run without srun is one
  task, whatever --ntasks the allocation asked for, where SLURM_NTASKS would say more);
- a Slurm job array: the task's position in the array (SLURM_ARRAY_TASK_ID, made 0-based by
  SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_STEP) of SLURM_ARRAY_TASK_COUNT.
torchrun under srun (one torchrun per node) sets a RANK that already counts every node, so
SLURM_PROCID is then not read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ResyncerInputError


def env_int(name: str, environ: Mapping[str, str] | None = None) -> int | None:
    """The integer a launcher put in `name`, None when it is unset."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ResyncerInputError(f"environment variable {name}={value!r} is not an integer; it is set by the "
                                 "launcher (torchrun or Slurm), so launch through it or unset it") from None


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based); `source` names the variables it came from."""

    index: int = 0
    count: int = 1
    source: str = "no launcher: one shard"

    def takes(self, position: int) -> bool:
        """Whether the job at `position` (0-based, in list order) is this shard's: every
        count-th job from the index-th, so each job belongs to exactly one shard."""
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"shard {self.index}/{self.count}"


def _rank_of(rank_name: str, size_name: str, environ: Mapping[str, str]) -> tuple[int, int] | None:
    rank, size = env_int(rank_name, environ), env_int(size_name, environ)
    if rank is None and size is None:
        return None
    if rank is None or size is None:
        given, missing = (rank_name, size_name) if size is None else (size_name, rank_name)
        raise ResyncerInputError(f"{given} is set but {missing} is not; the launcher sets both, so set both or neither")
    if not 0 <= rank < size:
        raise ResyncerInputError(f"{rank_name}={rank} is not in 0..{size_name}-1 ({size_name}={size})")
    return rank, size


def _array_position(environ: Mapping[str, str]) -> tuple[int, int] | None:
    task_id, count = env_int("SLURM_ARRAY_TASK_ID", environ), env_int("SLURM_ARRAY_TASK_COUNT", environ)
    if task_id is None and count is None:
        return None
    if task_id is None or count is None:
        raise ResyncerInputError("SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT come together (Slurm sets both); "
                                 "set both or neither")
    first = env_int("SLURM_ARRAY_TASK_MIN", environ) or 0
    step = env_int("SLURM_ARRAY_TASK_STEP", environ) or 1
    last = env_int("SLURM_ARRAY_TASK_MAX", environ)
    index, off_step = divmod(task_id - first, step)
    evenly_spaced = count >= 1 and (last is None or last == first + (count - 1) * step)
    if off_step or not 0 <= index < count or not evenly_spaced:
        # A list such as --array=0,6,16-32 gives no way to turn a task id into a position.
        raise ResyncerInputError(f"Slurm array task {task_id} is not one of {count} evenly spaced ids from {first} "
                                 f"in steps of {step}; submit the array as a range (--array=0-{count - 1})")
    return index, count


def shard_from_environment(environ: Mapping[str, str] | None = None) -> Shard:
    """This process's shard from torchrun's or Slurm's variables (module docstring); one
    shard of one without a launcher."""
    environ = os.environ if environ is None else environ
    process = _rank_of("RANK", "WORLD_SIZE", environ)
    process_source = "RANK/WORLD_SIZE"
    if process is None and env_int("SLURM_STEP_NUM_TASKS", environ) is not None:
        # Only srun sets the step's task count; a batch script has SLURM_PROCID=0 too, as one task.
        process = _rank_of("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", environ)
        process_source = "SLURM_PROCID/SLURM_STEP_NUM_TASKS"
    array = _array_position(environ)
    if process is None and array is None:
        return Shard()
    rank, size = process or (0, 1)
    position, positions = array or (0, 1)
    sources = [name for name, level in (("SLURM_ARRAY_TASK_ID/COUNT", array), (process_source, process)) if level]
    return Shard(index=position * size + rank, count=positions * size, source=" × ".join(sources))


def process_device(device: str, environ: Mapping[str, str] | None = None) -> str:
    """`device`, except that a bare "cuda" under torchrun means this process's own GPU,
    cuda:LOCAL_RANK, so the processes of one machine do not all share the first GPU."""
    local_rank = env_int("LOCAL_RANK", environ)
    return f"cuda:{local_rank}" if device == "cuda" and local_rank is not None else device
