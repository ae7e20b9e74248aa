"""Converted MediaPipe weights (Apache-2.0, see LICENSE and NOTICE here) and their loader.

The .safetensors files are produced by tools/convert_mediapipe.py from the .tflite models in the
mediapipe wheel; they hold float16 tensors (the precision the .tflite files store) under PyTorch
parameter names, and are loaded as float32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import CheckpointError


def load_network(network: nn.Module, path: Path, device: torch.device) -> nn.Module:
    """Fill `network` from a converted safetensors file and return it in eval mode on `device`."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} is missing; regenerate it with tools/convert_mediapipe.py.")
    state = {name: tensor.float() for name, tensor in load_file(str(path)).items()}
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [n for n in expected.keys() & state.keys() if expected[n].shape != state[n].shape]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(f"{path.name} does not match {type(network).__name__}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}.")
    network.load_state_dict(state)
    # Channels-last runs these depthwise-separable stacks about twice as fast on CPU (oneDNN) and
    # suits cuDNN too; the crops arrive channels-last already (see roi_warp.crop_square_rois).
    return network.eval().requires_grad_(False).to(device=device, memory_format=torch.channels_last)
