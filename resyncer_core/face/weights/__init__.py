"""Converted MediaPipe weights (Apache-2.0, see LICENSE and NOTICE here) and their loader.

The .safetensors files are produced by tools/convert_mediapipe.py from the .tflite models in the
mediapipe wheel; they hold float16 tensors (the precision the .tflite files store) under PyTorch
parameter names, and are loaded as float32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...models.checkpoint import load_state_into


def load_network(network: nn.Module, path: Path, device: torch.device) -> nn.Module:
    """Fill `network` from a converted safetensors file and return it in eval mode on `device`.
    Names and shapes are checked by the shared checkpoint loader; the float16 tensors become
    the network's float32 as they are copied in."""
    load_state_into(network, path)
    # Channels-last runs these depthwise-separable stacks about twice as fast on CPU (oneDNN) and
    # suits cuDNN too; the crops arrive channels-last already (see roi_warp.crop_square_rois).
    return network.eval().requires_grad_(False).to(device=device, memory_format=torch.channels_last)
