"""Style stage: Style Reference (ΔM of T_S = 90 consecutive frames, paper §3.1)."""

from __future__ import annotations

from .common import AUDIO_FEATURES, FACE_TRACK, MAX_FRAMES, STYLE, category, with_node_info

STYLE_FRAMES = 90  # (paper) T_S; equals resyncer_core.stages.functions.STYLE_FRAMES


class StyleReference:
    """RESYNCER_STYLE: displacements ΔM_ref [L,468,3] from the reference person's own template,
    and (for audio-aware Style-SyncFormers) that stretch's audio features [L,A], at `fps` (the
    reference clip's frame rate; the Style-SyncFormer node brings it to the model's 25 fps)."""

    def __init__(self, delta, audio=None, start: int = 0, fps: float = 25.0):
        self.delta, self.audio, self.start, self.fps = delta, audio, int(start), float(fps)

    def __len__(self) -> int:
        return int(self.delta.shape[0])

    def __repr__(self) -> str:
        return f"StyleReference({len(self)} frames from frame {self.start}{', with audio' if self.audio is not None else ''})"


class ReSyncerStyleReference:
    DESCRIPTION = ("Takes the speaking style from a tracked clip: the mesh displacements ΔM of T_S consecutive frames "
                   "(90 in the paper). Use the target's own track for lip-sync, another person's for style transfer.")
    CATEGORY = category("syncformer")
    RETURN_TYPES = (STYLE,)
    RETURN_NAMES = ("style",)
    FUNCTION = "reference"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "face_track": (FACE_TRACK, {"tooltip": "Track of the person whose speaking style to use."}),
                "start": ("INT", {"default": -1, "min": -1, "max": MAX_FRAMES, "step": 1,
                                  "tooltip": "First frame of the reference; -1 picks the stretch with the most tracked "
                                             "frames and the most mouth movement."}),
                "length": ("INT", {"default": STYLE_FRAMES, "min": 1, "max": 10_000, "step": 1,
                                   "tooltip": "Frames of reference, T_S (90 in the paper); a shorter clip gives all "
                                              "its frames."}),
            },
            "optional": {
                "audio_features": (AUDIO_FEATURES, {"tooltip": "The reference clip's own audio features; needed only "
                                                    "by audio-aware Style-SyncFormers (style from audio + ΔM)."}),
            },
        }

    def reference(self, face_track, start=-1, length=STYLE_FRAMES, audio_features=None):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.mouth.style import DEFAULT_STYLE_PRESET, no_style_reason
        from resyncer_core.stages.functions import (
            choose_style_window,
            style_reference_from_track,
        )

        first = choose_style_window(face_track, length) if start < 0 else int(start)
        delta = style_reference_from_track(face_track, first, length)
        reason = None if audio_features is not None else no_style_reason(face_track.template, delta)
        if reason is not None:
            return with_node_info(preset_style(DEFAULT_STYLE_PRESET, length), warning=f"this clip {reason}")
        audio = None
        if audio_features is not None:
            features = audio_features.features
            if len(features) < first + len(delta):
                raise ResyncerInputError(
                    f"the reference audio features have {len(features)} frames but the style reference needs frames "
                    f"{first}..{first + len(delta) - 1}; encode the reference clip's own audio at its frame count")
            audio = features[first:first + len(delta)]
        return (StyleReference(delta, audio, first, face_track.fps),)


def preset_style(name: str, length: int = STYLE_FRAMES) -> tuple[StyleReference]:
    from resyncer_core.mouth.style import preset_style_reference
    from resyncer_core.mouth.viseme_rig import RIG_FPS

    return (StyleReference(preset_style_reference(name, length), None, 0, RIG_FPS),)


class ReSyncerStylePreset:
    DESCRIPTION = ("A shipped speaking style (subdued, natural, expressive) in place of a tracked clip's: for "
                   "photos and for videos in which the person does not speak.")
    CATEGORY = category("syncformer")
    RETURN_TYPES = (STYLE,)
    RETURN_NAMES = ("style",)
    FUNCTION = "preset"

    @classmethod
    def INPUT_TYPES(cls):
        from resyncer_core.mouth.style import DEFAULT_STYLE_PRESET, STYLE_PRESETS

        names = sorted(STYLE_PRESETS, key=lambda name: STYLE_PRESETS[name].amplitude)
        return {"required": {"preset": (names, {"default": DEFAULT_STYLE_PRESET,
                                                "tooltip": "How far the mouth moves: subdued, natural or expressive."})}}

    def preset(self, preset):
        from resyncer_core.mouth.style import check_style_preset

        return preset_style(check_style_preset(preset))


NODE_CLASSES = {
    "ReSyncerStyleReference": (ReSyncerStyleReference, "Style Reference"),
    "ReSyncerStylePreset": (ReSyncerStylePreset, "Style Preset"),
}
