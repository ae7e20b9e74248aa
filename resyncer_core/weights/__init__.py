"""Pretrained networks shipped with the pack (converted from registry packages; one NOTICE per
file): efficientnet_lite0.safetensors (perceptual-feature loss, Apache-2.0) and
face_descriptor.safetensors (dlib face descriptor via face-api, MIT). Both are resyncer
checkpoints: read them with models.checkpoint.load_checkpoint."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

EFFICIENTNET_LITE0 = "efficientnet_lite0.safetensors"
FACE_DESCRIPTOR = "face_descriptor.safetensors"


def shipped_weights(name: str) -> Path:
    """Path of a shipped weights file (one of the names above)."""
    return Path(str(resources.files(__package__).joinpath(name)))
