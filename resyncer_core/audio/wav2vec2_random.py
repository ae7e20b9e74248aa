"""Randomly initialised Wav2Vec2 folders: test models, and the starting point when no
pretrained weights are at hand. All presets keep wav2vec2's 7-layer CNN strides (320 samples,
20 ms per step) so they align with video frames exactly like the released models."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ResyncerInputError

_BASE_CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)
_BASE_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)

# Overrides of Wav2Vec2Config's defaults, which are wav2vec2-base (the paper's encoder).
WAV2VEC2_PRESETS: dict[str, dict] = {
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    ),
    "small": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        conv_dim=(256,) * 7,
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
    ),
    "base": dict(),
}


def make_random_wav2vec2(folder, preset: str = "tiny", seed: int = 0) -> Path:
    """Write config.json, model.safetensors and preprocessor_config.json of a randomly
    initialised Wav2Vec2Model of `preset` (tiny | small | base) into `folder`; return it."""
    if preset not in WAV2VEC2_PRESETS:
        raise ResyncerInputError(f"Unknown Wav2Vec2 preset '{preset}'; choose one of {', '.join(WAV2VEC2_PRESETS)}.")
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        conv_kernel=_BASE_CONV_KERNELS, conv_stride=_BASE_CONV_STRIDES, **WAV2VEC2_PRESETS[preset]
    )
    # A private RNG stream keeps the caller's global torch seed untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    ).save_pretrained(folder)
    return folder


def make_tiny_wav2vec2(folder, seed: int = 0) -> Path:
    """The tiny preset (hidden 32, 2 layers, 2 heads), used by tests and `models init --preset tiny`."""
    return make_random_wav2vec2(folder, "tiny", seed)
