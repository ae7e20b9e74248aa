"""Audio: loading to mono 16 kHz, and encoders that give exactly one feature vector per video frame.

Importing this package loads no model; transformers is imported only when a Wav2Vec2 model is
built or loaded; the Whisper encoder is our own module (models.whisper_encoder).
"""

from .encoder import AudioEncoder, EncodingWindow
from .encoder_factory import audio_encoder_name, load_audio_encoder
from .loading import load_audio, load_soundtrack
from .mel_encoder import MelAudioEncoder
from .mel_features import MelConfig
from .timing import SAMPLE_RATE, frame_count_for, samples_spanned_by
from .wav2vec2_encoder import Wav2Vec2AudioEncoder
from .wav2vec2_folder import resolve_wav2vec2_folder
from .wav2vec2_random import WAV2VEC2_PRESETS, make_random_wav2vec2, make_tiny_wav2vec2
from .whisper_encoder import WhisperAudioEncoder

__all__ = [
    "SAMPLE_RATE",
    "WAV2VEC2_PRESETS",
    "AudioEncoder",
    "EncodingWindow",
    "MelAudioEncoder",
    "MelConfig",
    "Wav2Vec2AudioEncoder",
    "WhisperAudioEncoder",
    "audio_encoder_name",
    "frame_count_for",
    "load_audio",
    "load_audio_encoder",
    "load_soundtrack",
    "make_random_wav2vec2",
    "make_tiny_wav2vec2",
    "resolve_wav2vec2_folder",
    "samples_spanned_by",
]
