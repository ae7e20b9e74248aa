"""Audio stage: Load Audio Encoder (class id ReSyncerLoadWav2Vec2, kept so saved workflows load),
Audio Features."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import (
    AUDIO_ENCODER,
    AUDIO_FEATURES,
    MAX_FRAMES,
    LoadedModel,
    audio_to_mono,
    category,
    device_input,
    fps_input,
    require_handle,
)

NO_WAV2VEC2 = "mel"


class AudioFeatures:
    """RESYNCER_AUDIO_FEATURES: features [T, A] (one per video frame, CPU float32) at `fps`."""

    def __init__(self, features, fps: float):
        self.features, self.fps = features, float(fps)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __repr__(self) -> str:
        return f"AudioFeatures({len(self)} frames × {self.features.shape[1]} at {self.fps:g} fps)"


class ReSyncerLoadWav2Vec2:
    DESCRIPTION = ("Loads the audio encoder: a Hugging Face-format Wav2Vec2 folder from models/wav2vec2 (or "
                   "models/resyncer), the shipped Whisper tiny.en encoder, or 'mel' for the mel-spectrogram "
                   "front-end.")
    CATEGORY = category("audio")
    RETURN_TYPES = (AUDIO_ENCODER,)
    RETURN_NAMES = ("audio_encoder",)
    FUNCTION = "load"
    REQUIRES = ("transformers",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (adapter.list_wav2vec2_models(), {"tooltip": "Wav2Vec2 folder (with config.json) under the "
                                                           "wav2vec2 or resyncer model folders; 'whisper (shipped)' "
                                                           "and 'mel' only with a SyncFormer trained on them."}),
                "device": device_input(),
            }
        }

    def load(self, model, device="auto"):
        from resyncer_core.audio import load_audio_encoder

        adapter.torch_device(device)
        if model == NO_WAV2VEC2:
            spec, key = NO_WAV2VEC2, ("audio", NO_WAV2VEC2)
        elif model == adapter.WHISPER_ENCODER:
            spec, key = "whisper", ("audio", "whisper")
        else:
            folder = adapter.resolve_model(adapter.WAV2VEC2_FOLDER, model)
            spec, key = str(folder), ("audio", adapter.file_key(folder / "config.json"))
        encoder = adapter.MODEL_CACHE.get(key, lambda: load_audio_encoder(spec, device=adapter.offload_device()))
        return (LoadedModel(encoder, device, str(spec), "audio_encoder"),)


class ReSyncerAudioFeatures:
    DESCRIPTION = ("Encodes speech into one feature vector per video frame with the loaded audio encoder (Whisper, "
                   "mel or Wav2Vec2 features read at each frame's time).")
    CATEGORY = category("audio")
    RETURN_TYPES = (AUDIO_FEATURES,)
    RETURN_NAMES = ("audio_features",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio": ("AUDIO", {"tooltip": "The speech to lip-sync to (any rate/channels; used as 16 kHz mono)."}),
                "audio_encoder": (AUDIO_ENCODER, {"tooltip": "From Load Audio Encoder."}),
                "fps": fps_input(),
                "frame_count": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                        "tooltip": "Frames to make features for; connect the video's frame count so "
                                                   "audio and video line up. 0 = as many as the audio lasts."}),
            }
        }

    def encode(self, audio, audio_encoder, fps, frame_count=0):
        from resyncer_core.audio import frame_count_for
        from resyncer_core.stages.functions import compute_audio_features

        handle = require_handle(audio_encoder, "audio_encoder", "audio_encoder")
        waveform = audio_to_mono(audio)
        count = int(frame_count) or frame_count_for(len(waveform), fps)
        adapter.check_interrupt()
        progress = adapter.Progress(1)
        with adapter.on_device(handle.model, device=handle.torch_device()):
            features = compute_audio_features(handle.model, waveform, fps, count)
        progress.update(1)
        return (AudioFeatures(features, fps),)


NODE_CLASSES = {
    # The ids keep their first names (saved workflows name them); the display names say what loads.
    "ReSyncerLoadWav2Vec2": (ReSyncerLoadWav2Vec2, "Load Audio Encoder"),
    "ReSyncerAudioFeatures": (ReSyncerAudioFeatures, "Audio Features"),
}
