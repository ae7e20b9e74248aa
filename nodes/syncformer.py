"""Mesh stage from audio: Load Style-SyncFormer, Style-SyncFormer (paper §3.1)."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import (
    AUDIO_FEATURES,
    FACE_TRACK,
    IDENTITY,
    MESHES,
    STYLE,
    SYNCFORMER,
    category,
    device_input,
    interrupt_callback,
    load_checkpoint_cached,
    require_handle,
)

KIND = "syncformer"


class ReSyncerLoadSyncFormer:
    DESCRIPTION = ("Loads a Style-SyncFormer checkpoint (.safetensors) from the resyncer model folder, or any file given "
                   "as checkpoint_file (a training run's syncformer.safetensors).")
    CATEGORY = category("syncformer")
    RETURN_TYPES = (SYNCFORMER,)
    RETURN_NAMES = ("syncformer",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        names = adapter.combo_or_placeholder(adapter.list_checkpoints(KIND), "syncformer.safetensors")
        return {
            "required": {
                "model": (names, {"tooltip": "Style-SyncFormer checkpoint in models/resyncer (or --models DIR), or "
                                  "one shipped with resyncer; `resyncer models init` writes syncformer.safetensors."}),
                "device": device_input(),
            },
            "optional": {
                "checkpoint_file": ("STRING", {"default": "", "tooltip": "Absolute path of a Style-SyncFormer file to "
                                               "use instead of `model`, e.g. a training run's RUN/syncformer.safetensors "
                                               "(`resyncer train stage1`). Empty: use `model`."}),
            },
        }

    def load(self, model, device="auto", checkpoint_file=""):
        return (load_checkpoint_cached(KIND, checkpoint_file.strip() or model, device),)


class ReSyncerSyncFormer:
    DESCRIPTION = ("Predicts one 3D face mesh per video frame from the audio features, in the speaking style of the "
                   "reference, on the template of the face track (or of a swap identity).")
    CATEGORY = category("syncformer")
    RETURN_TYPES = (MESHES,)
    RETURN_NAMES = ("meshes",)
    FUNCTION = "predict"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "syncformer": (SYNCFORMER, {"tooltip": "From Load Style-SyncFormer."}),
                "audio_features": (AUDIO_FEATURES, {"tooltip": "One feature vector per output frame."}),
                "style": (STYLE, {"tooltip": "Speaking style ΔM_ref from Style Reference."}),
                "face_track": (FACE_TRACK, {"tooltip": "Track whose template M̄ the mouth motion is added to "
                                            "(normally the target video's)."}),
            },
            "optional": {
                "identity": (IDENTITY, {"tooltip": "Face swap: use this identity's template instead of the "
                                        "track's (the source face shape)."}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                       "tooltip": "Scales the predicted mouth motion: 1 is the model's own, 0 a still "
                                                  "mouth, above 1 livelier."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def predict(self, syncformer, audio_features, style, face_track, identity=None, strength=1.0, unique_id=None):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.mouth.style import closed_neutral, with_strength
        from resyncer_core.stages.functions import predict_meshes

        handle = require_handle(syncformer, KIND, "syncformer")
        model = handle.model
        features = audio_features.features
        if features.shape[1] != model.config.audio_dim:
            raise ResyncerInputError(
                f"the audio features are {features.shape[1]}-d but this Style-SyncFormer expects "
                f"{model.config.audio_dim}-d; use the audio encoder of the same model preset")
        if model.uses_style_audio and style.audio is None:
            raise ResyncerInputError("this Style-SyncFormer is audio-aware: connect the reference clip's audio "
                                     "features to Style Reference's audio_features input")
        # The mouth is drawn on the closed neutral, so silence and P/B/M close a smiling face's lips.
        template = closed_neutral(identity.template if identity is not None else face_track.template)
        adapter.check_interrupt()
        progress = adapter.Progress(1, unique_id)
        with adapter.on_device(model, device=handle.torch_device()):
            # The model runs at its own 25 fps; features, style and meshes are at their clips' rates.
            meshes = predict_meshes(model, features, style.delta, template,
                                    style_audio=style.audio if model.uses_style_audio else None,
                                    on_window=interrupt_callback(progress), features_fps=audio_features.fps,
                                    style_fps=style.fps, fps=audio_features.fps,
                                    frame_count=len(features))
        return (with_strength(meshes, template, strength),)


NODE_CLASSES = {
    "ReSyncerLoadSyncFormer": (ReSyncerLoadSyncFormer, "Load Style-SyncFormer"),
    "ReSyncerSyncFormer": (ReSyncerSyncFormer, "Style-SyncFormer"),
}
