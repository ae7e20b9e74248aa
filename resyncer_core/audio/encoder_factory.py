"""Pick an audio encoder from a short spec string, as the CLI and nodes receive it."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ResyncerInputError
from .encoder import AudioEncoder
from .mel_encoder import MelAudioEncoder
from .wav2vec2_encoder import Wav2Vec2AudioEncoder
from .whisper_encoder import WhisperAudioEncoder

MEL_SPEC = "mel"
WHISPER_SPEC = "whisper"
WAV2VEC2_NAME = "wav2vec2"
# What a SyncFormer checkpoint records as the encoder it was trained on (see audio_encoder_name).
AUDIO_ENCODER_NAMES = (WHISPER_SPEC, MEL_SPEC, WAV2VEC2_NAME)


def audio_encoder_name(spec) -> str:
    """The family of a load_audio_encoder spec, as a SyncFormer checkpoint records it:
    "whisper" (the shipped encoder or a converted file), "mel", or "wav2vec2" (a folder)."""
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name in (MEL_SPEC, WHISPER_SPEC):
        return name
    if isinstance(spec, (str, os.PathLike)) and Path(spec).suffix == ".safetensors":
        return WHISPER_SPEC
    return WAV2VEC2_NAME


def load_audio_encoder(spec, device="cpu") -> AudioEncoder:
    """"mel" -> MelAudioEncoder; "whisper" -> the shipped Whisper tiny.en encoder; a converted
    Whisper encoder .safetensors file -> that one; a Hugging Face-format Wav2Vec2 folder ->
    Wav2Vec2AudioEncoder. Returned in eval mode on `device`."""
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name == MEL_SPEC:
        return MelAudioEncoder().to(device).eval()
    if name == WHISPER_SPEC:
        return WhisperAudioEncoder.from_file(device=device)
    if isinstance(spec, (str, os.PathLike)) and Path(spec).suffix == ".safetensors" and Path(spec).is_file():
        return WhisperAudioEncoder.from_file(spec, device=device)
    if isinstance(spec, (str, os.PathLike)) and (Path(spec) / "config.json").is_file():
        return Wav2Vec2AudioEncoder.from_pretrained(spec, device=device)
    raise ResyncerInputError(
        f"Audio encoder '{spec}' is not 'mel', 'whisper', a Whisper encoder .safetensors file or a Wav2Vec2 folder "
        "with config.json; pass one of those."
    )
