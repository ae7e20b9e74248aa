"""Generator stage (paper §3.2): Load ReSync Generator, ReSync Generator."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import (
    FACE_TRACK,
    GENERATOR,
    MESHES,
    batch_size_input,
    category,
    crops_to_image,
    device_input,
    image_to_crops,
    interrupt_callback,
    load_checkpoint_cached,
    precision_input,
    require_handle,
    with_node_info,
)

KIND = "generator"


def crop_inputs(**images):
    """IMAGE crops → core crops, checking they are all 256² crops of one length."""
    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.face.alignment import CROP_SIZE

    converted = {}
    for name, image in images.items():
        if image is None:
            continue
        if image.ndim != 4 or tuple(image.shape[1:3]) != (CROP_SIZE, CROP_SIZE):
            raise ResyncerInputError(f"{name} must be {CROP_SIZE}×{CROP_SIZE} aligned crops [T,{CROP_SIZE},{CROP_SIZE},3], "
                                     f"got {list(image.shape)}; "
                                     "connect Track Face's aligned_crops or Mesh Overlay's output")
        converted[name] = image_to_crops(image)
    lengths = {name: len(crops) for name, crops in converted.items()}
    if len(set(lengths.values())) > 1:
        raise ResyncerInputError(f"crop inputs differ in length ({lengths}); they must come from the same frames")
    return converted


def mask_input(mask, count: int):
    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.face.alignment import CROP_SIZE

    if mask is None:
        return None
    if mask.ndim == 2:
        mask = mask[None]
    if len(mask) != count or tuple(mask.shape[1:]) != (CROP_SIZE, CROP_SIZE):
        raise ResyncerInputError(f"mask must be [{count},{CROP_SIZE},{CROP_SIZE}] (Mesh Overlay's mask), "
                                 f"got {list(mask.shape)}")
    return mask.float()


class ReSyncerLoadGenerator:
    DESCRIPTION = "Loads a ReSync style-based generator checkpoint (.safetensors) from the resyncer model folder."
    CATEGORY = category("generator")
    RETURN_TYPES = (GENERATOR,)
    RETURN_NAMES = ("generator",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        names = adapter.combo_or_placeholder(adapter.list_checkpoints(KIND), "generator.safetensors")
        return {
            "required": {
                "model": (names, {"tooltip": "Generator checkpoint in models/resyncer (or --models DIR); personalised "
                                  "generators saved by Personalize appear here too."}),
                "device": device_input(),
            }
        }

    def load(self, model, device="auto"):
        return (load_checkpoint_cached(KIND, model, device),)


class ReSyncerGenerator:
    DESCRIPTION = ("Generates the lip-synced face crops G(E([I^AM, I_ref])) in batches. For production the reference is "
                   "the target crop itself (paper A.1).")
    CATEGORY = category("generator")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "generator": (GENERATOR, {"tooltip": "From Load ReSync Generator (or Personalize)."}),
                "overlaid_crops": ("IMAGE", {"tooltip": "Mesh Overlay's crops I^AM."}),
                "reference_crops": ("IMAGE", {"tooltip": "Reference frames I_ref: Track Face's aligned crops of the "
                                              "same frames."}),
                "batch_size": batch_size_input(),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Mesh Overlay's mask; needed by generators that mask low-level "
                                  "features or hide the reference's lower face, ignored by the others."}),
                "precision": precision_input(),
                "face_track": (FACE_TRACK, {"tooltip": "Track of these frames: with meshes, lets the mesh warp "
                                            "replace an untrained (random-initialised) generator or one trained on "
                                            "other faces only."}),
                "meshes": (MESHES, {"tooltip": "The meshes Mesh Overlay drew; see face_track."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def generate(self, generator, overlaid_crops, reference_crops, batch_size=8, mask=None, precision="fp32",
                 face_track=None, meshes=None, unique_id=None):
        from pathlib import Path

        import torch

        from resyncer_core.stages.face_identity import evenly_spaced
        from resyncer_core.stages.functions import generate_crops
        from resyncer_core.stages.warping import warp_reason

        from .mesh_warp import warp_in_place_of_generator

        handle = require_handle(generator, KIND, "generator")
        crops = crop_inputs(overlaid_crops=overlaid_crops, reference_crops=reference_crops)
        references = crops["reference_crops"]
        reason = warp_reason(Path(handle.source), lambda: references[torch.from_numpy(evenly_spaced(len(references)))])
        warning = None
        if reason is not None:
            warped, warning = warp_in_place_of_generator(reason, reference_crops, face_track, meshes, "mouth",
                                                         batch_size, handle.torch_device(), unique_id)
            if warped is not None:
                return warped
        masks = mask_input(mask, len(crops["overlaid_crops"]))
        adapter.check_interrupt()
        progress = adapter.Progress(len(crops["overlaid_crops"]), unique_id)
        with adapter.on_device(handle.model, device=handle.torch_device()):
            generated = generate_crops(handle.model, crops["overlaid_crops"], crops["reference_crops"], batch_size,
                                       mask=masks, on_batch=interrupt_callback(progress), precision=precision)
        return with_node_info((crops_to_image(generated),), warning=warning, renderer="generator")


NODE_CLASSES = {
    "ReSyncerLoadGenerator": (ReSyncerLoadGenerator, "Load ReSync Generator"),
    "ReSyncerGenerator": (ReSyncerGenerator, "ReSync Generator"),
}
