"""Blend stage: feathered paste-back of the generated crops into the original frames."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import FACE_TRACK, category, image_to_crops


class ReSyncerBlend:
    DESCRIPTION = ("Pastes the generated crops back into the original frames through the inverse crop transform, "
                   "weighted by the mask eroded and blurred by 'feather' pixels. Pixels outside the mask, and frames "
                   "without a face, stay exactly as they were.")
    CATEGORY = category("blend")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The original full frames."}),
                "crops": ("IMAGE", {"tooltip": "Generated 256×256 crops, one per frame (ReSync Generator or Face Swap "
                                    "Inject)."}),
                "face_track": (FACE_TRACK, {"tooltip": "Track of the original frames (where each crop came from)."}),
                "mask": ("MASK", {"tooltip": "Region to paste, in crop space: Mesh Overlay's mask."}),
                "feather": ("INT", {"default": 8, "min": 0, "max": 64, "step": 1,
                                    "tooltip": "Crop pixels of erosion and of blur at the mask's edge; 0 pastes a hard "
                                               "edge."}),
            },
        }

    def blend(self, images, crops, face_track, mask, feather=8):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.stages.functions import blend_crops

        if not (len(images) == len(crops) == len(face_track) == len(mask)):
            raise ResyncerInputError(f"Blend got {len(images)} frames, {len(crops)} crops, a {len(face_track)}-frame "
                                     f"track and {len(mask)} masks; they must all match")
        adapter.check_interrupt()
        progress = adapter.Progress(1)
        masks = mask[None] if mask.ndim == 2 else mask
        blended = blend_crops(images[..., :3].contiguous(), image_to_crops(crops), face_track, masks.float(), int(feather))
        progress.update(1)
        return (blended,)


NODE_CLASSES = {
    "ReSyncerBlend": (ReSyncerBlend, "Blend"),
}
