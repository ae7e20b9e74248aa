"""Face-swap stage (paper §3.3): Face Identity, Face Swap Inject."""

from __future__ import annotations

from . import comfy_adapter as adapter
from .common import (
    FACE_TRACK,
    GENERATOR,
    IDENTITY,
    MESHES,
    batch_size_input,
    category,
    crops_to_image,
    fps_input,
    interrupt_callback,
    precision_input,
    require_handle,
    with_node_info,
)
from .generator import KIND as GENERATOR_KIND
from .generator import crop_inputs, mask_input
from .mesh_warp import LOG
from .track_face import _tracker


class ReSyncerFaceIdentity:
    DESCRIPTION = ("The source identity of a face swap: the aligned crop I' of its most frontal tracked frame, its "
                   "template M̄' (neutral mesh: the most closed-mouth frames) and its texture for the training-free "
                   "swap (the most frontal frame and one per head-turn). Give one photo or a short clip of the source "
                   "person.")
    CATEGORY = category("face swap")
    RETURN_TYPES = (IDENTITY,)
    RETURN_NAMES = ("identity",)
    FUNCTION = "identify"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Photo(s) or frames of the source face (the person to swap in)."}),
            },
            "optional": {
                "face_track": (FACE_TRACK, {"tooltip": "Track of these same images, if already made (saves tracking "
                                            "them again)."}),
                "fps": fps_input("Frame rate of the images when they are a clip (pose smoothing); ignored for one photo."),
            },
        }

    def identify(self, images, face_track=None, fps=25.0):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.stages.functions import choose_identity_frame, identity_from_track
        from resyncer_core.stages.identity_transfer import identity_texture

        frames = images[..., :3]
        if face_track is not None:
            if len(face_track) != len(frames):
                raise ResyncerInputError(f"the identity track has {len(face_track)} frames but {len(frames)} images "
                                         "were given; connect the track of these images")
        else:
            face_track = _tracker(adapter.torch_device("auto")).track(frames, fps)
        index = choose_identity_frame(face_track)
        identity = identity_from_track(face_track, frames[index:index + 1], index)
        identity.texture = identity_texture(frames.cpu().numpy(), face_track)
        preview = adapter.save_preview(crops_to_image(identity.frame), "ReSyncer_identity")
        return {"ui": {"images": preview}, "result": (identity,)}


class ReSyncerFaceSwapInject:
    DESCRIPTION = ("Face swap generation: W from E([I^{A'M'}, I']) carries the source identity, the feature maps from "
                   "E([I^{A'M'}, I_ref]) carry the target's pose, lighting and background.")
    CATEGORY = category("face swap")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    FUNCTION = "swap"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "generator": (GENERATOR, {"tooltip": "From Load ReSync Generator (a swap-trained one)."}),
                "identity": (IDENTITY, {"tooltip": "From Face Identity."}),
                "overlaid_crops": ("IMAGE", {"tooltip": "Mesh Overlay's crops in 'face' mask mode, drawn on the "
                                             "identity's template."}),
                "reference_crops": ("IMAGE", {"tooltip": "The target's aligned crops (Track Face)."}),
                "batch_size": batch_size_input(),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Mesh Overlay's mask A'; needed by generators that mask low-level "
                                  "features or hide the reference's lower face."}),
                "precision": precision_input(),
                "face_track": (FACE_TRACK, {"tooltip": "Track of the target frames: with meshes, lets the mesh warp "
                                            "replace a generator not trained for face swap (or untrained), as the "
                                            "CLI does."}),
                "meshes": (MESHES, {"tooltip": "The meshes Mesh Overlay drew; see face_track."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def swap(self, generator, identity, overlaid_crops, reference_crops, batch_size=8, mask=None, precision="fp32",
             face_track=None, meshes=None, unique_id=None):
        from pathlib import Path

        from resyncer_core.stages.functions import swap_crops
        from resyncer_core.stages.warping import warp_reason

        from .mesh_warp import warp_in_place_of_generator

        handle = require_handle(generator, GENERATOR_KIND, "generator")
        crops = crop_inputs(overlaid_crops=overlaid_crops, reference_crops=reference_crops)
        reason = warp_reason(Path(handle.source), swap=True)
        warning = None
        if reason is not None and identity.texture is not None and face_track is not None and meshes is not None:
            return _transferred(reason, identity, crops["reference_crops"], face_track, meshes, batch_size,
                                handle.torch_device(), unique_id)
        if reason is not None:  # no identity texture (an older Face Identity): the target's face in the new shape
            warped, warning = warp_in_place_of_generator(reason, reference_crops, face_track, meshes, "face",
                                                         batch_size, handle.torch_device(), unique_id)
            if warped is not None:
                return warped
        masks = mask_input(mask, len(crops["overlaid_crops"]))
        adapter.check_interrupt()
        progress = adapter.Progress(len(crops["overlaid_crops"]), unique_id)
        with adapter.on_device(handle.model, device=handle.torch_device()):
            generated = swap_crops(handle.model, crops["overlaid_crops"], identity.frame, crops["reference_crops"],
                                   batch_size, mask=masks, on_batch=interrupt_callback(progress), precision=precision)
        return with_node_info((crops_to_image(generated),), warning=warning, renderer="generator")


def _transferred(reason: str, identity, crops, face_track, meshes, batch_size: int, device, unique_id) -> dict:
    """Face Swap Inject's return value when its generator was not trained for swap: the identity
    transferred onto the target crops by the mesh warp (stages.identity_transfer)."""
    from resyncer_core.stages.identity_transfer import IdentityWarp, transfer_identity

    warning = f"{reason}: identity transferred by the mesh warp"
    LOG.warning("ReSyncer: %s", warning)
    progress = adapter.Progress(len(crops), unique_id)
    swapped, _, _ = transfer_identity(IdentityWarp(device, identity.texture), crops, face_track, meshes, batch_size,
                                      interrupt_callback(progress))
    return with_node_info((crops_to_image(swapped),), warning=warning, renderer="mesh warp")


NODE_CLASSES = {
    "ReSyncerFaceIdentity": (ReSyncerFaceIdentity, "Face Identity"),
    "ReSyncerFaceSwapInject": (ReSyncerFaceSwapInject, "Face Swap Inject"),
}
