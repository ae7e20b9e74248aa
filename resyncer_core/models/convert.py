"""Converters for the pretrained auxiliary networks users bring from elsewhere.

Each converter reads the original PyTorch file with `torch.load(weights_only=True)` (plain
tensors and containers only; a file that needs any other pickled object is refused), renames
and filters its keys, checks every name and shape against our network, and writes a resyncer
safetensors checkpoint that `checkpoint.load_checkpoint` reads back:

    torchvision vgg19-dcbb9e9d.pth           -> kind "vgg19"    (classifier.* dropped)
    insightface arcface_torch backbone.pth   -> kind "arcface"  (variant r18/r34/r50/r100)
    Wav2Lip lipsync_expert.pth               -> kind "syncnet"  ({"state_dict": …}, "module.")

Command line:

    python -m resyncer_core.models.convert {vgg19,arcface,syncnet} IN.pth OUT.safetensors [--variant r100]

Every converter takes an optional `config` for networks that differ from the published ones
(custom-trained widths, tiny test models); it is used as given.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from .arcface import IRESNET_LAYERS, ArcFaceConfig, ArcFaceIResNet
from .checkpoint import save_checkpoint
from .syncnet import SyncNet, SyncNetConfig
from .vgg19 import VGG19Config, VGG19Features

# Where training checkpoints keep the network's weights: Wav2Lip's save_checkpoint, and
# arcface_torch's resumable checkpoint_gpu_N.pt (next to optimizer and margin-head state).
_TRAINING_CHECKPOINT_KEYS = ("state_dict", "state_dict_backbone")
# DataParallel / DistributedDataParallel prefix every key with this when the wrapped model is saved.
_DATA_PARALLEL_PREFIX = "module."
# BatchNorm's batch counter only drives momentum=None averaging during training; files saved
# before PyTorch 0.4.1 lack it, so a missing one is filled in rather than refused.
_OPTIONAL_SUFFIX = "num_batches_tracked"
# How torch.load(weights_only=True) names the class or function it refused to unpickle.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def read_foreign_state_dict(pth_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Loads a PyTorch .pth/.pt file as a flat {name: tensor} dict: unwraps a training
    checkpoint ({"state_dict": …} or {"state_dict_backbone": …}) and strips DataParallel's
    "module." prefix."""
    path = Path(pth_path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; download it first (see docs/pretrained_weights.md)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused:
            raise CheckpointError(f"weights file {path} pickles a Python object ({refused.group(1)}), which resyncer refuses to load; "
                                  "re-save just its tensors (the state_dict) with torch.save") from None
        raise CheckpointError(f"weights file {path} is not a plain-tensor PyTorch file (it is corrupt, or pickles objects "
                              "resyncer refuses to load); re-download it") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"weights file {path} is not a readable PyTorch file ({first_line}); re-download it") from None
    if isinstance(payload, Mapping):
        wrapped = next((payload[key] for key in _TRAINING_CHECKPOINT_KEYS if isinstance(payload.get(key), Mapping)), None)
        payload = payload if wrapped is None else wrapped
    if not isinstance(payload, Mapping) or not payload:
        raise CheckpointError(f"weights file {path} holds no state dict (got {type(payload).__name__}); it is not a network's weights")
    tensors = {}
    for name, value in payload.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"weights file {path} entry {name!r} is not a named tensor; it is not a plain state dict")
        tensors[name.removeprefix(_DATA_PARALLEL_PREFIX)] = value
    return tensors


def load_foreign_weights(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Copies `tensors` into `model` after checking that names and shapes match exactly; the
    error names the source file and the first offending tensor."""
    expected = model.state_dict()
    tensors = dict(tensors)
    for name, target in expected.items():
        if name not in tensors and name.endswith(_OPTIONAL_SUFFIX):
            tensors[name] = torch.zeros_like(target)
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise CheckpointError(f"weights file {source} lacks tensor {missing[0]!r} ({len(missing)} missing); "
                              "it is not the network (or variant) this converter expects")
    unexpected = [name for name in tensors if name not in expected]
    if unexpected:
        raise CheckpointError(f"weights file {source} has unexpected tensor {unexpected[0]!r} ({len(unexpected)} extra); "
                              "it is not the network (or variant) this converter expects")
    for name, target in expected.items():
        if tensors[name].shape != target.shape:
            raise CheckpointError(f"weights file {source} tensor {name!r} has shape {list(tensors[name].shape)} "
                                  f"but the network expects {list(target.shape)}; it is not the network (or variant) this converter expects")
    model.load_state_dict(tensors, strict=True)


def _convert(pth_path: str | os.PathLike, out_path: str | os.PathLike, kind: str, model: nn.Module, config: object,
             keep: Callable[[str], bool] = lambda name: True) -> Path:
    tensors = {name: tensor for name, tensor in read_foreign_state_dict(pth_path).items() if keep(name)}
    load_foreign_weights(model, tensors, pth_path)
    return save_checkpoint(model, config, kind, out_path,
                           extra_metadata={"resyncer.converted_from": Path(pth_path).name})


def convert_torchvision_vgg19(pth_path: str | os.PathLike, out_path: str | os.PathLike,
                              config: VGG19Config | None = None) -> Path:
    """torchvision's ImageNet VGG19 (vgg19-dcbb9e9d.pth) -> a "vgg19" checkpoint of the conv
    trunk; the fully connected classifier is dropped (the perceptual loss never uses it)."""
    config = config or VGG19Config()
    return _convert(pth_path, out_path, "vgg19", VGG19Features(config), config,
                    keep=lambda name: not name.startswith("classifier."))


def convert_insightface_arcface(pth_path: str | os.PathLike, out_path: str | os.PathLike, variant: str = "r50",
                                config: ArcFaceConfig | None = None) -> Path:
    """insightface arcface_torch backbone.pth (e.g. ms1mv3 r50 / r100) -> an "arcface"
    checkpoint. `variant` picks the block counts; a given `config` replaces it."""
    if config is None:
        if variant not in IRESNET_LAYERS:
            raise CheckpointError(f"ArcFace variant {variant!r} is unknown; use one of {', '.join(IRESNET_LAYERS)}")
        config = ArcFaceConfig(layers=IRESNET_LAYERS[variant])
    return _convert(pth_path, out_path, "arcface", ArcFaceIResNet(config), config)


def convert_wav2lip_syncnet(pth_path: str | os.PathLike, out_path: str | os.PathLike,
                            config: SyncNetConfig | None = None) -> Path:
    """Wav2Lip's lipsync_expert.pth (a training checkpoint: weights under "state_dict",
    possibly with "module." prefixes, next to optimizer state that is ignored) -> a
    "syncnet" checkpoint."""
    config = config or SyncNetConfig()
    return _convert(pth_path, out_path, "syncnet", SyncNet(config), config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resyncer_core.models.convert",
        description="Convert pretrained VGG19 / ArcFace / Wav2Lip SyncNet weights to resyncer safetensors checkpoints.")
    parser.add_argument("network", choices=("vgg19", "arcface", "syncnet"))
    parser.add_argument("source", help="original .pth file")
    parser.add_argument("output", help="resyncer .safetensors file to write")
    parser.add_argument("--variant", default="r50", choices=sorted(IRESNET_LAYERS),
                        help="ArcFace IResNet depth (arcface only; default r50)")
    args = parser.parse_args(argv)
    try:
        if args.network == "vgg19":
            written = convert_torchvision_vgg19(args.source, args.output)
        elif args.network == "arcface":
            written = convert_insightface_arcface(args.source, args.output, variant=args.variant)
        else:
            written = convert_wav2lip_syncnet(args.source, args.output)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
