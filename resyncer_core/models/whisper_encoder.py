"""Whisper's audio encoder (Radford et al. 2022), with parameter names identical to
transformers' WhisperEncoder, so its state dict (or the `model.encoder.` part of a Hugging Face
Whisper checkpoint) loads as is.

Log-mel [B, n_mels, 2 * max_positions] (30 s at 100 Hz) -> [B, max_positions, d_model] at
50 Hz. Kept as our own small module rather than transformers' class: that one takes only full
30 s inputs through a forward whose signature moves between releases, while this one is the
same arithmetic (pre-norm blocks, exact GELU, no bias on the key projection) on any input up
to 30 s; the tests check it against transformers' module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Defaults are Whisper tiny / tiny.en's encoder."""

    n_mels: int = 80
    d_model: int = 384
    n_layers: int = 4
    n_heads: int = 6
    ffn_dim: int = 1536
    max_positions: int = 1500

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def max_input_steps(self) -> int:
        """Mel steps of one full window (two per output step: conv2 has stride 2)."""
        return 2 * self.max_positions


class WhisperSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape

        def heads(projection: nn.Linear) -> torch.Tensor:
            return projection(hidden).view(batch, length, self.n_heads, -1).transpose(1, 2)

        attended = functional.scaled_dot_product_attention(heads(self.q_proj), heads(self.k_proj), heads(self.v_proj))
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, width))


class WhisperEncoderLayer(nn.Module):
    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        self.self_attn = WhisperSelfAttention(config.d_model, config.n_heads)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.self_attn_layer_norm(hidden))
        return hidden + self.fc2(functional.gelu(self.fc1(self.final_layer_norm(hidden))))


class WhisperAudioTransformer(nn.Module):
    """The encoder network; positional embeddings are learned-layout weights (sinusoids in
    the released models), taken from the start for inputs shorter than 30 s."""

    def __init__(self, config: WhisperEncoderConfig | None = None) -> None:
        super().__init__()
        config = config or WhisperEncoderConfig()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(config.d_model, config.d_model, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_positions, config.d_model)
        self.layers = nn.ModuleList(WhisperEncoderLayer(config) for _ in range(config.n_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, L] with L <= 2 * max_positions -> [B, ceil(L / 2), d_model]."""
        if log_mel.dim() != 3 or log_mel.shape[1] != self.config.n_mels or log_mel.shape[2] > self.config.max_input_steps:
            raise ValueError(f"the Whisper encoder takes log-mel [B, {self.config.n_mels}, <= "
                             f"{self.config.max_input_steps}], got {tuple(log_mel.shape)}")
        hidden = functional.gelu(self.conv2(functional.gelu(self.conv1(log_mel)))).transpose(1, 2)
        hidden = hidden + self.embed_positions.weight[: hidden.shape[1]]
        for layer in self.layers:
            hidden = layer(hidden)
        return self.layer_norm(hidden)
