"""Weights shipped inside the package, laid out as a models folder (models.presets.MODEL_FILES
names) plus the speech encoder, so a fresh install lip-syncs with no --models folder
(stages.model_files falls back here). Each converted file has a NOTICE beside it."""

from pathlib import Path

SHIPPED_MODELS_DIR = Path(__file__).parent
WHISPER_ENCODER_PATH = SHIPPED_MODELS_DIR / "whisper_tiny_en_encoder.safetensors"
