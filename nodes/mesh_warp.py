"""The training-free renderer: ReSyncer Mesh Warp, a drop-in for ReSync Generator that needs no
weights (DESIGN §4, Renderers)."""

from __future__ import annotations

import logging

from . import comfy_adapter as adapter
from .common import (FACE_TRACK, MESHES, batch_size_input, category, crops_to_image, device_input, mask_to_comfy,
                     with_node_info)

LOG = logging.getLogger("resyncer.nodes")
MASK_MODES = ["mouth", "face"]  # equals resyncer_core.render.mesh_warp.MASK_MODES


def warp_face_crops(reference_crops, face_track, meshes, mask_mode: str, batch_size: int, device, progress):
    """(crops IMAGE, mask MASK) of the mesh warp for ComfyUI crops, a track and meshes."""
    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.stages.warping import MeshWarp, warp_crops

    from .generator import crop_inputs
    from .common import interrupt_callback

    crops = crop_inputs(reference_crops=reference_crops)["reference_crops"]
    if not (len(crops) == len(face_track) == len(meshes)):
        raise ResyncerInputError(f"Mesh Warp got {len(crops)} crops, a {len(face_track)}-frame track and {len(meshes)} "
                                 "meshes; they must be the same frames")
    warped, masks = warp_crops(MeshWarp(device), crops, face_track, meshes, mask_mode, batch_size,
                               interrupt_callback(progress))
    return crops_to_image(warped), mask_to_comfy(masks)


def warp_in_place_of_generator(reason: str, reference_crops, face_track, meshes, mask_mode: str, batch_size: int,
                               device, unique_id) -> tuple[dict | None, str]:
    """What a generator node does when `reason` says its generator cannot draw this face: with
    face_track and meshes connected, (its return value: the mesh warp's crops, with the warning
    on the node, and the warning); without them, (None, the warning to show beside the
    generator's own output). The warning goes to the server log too."""
    if face_track is None or meshes is None:
        warning = f"{reason}; connect face_track and meshes to draw with the mesh warp instead"
        LOG.warning("ReSyncer: %s", warning)
        return None, warning
    warning = f"{reason}: drawn with the mesh warp instead"
    LOG.warning("ReSyncer: %s", warning)
    progress = adapter.Progress(len(reference_crops), unique_id)
    crops, _ = warp_face_crops(reference_crops, face_track, meshes, mask_mode, batch_size, device, progress)
    return with_node_info((crops,), warning=warning, renderer="mesh warp"), warning


class ReSyncerMeshWarp:
    DESCRIPTION = ("Draws the new mouth without any trained weights: warps each aligned crop piecewise-affinely from its "
                   "tracked mesh to the new mesh and fills the inner mouth from the clip's own frames (a dark cavity "
                   "when no frame opens as wide). Works on any face; replaces ReSync Generator when no trained "
                   "generator exists. Connect its mask to Blend.")
    CATEGORY = category("generator")
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("crops", "mask")
    OUTPUT_TOOLTIPS = ("The warped 256×256 crops; outside the mask they equal the input crops.",
                       "The region the warp changed (wider than Mesh Overlay's: the jaw moves); Blend pastes inside it.")
    FUNCTION = "warp"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "reference_crops": ("IMAGE", {"tooltip": "Track Face's aligned crops of the frames to change."}),
                "face_track": (FACE_TRACK, {"tooltip": "Track of these frames: the tracked mesh, pose and crop."}),
                "meshes": (MESHES, {"tooltip": "One canonical mesh per frame, from Style-SyncFormer or Meshes From "
                                    "Video."}),
                "mask_mode": (MASK_MODES, {"default": "mouth", "tooltip": "mouth: lower face (lip-sync). face: the whole "
                                           "face (face swap's shape)."}),
                "batch_size": batch_size_input(16),
                "device": device_input(),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def warp(self, reference_crops, face_track, meshes, mask_mode="mouth", batch_size=16, device="auto",
             unique_id=None):
        adapter.check_interrupt()
        progress = adapter.Progress(len(reference_crops), unique_id)
        return warp_face_crops(reference_crops, face_track, meshes, mask_mode, int(batch_size),
                               adapter.torch_device(device), progress)


NODE_CLASSES = {
    "ReSyncerMeshWarp": (ReSyncerMeshWarp, "Mesh Warp"),
}
