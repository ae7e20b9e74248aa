"""Training-state checkpoints that resume exactly, stored as safetensors + JSON (no pickle).

One checkpoint is a folder RUN/checkpoints/step-NNNNNNNN/ holding

    weights.safetensors    every module's state dict, tensors named "<module>/<tensor>"
                           (EMA copies are modules like any other)
    optimizer.safetensors  every optimiser's tensor state, "<optimiser>/<param index>/<name>"
    rng.safetensors        the torch (CPU and current CUDA device), numpy and python RNG states
                           of EVERY rank, "rank<r>/<generator>"
    state.json             format version, step, world size, the run's config (typed dataclass
                           as JSON), optimiser param groups and non-tensor state, extra numbers

The folder is written under a hidden temporary name and renamed into place only when complete
(os.replace of a folder is atomic), so an interrupted save leaves no checkpoint that looks
finished (a killed save's partial folder is removed by the next save); older checkpoints
beyond `keep` are removed afterwards. Saving is collective: every
rank calls save_training_state (the RNG states are gathered), only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import ResyncerInputError
from ..models.checkpoint import write_safetensors
from .distributed import DistributedContext

FORMAT_VERSION = 1
CHECKPOINTS_FOLDER = "checkpoints"
_STEP_FOLDER = re.compile(r"^step-(\d{8})$")
_UNFINISHED_FOLDER = re.compile(r"^\.step-\d{8}\.[0-9a-f]+\.partial$")
_WEIGHTS, _OPTIMIZER, _RNG, _STATE = "weights.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"


@dataclass(frozen=True)
class ResumedState:
    """What load_training_state restored besides the modules and optimisers."""

    step: int
    config: dict[str, Any]
    extra: dict[str, Any]
    path: Path


def checkpoint_folder(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_FOLDER / f"step-{step:08d}"


def latest_training_state(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    folder = Path(run_dir) / CHECKPOINTS_FOLDER
    if not folder.is_dir():
        return None
    finished = [path for path in folder.iterdir() if _STEP_FOLDER.match(path.name) and (path / _STATE).is_file()]
    return max(finished, key=lambda path: path.name, default=None)


# Settings a resumed run may change: how far it trains and how often it logs, validates,
# samples and saves. Any other change would train on a different model or data than the
# checkpoint's, the way a resume that forgot --hide-reference-lower-face once did.
RESUMABLE_SETTINGS = frozenset({"loop.steps", "loop.log_every", "loop.checkpoint_every", "loop.validate_every",
                                "loop.keep_checkpoints", "sample_every", "max_cached_clips"})


def check_resumed_config(run_dir: str | os.PathLike, config: Any) -> None:
    """Refuses, in one line, a run config that differs from the one the run's newest checkpoint
    recorded in a setting other than RESUMABLE_SETTINGS (a run without a checkpoint passes):
    a resumed run keeps training the model its checkpoints hold."""
    latest = latest_training_state(run_dir)
    if latest is None:
        return
    recorded = _flat_settings(_read(latest / _STATE, lambda file: json.loads(file.read_text())).get("config", {}))
    given = _flat_settings(json.loads(json.dumps(_config_json(config))))  # tuples as JSON lists, like the record
    if recorded.keys() != given.keys():
        unknown = sorted(recorded.keys() ^ given.keys())[0]
        raise ResyncerInputError(f"--resume: the run in {run_dir} is another kind of run (only one of the two configs "
                                 f"has {unknown}); resume it with the command that started it, or use a new run folder")
    for name in sorted(given):
        if name not in RESUMABLE_SETTINGS and given[name] != recorded[name]:
            raise ResyncerInputError(f"--resume: the run in {run_dir} was trained with {name} = {recorded[name]!r}, "
                                     f"not {given[name]!r}; give the run's own setting again, or use a new run folder")


def _flat_settings(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"loop": {"steps": 3}} → {"loop.steps": 3}."""
    flat = {}
    for name, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat_settings(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


# ---------------------------------------------------------------------------------------- RNG

def _rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's RNG states as fixed-size tensors (so they can be gathered across ranks)."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, python_state, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_scalars": torch.tensor([position, has_gauss, cached_gaussian], dtype=torch.float64),
        "python_state": torch.tensor(python_state, dtype=torch.int64),
        "python_scalars": torch.tensor([version, gauss_next is not None, gauss_next or 0.0], dtype=torch.float64),
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _restore_rng(states: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    position, has_gauss, cached_gaussian = states["numpy_scalars"].tolist()
    np.random.set_state(("MT19937", states["numpy_keys"].numpy().astype(np.uint32), int(position), int(has_gauss),
                         cached_gaussian))
    version, has_gauss_next, gauss_next = states["python_scalars"].tolist()
    random.setstate((int(version), tuple(states["python_state"].tolist()), gauss_next if has_gauss_next else None))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


# ---------------------------------------------------------------------------------- optimisers

def _split_optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{name}/{index}/{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer_state(name: str, tensors: dict[str, torch.Tensor], stored: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, tensor_name = key[len(prefix):].split("/", 1)
            state.setdefault(int(index), {})[tensor_name] = value
    for index, values in stored["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": stored["param_groups"]}


# -------------------------------------------------------------------------------- save and load

def _config_json(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def save_training_state(run_dir: str | os.PathLike, step: int, modules: dict[str, torch.nn.Module],
                        optimizers: dict[str, torch.optim.Optimizer], config: Any, context: DistributedContext,
                        extra: dict[str, Any] | None = None, keep: int = 2) -> Path | None:
    """Writes the checkpoint of `step` (collective: call on every rank; rank 0 writes) and
    keeps the newest `keep` checkpoints. Returns the folder on rank 0, None elsewhere."""
    rng = {name: context.gather_tensors(tensor) for name, tensor in _rng_tensors(context.device).items()}
    if not context.is_main:
        context.barrier()
        return None
    final = checkpoint_folder(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_unfinished_saves(final.parent)
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
    temporary.mkdir()
    try:
        weights = {f"{name}/{key}": tensor.detach().to("cpu").contiguous()
                   for name, module in modules.items() for key, tensor in module.state_dict().items()}
        write_safetensors(weights, temporary / _WEIGHTS)
        optimizer_tensors, optimizer_json = {}, {}
        for name, optimizer in optimizers.items():
            tensors, stored = _split_optimizer_state(name, optimizer)
            optimizer_tensors.update(tensors)
            optimizer_json[name] = stored
        write_safetensors(optimizer_tensors, temporary / _OPTIMIZER)
        write_safetensors({f"rank{rank}/{name}": states[rank].contiguous() for name, states in rng.items()
                           for rank in range(context.world_size)}, temporary / _RNG)
        state = {"format_version": FORMAT_VERSION, "step": step, "world_size": context.world_size,
                 "config": _config_json(config), "optimizers": optimizer_json, "extra": extra or {}}
        (temporary / _STATE).write_text(json.dumps(state, indent=1, sort_keys=True))
        if final.exists():  # the same step saved again (a resumed run that stopped at once)
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _remove_old_checkpoints(final.parent, keep)
    context.barrier()
    return final


def _remove_unfinished_saves(folder: Path) -> None:
    """Deletes the partial folders of saves that never finished: a process killed by SIGKILL
    (or a power cut) runs no cleanup of its own."""
    for path in folder.iterdir():
        if _UNFINISHED_FOLDER.match(path.name):
            shutil.rmtree(path, ignore_errors=True)


def _remove_old_checkpoints(folder: Path, keep: int) -> None:
    finished = sorted(path for path in folder.iterdir() if _STEP_FOLDER.match(path.name))
    for path in finished[:-max(keep, 1)]:
        shutil.rmtree(path, ignore_errors=True)


def _read(path: Path, reader):
    try:
        return reader(path)
    except (OSError, SafetensorError, ValueError) as error:
        raise ResyncerInputError(f"training checkpoint file {path} is unreadable ({error}); "
                                 "resume from an older checkpoint or start a new run") from None


def load_training_state(path: str | os.PathLike, modules: dict[str, torch.nn.Module],
                        optimizers: dict[str, torch.optim.Optimizer], context: DistributedContext,
                        restore_rng: bool = True) -> ResumedState:
    """Loads a checkpoint folder into `modules` and `optimizers` (same names as saved) and,
    with restore_rng, this rank's RNG states (rank 0's when the world size changed)."""
    path = Path(path)
    state = _read(path / _STATE, lambda file: json.loads(file.read_text()))
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise ResyncerInputError(f"training checkpoint {path} is format {state['format_version']}, newer than this "
                                 f"resyncer reads ({FORMAT_VERSION}); update resyncer")
    weights = _read(path / _WEIGHTS, lambda file: load_file(str(file)))
    for name, module in modules.items():
        prefix = f"{name}/"
        own = {key[len(prefix):]: tensor for key, tensor in weights.items() if key.startswith(prefix)}
        if not own:
            raise ResyncerInputError(f"training checkpoint {path} has no weights for {name!r}; it is from another stage")
        try:
            module.load_state_dict(own, strict=True)
        except RuntimeError as error:
            raise ResyncerInputError(f"training checkpoint {path} does not fit {name!r} "
                                     f"({str(error).splitlines()[0]}); resume with the same preset and options") from None
    optimizer_tensors = _read(path / _OPTIMIZER, lambda file: load_file(str(file)))
    for name, optimizer in optimizers.items():
        if name not in state["optimizers"]:
            raise ResyncerInputError(f"training checkpoint {path} has no optimiser state for {name!r}")
        optimizer.load_state_dict(_join_optimizer_state(name, optimizer_tensors, state["optimizers"][name]))
    if restore_rng:
        rng = _read(path / _RNG, lambda file: load_file(str(file)))
        rank = context.rank if state.get("world_size") == context.world_size else 0
        prefix = f"rank{rank}/"
        _restore_rng({key[len(prefix):]: tensor for key, tensor in rng.items() if key.startswith(prefix)},
                     context.device)
    return ResumedState(step=int(state["step"]), config=state["config"], extra=state.get("extra", {}), path=path)
