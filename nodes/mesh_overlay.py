"""MeshOverlay stage (paper §3.2–3.3): the masked crop with the white mesh drawn in."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import FACE_TRACK, MESHES, category, crops_to_image, mask_to_comfy

MASK_MODES = ["mouth", "face"]  # equals resyncer_core.stages.functions.MASK_MODES


class ReSyncerMeshOverlay:
    DESCRIPTION = ("Renders each new mesh white and shaded in the frame's head pose and pastes it into the aligned "
                   "crop where the mask A is: I^AM = (1 − A)·I + A·M^p. 'mouth' (lip-sync) masks the lower face, "
                   "'face' (face swap, A') the whole face.")
    CATEGORY = category("generator")
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("overlaid_crops", "mask")
    OUTPUT_TOOLTIPS = ("The 256×256 overlaid crops I^AM, input of the generator.",
                       "The region A (or A') of each crop; Blend pastes back inside it.")
    FUNCTION = "overlay"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The target video's frames (the ones the face track was made from)."}),
                "face_track": (FACE_TRACK, {"tooltip": "Track of these frames: head pose and crop per frame."}),
                "meshes": (MESHES, {"tooltip": "One canonical mesh per frame, from Style-SyncFormer or Meshes From "
                                    "Video."}),
                "mask_mode": (MASK_MODES, {"default": "mouth", "tooltip": "mouth: lower face, for lip-sync. face: eyes, "
                                           "nose and mouth, for face swap."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def overlay(self, images, face_track, meshes, mask_mode="mouth", unique_id=None):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.stages.functions import overlay_crops

        if not (len(images) == len(face_track) == len(meshes)):
            raise ResyncerInputError(
                f"Mesh Overlay got {len(images)} frames, a {len(face_track)}-frame track and {len(meshes)} meshes; they "
                "must match (connect the video's frame_count to Audio Features' frame_count)")
        adapter.check_interrupt()
        progress = adapter.Progress(1, unique_id)
        _, overlays, masks = overlay_crops(images[..., :3], face_track, meshes, mask_mode)
        progress.update(1)
        overlaid = crops_to_image(overlays)
        preview = adapter.save_preview(overlaid, "ReSyncer_overlay")
        info = {"frames": len(overlaid), "mask_mode": mask_mode}
        return {"ui": {"images": preview, "resyncer": [info]}, "result": (overlaid, mask_to_comfy(masks))}


NODE_CLASSES = {
    "ReSyncerMeshOverlay": (ReSyncerMeshOverlay, "Mesh Overlay"),
}
