"""Model-size presets and `resyncer models init`: random-initialised checkpoints of every model.

    tiny   seconds on a CPU; what tests and the bundled demo run with
    small  CPU demos and quick experiments (generator at 1/8 width, small Wav2Vec2)
    paper  the paper's sizes (d_model 128 SyncFormer, full-width 256² generator, wav2vec2-base)

A models folder holds one file per model under fixed names (MODEL_FILES) plus the Wav2Vec2
folder, so pipelines and nodes find every model from the folder alone. The perceptual,
identity and sync networks are written at their published architecture for small/paper so
that converted pretrained weights drop in (docs/pretrained_weights.md); their random weights
are marked in the metadata so training can refuse to use them as loss networks unknowingly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..audio import make_random_wav2vec2
from ..errors import ResyncerInputError
from .checkpoint import save_checkpoint
from .registry import model_kind

PRESET_NAMES = ("tiny", "small", "paper")

MODEL_FILES = {
    "syncformer": "syncformer.safetensors",
    "generator": "generator.safetensors",
    "discriminator": "discriminator.safetensors",
    "vgg19": "vgg19.safetensors",
    "arcface": "arcface.safetensors",
    "syncnet": "syncnet.safetensors",
}
WAV2VEC2_FOLDER = "wav2vec2"
INITIALISATION_KEY = "resyncer.initialisation"

# Config overrides per preset; every value not named keeps the config dataclass's (paper) default.
_PRESETS: dict[str, dict[str, dict]] = {
    "tiny": {
        "wav2vec2": {"preset": "tiny"},
        "syncformer": dict(audio_dim=32, d_model=32, n_heads=2, ff_dim=64),
        "generator": dict(narrow=1 / 32, style_dim=64, n_mlp=2),
        "discriminator": dict(narrow=1 / 32),
        "vgg19": dict(channels=(4, 8, 8, 16, 16)),
        "arcface": dict(layers=(1, 1, 1, 1), stem_width=8, embedding_size=32),
        "syncnet": dict(face_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16), embedding_size=32),
    },
    "small": {
        "wav2vec2": {"preset": "small"},
        "syncformer": dict(audio_dim=256),
        "generator": dict(narrow=0.125, style_dim=256, n_mlp=4),
        "discriminator": dict(narrow=0.125),
        "vgg19": {}, "arcface": {}, "syncnet": {},
    },
    "paper": {
        "wav2vec2": {"preset": "base"},
        "syncformer": {}, "generator": {}, "discriminator": {},
        "vgg19": {}, "arcface": {}, "syncnet": {},
    },
}


def _check_preset(preset: str) -> dict[str, dict]:
    if preset not in _PRESETS:
        raise ResyncerInputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    return _PRESETS[preset]


def preset_config(preset: str, kind: str, **overrides):
    """The config dataclass of model `kind` in `preset`, with `overrides` on top (e.g. a paper-size
    SyncFormer for another audio encoder: preset_config("paper", "syncformer", audio_dim=384))."""
    values = {**_check_preset(preset)[kind], **overrides}
    _, config_class = model_kind(kind).load_classes()
    return config_class(**values)


def init_models(preset: str, output_dir: str | Path, seed: int = 0, overwrite: bool = False) -> dict[str, Path]:
    """Writes a random-initialised checkpoint of every model of `preset` into `output_dir`
    (the Wav2Vec2 one as an HF folder) and returns {name: path}. Existing files are kept
    unless `overwrite`, so a folder of trained models is never clobbered by accident."""
    presets = _check_preset(preset)
    output_dir = Path(output_dir)
    targets = {kind: output_dir / name for kind, name in MODEL_FILES.items()}
    targets["wav2vec2"] = output_dir / WAV2VEC2_FOLDER
    existing = [path for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise ResyncerInputError(f"{existing[0]} already exists; pass --force to overwrite or pick another folder")
    output_dir.mkdir(parents=True, exist_ok=True)

    metadata = {INITIALISATION_KEY: "random", "resyncer.preset": preset, "resyncer.seed": str(seed)}
    written: dict[str, Path] = {}
    with torch.random.fork_rng(devices=[]):
        for index, kind in enumerate(MODEL_FILES):
            torch.manual_seed(seed + index)  # each model's init independent of the others' sizes
            config = preset_config(preset, kind)
            model_class, _ = model_kind(kind).load_classes()
            written[kind] = save_checkpoint(model_class(config), config, kind, targets[kind], extra_metadata=metadata)
    written["wav2vec2"] = make_random_wav2vec2(targets["wav2vec2"], presets["wav2vec2"]["preset"], seed=seed)
    return written
