"""Stand-ins for the ComfyUI core nodes that the pack's templates use, for runs without ComfyUI
(`resyncer run-workflow` in-process, the tests): same id, inputs and outputs as the core node.

They are exported as the pack's CORE_STAND_INS, never in NODE_CLASS_MAPPINGS: inside ComfyUI the
core node itself runs.
"""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import input_verdict

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class LoadImage:
    """ComfyUI's Load Image (nodes.py LoadImage): every frame of the file as IMAGE [T,H,W,3] (RGB,
    0..1) and its alpha as MASK [T,H,W] (1 where transparent; one 64² zero mask without alpha)."""

    DESCRIPTION = "Loads an image from the input folder (stand-in for ComfyUI's core Load Image)."
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (adapter.list_input_files(IMAGE_SUFFIXES), {"image_upload": True})}}

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        found = adapter.input_file_problem(image)
        if found is not True:
            return found
        return input_verdict(lambda: _read_frames(image))

    def load_image(self, image):
        return _read_frames(image)


def _read_frames(name: str):
    import numpy as np
    import torch
    from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

    from resyncer_core.errors import ResyncerInputError

    path = adapter.resolve_input_path(name)
    try:
        with Image.open(path) as file:
            frames = [ImageOps.exif_transpose(frame) for frame in ImageSequence.Iterator(file)]
            images = [np.asarray(frame.convert("RGB"), np.float32) / 255.0 for frame in frames]
            masks = [1.0 - np.asarray(frame.getchannel("A"), np.float32) / 255.0 if "A" in frame.getbands()
                     else np.zeros((64, 64), np.float32) for frame in frames]
    except (OSError, UnidentifiedImageError) as error:
        raise ResyncerInputError(f"cannot read the image {name!r}: {error}") from None
    # As core Load Image: frames of another size than the first are left out.
    kept = [(image, mask) for image, mask in zip(images, masks) if image.shape == images[0].shape]
    return (torch.from_numpy(np.stack([image for image, _ in kept])),
            torch.from_numpy(np.stack([mask for _, mask in kept])))


CORE_STAND_INS = {"LoadImage": LoadImage}
