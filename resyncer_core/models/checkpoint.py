"""Checkpoint I/O: safetensors only, with the model's typed config in the metadata.

Layout of the safetensors metadata (all values are strings, as the format requires):

    resyncer.format_version   "1"
    resyncer.kind             a key of registry.MODEL_KINDS ("generator", "syncformer", ...)
    resyncer.config           the config dataclass as JSON

Loading builds the model from the stored config and then checks every tensor name and shape
before copying, so a wrong file fails with one sentence naming the file and the tensor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize_safetensors

from ..errors import CheckpointError
from ..input_paths import existing_file
from .registry import model_kind

FORMAT_VERSION = 1
_KEY_VERSION = "resyncer.format_version"
_KEY_KIND = "resyncer.kind"
_KEY_CONFIG = "resyncer.config"
# Metadata key `resyncer models init` sets to "random": the weights are an untrained start.
INITIALISATION_KEY = "resyncer.initialisation"
# Metadata key the trainers set to their run's config (JSON of the stage's config dataclass).
TRAINING_CONFIG_KEY = "resyncer.training"


@dataclass(frozen=True)
class CheckpointHeader:
    path: Path
    kind: str
    format_version: int
    config: dict[str, Any]


def config_to_json(config: Any) -> str:
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"model config must be a dataclass, got {type(config).__name__}")
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_dict(config_class: type, values: dict[str, Any], source: str = "config") -> Any:
    """Builds a config dataclass from JSON values; lists become tuples where the field is a
    tuple. Unknown keys are an error (a newer file), missing keys take their defaults."""
    hints = typing.get_type_hints(config_class)
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CheckpointError(
            f"{source} has config fields {unknown} that {config_class.__name__} does not know; "
            "update resyncer or re-save the checkpoint"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints.get(name)
        is_tuple = hint is tuple or typing.get_origin(hint) is tuple
        kwargs[name] = tuple(value) if is_tuple and isinstance(value, list) else value
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as error:  # the config's own validation, or a value of the wrong type
        raise CheckpointError(f"{source} has an invalid {config_class.__name__} ({_first_line(error)}); "
                              "re-save the checkpoint") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def save_checkpoint(model: torch.nn.Module, config: Any, kind: str, path: str | os.PathLike,
                    extra_metadata: dict[str, str] | None = None) -> Path:
    """Writes `model`'s state dict and config atomically (write_safetensors), so an interrupted
    save never leaves a half-written checkpoint behind."""
    model_kind(kind)  # fail early on an unknown kind
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    metadata = {_KEY_VERSION: str(FORMAT_VERSION), _KEY_KIND: kind, _KEY_CONFIG: config_to_json(config)}
    metadata.update(extra_metadata or {})
    return write_safetensors(tensors, path, metadata)


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                      metadata: dict[str, str] | None = None) -> Path:
    """A safetensors file written atomically (video.partial_file) with the permissions the umask
    gives any other output. Not safetensors' save_file: it creates its files with mode 0600."""
    from ..video.partial_file import partial_file

    path = Path(path)
    with partial_file(path) as temporary:
        temporary.write_bytes(serialize_safetensors(tensors, metadata=metadata))
    return path


def is_random_initialised(path: str | os.PathLike) -> bool:
    """Whether the checkpoint at `path` is marked as a random initialisation (models init)."""
    with safe_open(str(path), framework="pt") as handle:
        return marks_random_initialisation(handle.metadata() or {})


def marks_random_initialisation(metadata: dict[str, str]) -> bool:
    """Whether a checkpoint's metadata (read_checkpoint_metadata) marks a random initialisation."""
    return metadata.get(INITIALISATION_KEY) == "random"


def _existing_file(path: str | os.PathLike) -> Path:
    return existing_file(path, "checkpoint", if_folder="give the .safetensors file in it", error=CheckpointError)


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Every metadata entry of a safetensors file (resyncer's keys and any extra ones)."""
    path = _existing_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file ({error}); re-download or re-save it") from None


def read_checkpoint_header(path: str | os.PathLike) -> CheckpointHeader:
    path = _existing_file(path)
    metadata = read_checkpoint_metadata(path)
    if _KEY_KIND not in metadata or _KEY_CONFIG not in metadata:
        raise CheckpointError(f"checkpoint {path} has no resyncer metadata; convert foreign weights with the `resyncer_core.models` converters first")
    try:
        version = int(metadata.get(_KEY_VERSION, "0"))
        config = json.loads(metadata[_KEY_CONFIG])
    except (ValueError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path} has corrupt resyncer metadata; re-save it") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path} has corrupt resyncer metadata (its config is not an object); re-save it")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} uses format version {version}, newer than this resyncer ({FORMAT_VERSION}); update resyncer")
    return CheckpointHeader(path=path, kind=metadata[_KEY_KIND], format_version=version, config=config)


def _check_tensor_shapes(expected: dict[str, torch.Tensor], handle, path: Path) -> None:
    """One sentence naming the file and the first tensor that is missing, extra or of another
    shape than `expected` (a state dict) holds."""
    stored_names = set(handle.keys())
    missing = sorted(set(expected) - stored_names)
    unexpected = sorted(stored_names - set(expected))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks tensor {missing[0]!r} ({len(missing)} missing); it was saved from a different model or config")
    if unexpected:
        raise CheckpointError(f"checkpoint {path} has unexpected tensor {unexpected[0]!r} ({len(unexpected)} extra); it was saved from a different model or config")
    for name, target in expected.items():
        shape = tuple(handle.get_slice(name).get_shape())
        if shape != tuple(target.shape):
            raise CheckpointError(f"checkpoint {path} tensor {name!r} has shape {list(shape)} but the model expects {list(target.shape)}; the file does not match its config")


@contextlib.contextmanager
def _matching_tensors(path: Path, expected: dict[str, torch.Tensor], device: str | torch.device = "cpu"):
    """The open safetensors file at `path`, once its tensors match `expected` (a state dict)
    name for name and shape for shape; a file that cannot be read is a one-line error."""
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            _check_tensor_shapes(expected, handle, path)
            yield handle
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt ({error}); re-download or re-save it") from None


def load_state_into(model: torch.nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu") -> None:
    """Copies the tensors of a safetensors file into `model` after checking every name and
    shape; the error names the file and the first offending tensor."""
    path = _existing_file(path)
    expected = model.state_dict()
    with _matching_tensors(path, expected, device) as handle:
        loaded = {name: handle.get_tensor(name) for name in expected}
    model.load_state_dict(loaded, strict=True)


def _model_of_kind(path: str | os.PathLike, kind: str | None) -> tuple[CheckpointHeader, torch.nn.Module, Any]:
    """(header, the model its config builds, the config) for the checkpoint at `path`; with
    `kind` given, a checkpoint of another kind is refused."""
    header = read_checkpoint_header(path)
    if kind is not None and header.kind != kind:
        raise CheckpointError(f"checkpoint {header.path} holds a {header.kind} model, not a {kind}; pick the right file")
    try:
        model_class, config_class = model_kind(header.kind).load_classes()
    except KeyError:
        raise CheckpointError(f"checkpoint {header.path} holds unknown model kind {header.kind!r}; update resyncer") from None
    config = config_from_dict(config_class, header.config, source=f"checkpoint {header.path}")
    try:
        model = model_class(config)
    except ValueError as error:  # networks that validate their config when they are built
        raise CheckpointError(f"checkpoint {header.path} describes a {header.kind} the network cannot be "
                              f"built from ({_first_line(error)}); re-save the checkpoint") from None
    return header, model, config


def check_checkpoint(path: str | os.PathLike, kind: str) -> None:
    """Raises the CheckpointError load_checkpoint(path, kind) would (a missing or unreadable
    file, another kind, a config or a tensor name or shape that does not match) without
    reading any weights. (The model is built on the CPU: on the meta device the first build
    would import torch's meta kernels, seconds before a one-line error.)"""
    header, model, _ = _model_of_kind(path, kind)
    with _matching_tensors(header.path, model.state_dict()):
        pass


def load_checkpoint(path: str | os.PathLike, kind: str | None = None,
                    device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Any]:
    """Builds the model a checkpoint describes and loads its weights; returns (model, config).
    With `kind` given, a checkpoint of another kind is refused."""
    header, model, config = _model_of_kind(path, kind)
    load_state_into(model, header.path, device="cpu")
    model.eval()
    return model.to(device), config
