"""Exponential moving average of a model's weights (the generator EMA of StyleGAN2, optional
for the SyncFormer)."""

from __future__ import annotations

import copy

import torch

from ..errors import ResyncerInputError


def check_ema_decay(decay: float) -> None:
    """Refuses an EMA decay outside [0, 1) (0 means no averaging); stage configs check theirs
    with it before any work starts."""
    if not 0.0 <= decay < 1.0:
        raise ResyncerInputError(f"EMA decay must be in [0, 1), got {decay}")


class ModelEMA(torch.nn.Module):
    """Holds `average`, a frozen copy of a model whose floating-point tensors follow
    average ← decay·average + (1 − decay)·model after every `update`; integer buffers are copied.
    Its state_dict is the average's, so checkpoints and exports treat it like any module."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        check_ema_decay(decay)
        self.decay = float(decay)
        self.average = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = model.state_dict()
        for name, tensor in self.average.state_dict().items():
            source = current[name].detach()
            if tensor.is_floating_point():
                tensor.lerp_(source.to(tensor.dtype), 1.0 - self.decay)
            else:
                tensor.copy_(source)

    def state_dict(self, *args, **kwargs):
        return self.average.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.average.load_state_dict(state_dict, strict=strict, assign=assign)
