"""Weights shipped inside the package (one NOTICE per converted file), laid out as a models
folder (models.presets.MODEL_FILES names) plus the networks no models folder holds, so a fresh
install runs with no --models folder (stages.model_files falls back here):

    whisper_tiny_en_encoder.safetensors   the speech encoder (OpenAI Whisper tiny.en, MIT)
    syncformer.safetensors                Style-SyncFormer trained here on Whisper features (NOTICE.syncformer)
    generator.safetensors                 small ReSync generator trained here for the demo face only (NOTICE.generator)
    discriminator.safetensors             its run's discriminator, for `resyncer personalize` (NOTICE.generator)
    efficientnet_lite0.safetensors        perceptual-feature loss (ImageNet EfficientNet-Lite0, Apache-2.0)
    face_descriptor.safetensors           identity loss and metric (dlib face descriptor via face-api, MIT)

All are resyncer checkpoints: read them with models.checkpoint.load_checkpoint."""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODELS_DIR = Path(__file__).parent
WHISPER_ENCODER_PATH = SHIPPED_MODELS_DIR / "whisper_tiny_en_encoder.safetensors"
EFFICIENTNET_LITE0 = "efficientnet_lite0.safetensors"
FACE_DESCRIPTOR = "face_descriptor.safetensors"


def shipped_weights(name: str) -> Path:
    """Path of a shipped weights file (one of the names above)."""
    return SHIPPED_MODELS_DIR / name
