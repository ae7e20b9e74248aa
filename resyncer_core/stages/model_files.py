"""Finding and loading the models a pipeline needs from a models folder.

The folder is the one `resyncer models init` writes (models.presets.MODEL_FILES names plus the
Wav2Vec2 folder). It comes from the caller (the CLI's --models), else the RESYNCER_MODELS
environment variable, else ./models when it exists, else the weights shipped in the package
(resyncer_core/weights). A missing model is a one-line error that says where to put it, since
no trained ReSyncer weights exist to download.

The audio encoder is the one the Style-SyncFormer was trained on, named in its checkpoint
metadata (models.presets.AUDIO_ENCODER_KEY): "whisper" (shipped), "mel", or "wav2vec2" (the
folder's); checkpoints without the key use the folder's Wav2Vec2.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..audio import load_audio_encoder
from ..audio.encoder_factory import AUDIO_ENCODER_NAMES, WAV2VEC2_NAME
from ..errors import ResyncerInputError
from ..models.checkpoint import is_random_initialised, load_checkpoint, read_checkpoint_metadata
from ..models.presets import AUDIO_ENCODER_KEY, MODEL_FILES, WAV2VEC2_FOLDER
from ..weights import EFFICIENTNET_LITE0, FACE_DESCRIPTOR, SHIPPED_MODELS_DIR, shipped_weights
from .face_identity import TargetCrops
from .warping import MeshWarp, choose_renderer

MODELS_ENV = "RESYNCER_MODELS"
DEFAULT_MODELS_DIR = Path("models")


# Where a trained file of each kind comes from. Advice never names `resyncer models init`: its
# random weights in a models folder would hide the shipped trained ones and draw noise.
_HOW_TO_GET = {
    "syncformer": "put one from `resyncer train stage1` there, or pass one with --syncformer",
    "generator": "put one from `resyncer train stage2` there, or pass one with --generator",
    "discriminator": "put the one `resyncer train stage2` writes beside its generator there",
    "wav2vec2": "save a Hugging Face Wav2Vec2 model there with save_pretrained (docs/pretrained_weights.md)",
}
_USE_SHIPPED = f"or give no --models, no ${MODELS_ENV} and no ./models to use the shipped weights"


def resolve_models_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """The models folder: `models_dir`, else $RESYNCER_MODELS (either must exist), else
    ./models when it exists, else the shipped weights folder."""
    named = models_dir or os.environ.get(MODELS_ENV)
    if not named and not DEFAULT_MODELS_DIR.is_dir():
        return SHIPPED_MODELS_DIR
    folder = Path(named or DEFAULT_MODELS_DIR)
    origin = "--models" if models_dir else f"${MODELS_ENV}"
    if folder.is_file():
        raise ResyncerInputError(
            f"models folder {folder} ({origin}) is a file, not a folder; pass the folder that holds "
            f"{MODEL_FILES['generator']} and the rest, or a single checkpoint with --generator or --syncformer")
    if not folder.is_dir():
        raise ResyncerInputError(
            f"models folder {folder} ({origin}) does not exist; check the path, {_USE_SHIPPED}")
    return folder


def model_file(models_dir: Path, kind: str) -> Path:
    """The checkpoint of `kind` in the folder, or a one-line error naming where it belongs."""
    path = models_dir / (WAV2VEC2_FOLDER if kind == "wav2vec2" else MODEL_FILES[kind])
    if path.exists():
        return path
    if Path(models_dir) == SHIPPED_MODELS_DIR:
        raise ResyncerInputError(
            f"no {path.name} is shipped with this resyncer and no models folder was given (no --models, "
            f"${MODELS_ENV} or ./models); pass --models DIR and {_HOW_TO_GET[kind]}")
    what = "Wav2Vec2 folder" if kind == "wav2vec2" else kind
    raise ResyncerInputError(f"no {what} at {path}; {_HOW_TO_GET[kind]}, {_USE_SHIPPED}")


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ResyncerInputError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ResyncerInputError(f"device {device} was asked for but CUDA is not available; use --device cpu")
    return resolved


def generator_file(models_dir: Path | None, path: str | os.PathLike | None = None) -> Path:
    """The generator checkpoint to use: `path` (e.g. a personalised one), else the folder's."""
    return Path(path) if path else model_file(models_dir, "generator")


def load_generator(models_dir: Path | None, device: torch.device, path: str | os.PathLike | None = None):
    """The generator at `path` (e.g. a personalised one), else the folder's."""
    return load_checkpoint(generator_file(models_dir, path), kind="generator", device=device)[0]


@dataclass
class PipelineModels:
    """What the video pipelines run: the audio encoder and Style-SyncFormer (None when a
    pipeline draws meshes from video only) and the renderer: the generator, or a MeshWarp."""

    generator: torch.nn.Module | MeshWarp
    syncformer: torch.nn.Module | None = None
    audio_encoder: torch.nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def drives_from_audio(self) -> bool:
        return self.syncformer is not None and self.audio_encoder is not None


def trained_audio_encoder_spec(syncformer_path: str | os.PathLike) -> str | None:
    """The audio encoder a trained Style-SyncFormer file records (`resyncer train stage1` and
    `resyncer models init` write it), or None for a file without one."""
    return read_checkpoint_metadata(syncformer_path).get(AUDIO_ENCODER_KEY)


def load_pipeline_models(models_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                         with_audio: bool = True, generator_path: str | os.PathLike | None = None,
                         syncformer_path: str | os.PathLike | None = None, renderer: str = "generator",
                         log: Callable[[str], None] | None = None,
                         target_crops: TargetCrops | None = None, swap: bool = False) -> PipelineModels:
    """Loads the renderer and, with_audio, the Style-SyncFormer and its audio encoder, checking
    that the encoder's feature size is the one the SyncFormer was built for. generator_path and
    syncformer_path (e.g. a training run's files) replace the folder's; the encoder is the one
    the SyncFormer file records, else the folder's Wav2Vec2. renderer is "generator", "warp"
    (no checkpoint read) or "auto" (the generator unless it is a random initialisation or was
    trained on other faces than `target_crops()` shows, or, for a `swap`, not trained for it;
    `log` gets the one line saying so).
    The folder is only needed for what these do not provide."""
    device = resolve_device(device)
    standalone = bool(generator_path) or renderer == "warp"
    folder = None if (standalone and not with_audio) else resolve_models_dir(models_dir)
    if renderer != "generator":
        folder_generator = folder / MODEL_FILES["generator"] if folder else None
        renderer = choose_renderer(renderer, Path(generator_path) if generator_path else folder_generator, log,
                                   target_crops, swap)
    generator = MeshWarp(device) if renderer == "warp" else load_generator(folder, device, generator_path)
    if not with_audio:
        return PipelineModels(generator=generator, device=device)
    syncformer_file = Path(syncformer_path) if syncformer_path else model_file(folder, "syncformer")
    syncformer = load_checkpoint(syncformer_file, kind="syncformer", device=device)[0]
    audio_encoder = load_syncformer_audio_encoder(syncformer_file, folder, device)
    if audio_encoder.feature_dim != syncformer.config.audio_dim:
        raise ResyncerInputError(
            f"the audio encoder for {syncformer_file} gives {audio_encoder.feature_dim}-d features but the "
            f"Style-SyncFormer expects {syncformer.config.audio_dim}; use models from the same preset or training run")
    return PipelineModels(generator=generator, syncformer=syncformer, audio_encoder=audio_encoder, device=device)


def load_syncformer_audio_encoder(syncformer_path: Path, models_dir: Path, device: str | torch.device = "cpu"):
    """The audio encoder a SyncFormer checkpoint names (AUDIO_ENCODER_KEY): "whisper" or "mel"
    as load_audio_encoder specs, a Wav2Vec2 folder a training run recorded, or "wav2vec2" (also
    when the key is absent) for the models folder's."""
    name = trained_audio_encoder_spec(syncformer_path) or WAV2VEC2_NAME
    if name == WAV2VEC2_NAME:
        return load_audio_encoder(model_file(models_dir, "wav2vec2"), device=device)
    if name not in AUDIO_ENCODER_NAMES and not Path(name).is_dir():
        raise ResyncerInputError(f"{syncformer_path} names audio encoder {name!r}, which is neither one of "
                                 f"{', '.join(AUDIO_ENCODER_NAMES)} nor a Wav2Vec2 folder here; pass --models "
                                 "with that encoder or update resyncer")
    return load_audio_encoder(name, device=device)


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
