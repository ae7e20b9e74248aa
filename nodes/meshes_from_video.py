"""Mesh stage from video: Meshes From Video (video-driven lip-sync, paper §3.2)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np

from .common import FACE_TRACK, IDENTITY, MESHES, category

LOG = logging.getLogger("resyncer.nodes")


class ReSyncerMeshesFromVideo:
    DESCRIPTION = ("Video-driven lip-sync: moves the driver's expressions (ΔM') onto the target's template, one mesh "
                   "per target frame. A shorter driver holds its last frame; a longer one is cut.")
    CATEGORY = category("syncformer")
    RETURN_TYPES = (MESHES,)
    RETURN_NAMES = ("meshes",)
    FUNCTION = "transfer"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "driver_track": (FACE_TRACK, {"tooltip": "Track of the video whose mouth motion drives the target."}),
                "target_track": (FACE_TRACK, {"tooltip": "Track of the video to re-animate; its template and frame "
                                              "count are used."}),
            },
            "optional": {
                "identity": (IDENTITY, {"tooltip": "Face swap: draw the motion on this identity's template instead "
                                        "of the target's."}),
            },
        }

    def transfer(self, driver_track, target_track, identity=None):
        from resyncer_core.stages.functions import meshes_from_driver, select_frames
        from resyncer_core.stages.tracking import require_a_face

        count = len(target_track)
        if len(driver_track) != count:
            LOG.info("ReSyncer: driver has %d frames, target %d; %s", len(driver_track), count,
                     "holding the driver's last frame" if len(driver_track) < count else "cutting the driver")
            driver_track = select_frames(driver_track, np.minimum(np.arange(count), len(driver_track) - 1))
        shape = SimpleNamespace(template=identity.template) if identity is not None else target_track
        return (meshes_from_driver(require_a_face(driver_track, "the driver track (Meshes From Video)"), shape),)


NODE_CLASSES = {
    "ReSyncerMeshesFromVideo": (ReSyncerMeshesFromVideo, "Meshes From Video"),
}
