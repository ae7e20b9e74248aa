"""Pick an audio encoder from a short spec string, as the CLI and nodes receive it."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ResyncerInputError
from .encoder import AudioEncoder
from .mel_encoder import MelAudioEncoder
from .wav2vec2_encoder import Wav2Vec2AudioEncoder

MEL_SPEC = "mel"


def load_audio_encoder(spec, device="cpu") -> AudioEncoder:
    """"mel" -> MelAudioEncoder; a Hugging Face-format Wav2Vec2 folder -> Wav2Vec2AudioEncoder.
    Returned in eval mode on `device`."""
    if isinstance(spec, str) and spec.strip().lower() == MEL_SPEC:
        return MelAudioEncoder().to(device).eval()
    if isinstance(spec, (str, os.PathLike)) and (Path(spec) / "config.json").is_file():
        return Wav2Vec2AudioEncoder.from_pretrained(spec, device=device)
    raise ResyncerInputError(
        f"Audio encoder '{spec}' is neither 'mel' nor a Wav2Vec2 folder with config.json; pass one of those."
    )
