"""Finding and loading the models a pipeline needs from a models folder.

The folder is the one `resyncer models init` writes (models.presets.MODEL_FILES names plus the
Wav2Vec2 folder). It comes from the caller (the CLI's --models), else the RESYNCER_MODELS
environment variable, else ./models. A missing model is a one-line error that says where to
put it, since no trained ReSyncer weights exist to download.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from ..audio import load_audio_encoder
from ..errors import ResyncerInputError
from ..models.checkpoint import load_checkpoint
from ..models.presets import INITIALISATION_KEY, MODEL_FILES, WAV2VEC2_FOLDER
from ..weights import EFFICIENTNET_LITE0, FACE_DESCRIPTOR, shipped_weights

# Metadata key of a trained Style-SyncFormer (and of cached features): the audio encoder spec
# (what resyncer_core.audio.load_audio_encoder accepts) its inputs come from.
AUDIO_ENCODER_KEY = "resyncer.audio_encoder"

MODELS_ENV = "RESYNCER_MODELS"
DEFAULT_MODELS_DIR = Path("models")


def resolve_models_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """The models folder: `models_dir`, else $RESYNCER_MODELS, else ./models; it must exist."""
    folder = Path(models_dir) if models_dir else Path(os.environ.get(MODELS_ENV) or DEFAULT_MODELS_DIR)
    if not folder.is_dir():
        raise ResyncerInputError(
            f"models folder {folder} does not exist; run `resyncer models init --preset tiny -o {folder}` "
            f"or pass --models (or set {MODELS_ENV})")
    return folder


def model_file(models_dir: Path, kind: str) -> Path:
    """The checkpoint of `kind` in the folder, or a one-line error naming where it belongs."""
    path = models_dir / (WAV2VEC2_FOLDER if kind == "wav2vec2" else MODEL_FILES[kind])
    if not path.exists():
        what = "Wav2Vec2 folder" if kind == "wav2vec2" else kind
        raise ResyncerInputError(
            f"no {what} at {path}; run `resyncer models init --preset tiny -o {models_dir}` or train one")
    return path


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ResyncerInputError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ResyncerInputError(f"device {device} was asked for but CUDA is not available; use --device cpu")
    return resolved


def load_generator(models_dir: Path | None, device: torch.device, path: str | os.PathLike | None = None):
    """The generator at `path` (e.g. a personalised one), else the folder's."""
    checkpoint = Path(path) if path else model_file(models_dir, "generator")
    return load_checkpoint(checkpoint, kind="generator", device=device)[0]


@dataclass
class PipelineModels:
    """What the video pipelines run: the audio encoder and Style-SyncFormer (None when a
    pipeline draws meshes from video only) and the generator."""

    generator: torch.nn.Module
    syncformer: torch.nn.Module | None = None
    audio_encoder: torch.nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def drives_from_audio(self) -> bool:
        return self.syncformer is not None and self.audio_encoder is not None


def trained_audio_encoder_spec(syncformer_path: str | os.PathLike) -> str | None:
    """The audio encoder spec a trained Style-SyncFormer file records (`resyncer train stage1`
    writes it), or None for a file without one (e.g. from `resyncer models init`)."""
    with safe_open(str(syncformer_path), framework="pt") as handle:
        return (handle.metadata() or {}).get(AUDIO_ENCODER_KEY)


def load_pipeline_models(models_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                         with_audio: bool = True, generator_path: str | os.PathLike | None = None,
                         syncformer_path: str | os.PathLike | None = None) -> PipelineModels:
    """Loads the generator and, with_audio, the Style-SyncFormer and its audio encoder, checking
    that the encoder's feature size is the one the SyncFormer was built for. generator_path and
    syncformer_path (e.g. a training run's files) replace the folder's; the encoder is the one
    the SyncFormer file records, else the folder's Wav2Vec2. The folder is only needed for what
    these do not provide."""
    device = resolve_device(device)
    folder = None if (generator_path and not with_audio) else resolve_models_dir(models_dir)
    generator = load_generator(folder, device, generator_path)
    if not with_audio:
        return PipelineModels(generator=generator, device=device)
    syncformer_file = Path(syncformer_path) if syncformer_path else model_file(folder, "syncformer")
    syncformer = load_checkpoint(syncformer_file, kind="syncformer", device=device)[0]
    encoder_spec = trained_audio_encoder_spec(syncformer_file) or model_file(folder, "wav2vec2")
    audio_encoder = load_audio_encoder(encoder_spec, device=device)
    if audio_encoder.feature_dim != syncformer.config.audio_dim:
        raise ResyncerInputError(
            f"the audio encoder {encoder_spec} gives {audio_encoder.feature_dim}-d features but the Style-SyncFormer "
            f"{syncformer_file} expects {syncformer.config.audio_dim}; use models from the same preset or training run")
    return PipelineModels(generator=generator, syncformer=syncformer, audio_encoder=audio_encoder, device=device)


def is_random_initialised(path: Path) -> bool:
    """Whether a checkpoint is marked as `resyncer models init`'s random weights."""
    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get(INITIALISATION_KEY) == "random"


@dataclass
class LossNetwork:
    """A frozen pretrained network used by a loss or a metric, and what it is."""

    network: torch.nn.Module
    name: str


def _pretrained_in_folder(models_dir: Path | None, kind: str, log: Callable[[str], None]) -> Path | None:
    if models_dir is None:
        return None
    path = models_dir / MODEL_FILES[kind]
    if not path.is_file():
        return None
    if is_random_initialised(path):
        log(f"{path} is random-initialised (not trained weights): not used")
        return None
    return path


def load_perceptual_network(models_dir: Path | None, device: torch.device,
                            log: Callable[[str], None] = lambda message: None) -> LossNetwork:
    """The perceptual-loss network: VGG19 (the paper's) when the models folder holds trained
    vgg19.safetensors, else the shipped ImageNet EfficientNet-Lite0 (DESIGN §9)."""
    path = _pretrained_in_folder(models_dir, "vgg19", log)
    if path is not None:
        return LossNetwork(load_checkpoint(path, kind="vgg19", device=device)[0], "VGG19 perceptual loss")
    network = load_checkpoint(shipped_weights(EFFICIENTNET_LITE0), kind="efficientnet_lite0", device=device)[0]
    return LossNetwork(network, "EfficientNet-Lite0 feature loss")


def load_identity_network(models_dir: Path | None, device: torch.device,
                          log: Callable[[str], None] = lambda message: None) -> LossNetwork:
    """The identity network E_id: ArcFace (the paper's) when the models folder holds trained
    arcface.safetensors, else the shipped dlib face descriptor (face-api port, DESIGN §9)."""
    path = _pretrained_in_folder(models_dir, "arcface", log)
    if path is not None:
        return LossNetwork(load_checkpoint(path, kind="arcface", device=device)[0], "ArcFace")
    network = load_checkpoint(shipped_weights(FACE_DESCRIPTOR), kind="face_descriptor", device=device)[0]
    return LossNetwork(network, "dlib face descriptor (face-api port)")
