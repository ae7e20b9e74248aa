"""Frozen loss networks (VGG19 perceptual, ArcFace identity, SyncNet critic)."""

from __future__ import annotations

from torch import nn


class FreezableNetwork(nn.Module):
    """A pretrained network used as a loss or metric. With `config.frozen` its parameters do
    not require grad and it stays in eval mode even when a parent module (the training loop's
    model) is switched to train mode, so its BatchNorm statistics never drift; gradients still
    flow to its inputs, which is what a loss needs. Subclasses call `apply_freeze()` last in
    their constructor, after building their layers and setting `self.config`."""

    def apply_freeze(self) -> None:
        if self.config.frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True):
        return super().train(mode and not self.config.frozen)
