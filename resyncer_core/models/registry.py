"""Maps checkpoint kinds to their model and config classes.

Imports are lazy so that reading a checkpoint header, or importing this module, never
pulls in every network.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelKind:
    module: str
    model_class: str
    config_class: str

    def load_classes(self):
        module = importlib.import_module(self.module)
        return getattr(module, self.model_class), getattr(module, self.config_class)


MODEL_KINDS: dict[str, ModelKind] = {
    "syncformer": ModelKind("resyncer_core.models.syncformer", "StyleSyncFormer", "SyncFormerConfig"),
    "generator": ModelKind("resyncer_core.models.generator", "ReSyncGenerator", "GeneratorConfig"),
    "discriminator": ModelKind("resyncer_core.models.discriminator", "Discriminator", "DiscriminatorConfig"),
    "vgg19": ModelKind("resyncer_core.models.vgg19", "VGG19Features", "VGG19Config"),
    "arcface": ModelKind("resyncer_core.models.arcface", "ArcFaceIResNet", "ArcFaceConfig"),
    "syncnet": ModelKind("resyncer_core.models.syncnet", "SyncNet", "SyncNetConfig"),
    "whisper_encoder": ModelKind("resyncer_core.models.whisper_encoder", "WhisperAudioTransformer", "WhisperEncoderConfig"),
    "efficientnet_lite0": ModelKind("resyncer_core.models.efficientnet_lite0", "EfficientNetLite0Features",
                                    "EfficientNetLite0Config"),
    "face_descriptor": ModelKind("resyncer_core.models.face_descriptor", "FaceDescriptorResNet",
                                 "FaceDescriptorConfig"),
}


def model_kind(kind: str) -> ModelKind:
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODEL_KINDS))}") from None
