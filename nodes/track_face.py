"""Face stage: Track Face (3D mesh, pose and aligned 256² crop per frame)."""

from __future__ import annotations

import logging

import numpy as np

from . import comfy_adapter as adapter
from .common import FACE_TRACK, category, crops_to_image, fps_input, mask_to_comfy

LOG = logging.getLogger("resyncer.nodes")
NO_FACE_WARNING = "no face was found in any frame: the lip-sync will leave these frames unchanged"
_LANDMARK_COLOUR = np.array([64, 255, 96], np.uint8)
_TRACKER_BATCH = 16


def _tracker(device, face: str = "largest"):
    from resyncer_core.face import FaceTracker

    return adapter.MODEL_CACHE.get(("face_tracker", str(device), face),
                                   lambda: FaceTracker(device, batch_size=_TRACKER_BATCH, face=face))


def landmark_preview(crops_image, crop_points, valid) -> np.ndarray:
    """uint8 crops with the tracked mesh's vertices dotted in (frames without a face get a red
    border): what the Track Face preview shows."""
    sheet = np.clip(np.round(crops_image.numpy() * 255), 0, 255).astype(np.uint8)
    size = sheet.shape[1]
    for index, points in enumerate(crop_points):
        if not valid[index]:
            sheet[index, :3], sheet[index, -3:], sheet[index, :, :3], sheet[index, :, -3:] = 255, 255, 255, 255
            sheet[index, :3, :, 1:] = sheet[index, -3:, :, 1:] = 0
            sheet[index, :, :3, 1:] = sheet[index, :, -3:, 1:] = 0
            continue
        xy = np.floor(points[:, :2] - 1.0).astype(int)  # 2×2 dots centred on each vertex
        for dx in (0, 1):
            for dy in (0, 1):
                x, y = xy[:, 0] + dx, xy[:, 1] + dy
                keep = (x >= 0) & (x < size) & (y >= 0) & (y < size)
                sheet[index, y[keep], x[keep]] = _LANDMARK_COLOUR
    return sheet


class ReSyncerTrackFace:
    DESCRIPTION = ("Tracks the face through the frames: 468-point 3D mesh, head pose (smoothed), canonical mesh, the "
                   "person's template and an aligned 256² crop per frame. Frames without a face are flagged, not fatal.")
    CATEGORY = category("face")
    RETURN_TYPES = (FACE_TRACK, "IMAGE", "MASK")
    RETURN_NAMES = ("face_track", "aligned_crops", "mouth_mask")
    OUTPUT_TOOLTIPS = ("Per-frame landmarks, pose, canonical meshes, template and crop transforms.",
                       "The aligned 256×256 face crops (the generator's reference frames).",
                       "The lower-face region A of each crop (jaw, cheeks, mouth).")
    FUNCTION = "track"

    @classmethod
    def INPUT_TYPES(cls):
        from resyncer_core.face.selection import FACE_RULES

        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Video frames showing one face."}),
                "fps": fps_input("Frame rate of the frames; the pose smoothing is tuned in seconds."),
                "smoothing": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                        "tooltip": "Head-pose and crop stabilisation: 0 = none, 1 = strongest. "
                                                   "Expressions are never smoothed."}),
            },
            "optional": {
                "device": (adapter.DEVICE_CHOICES, {"default": "auto", "tooltip": "Where the face detector and landmark "
                                                    "network run."}),
                "face": (list(FACE_RULES), {"default": "largest", "tooltip": "With several faces in view, the one to "
                                            "track: the largest, the one nearest the centre, or face_index from the "
                                            "left. It is then followed from frame to frame."}),
                "face_index": ("INT", {"default": 0, "min": 0, "max": 64, "step": 1,
                                       "tooltip": "With face = index: which face, counted from the left (0 first)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def track(self, images, fps, smoothing=0.5, device="auto", face="largest", face_index=0, unique_id=None):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.face import lip_sync_mask
        from resyncer_core.stages.progress import monitored_batches
        from resyncer_core.stages.functions import aligned_crops

        frames = images[..., :3]
        if frames.ndim != 4 or len(frames) == 0:
            raise ResyncerInputError(f"Track Face needs at least one frame [T,H,W,3], got shape {list(frames.shape)}")
        tracker = _tracker(adapter.torch_device(device), f"index {face_index}" if face == "index" else face)
        tracker.most_faces_seen = 0  # the count reported below is this run's
        progress = adapter.Progress(len(frames) + 1, unique_id)
        # One stream of batches: the tracker carries its state (the previous face) across them.
        batches = (frames[start:start + _TRACKER_BATCH] for start in range(0, len(frames), _TRACKER_BATCH))
        checked = monitored_batches(batches, adapter.check_interrupt, progress.update_absolute)
        track = tracker.track_stream(checked, fps=fps, smoothing=smoothing)
        crops = crops_to_image(aligned_crops(frames, track))
        crop_mesh = track.mesh_in_crop()
        mask = mask_to_comfy(lip_sync_mask(track.mesh_in_crop(track.template)))
        progress.update_absolute(len(frames) + 1)
        preview = adapter.save_preview(landmark_preview(crops, crop_mesh.numpy(), track.valid), "ReSyncer_track")
        info = {"frames": len(track), "faces": int(track.valid.sum()), "fps": float(fps),
                "faces_in_view": tracker.most_faces_seen, "followed": tracker.face.describe()}
        if info["faces"] == 0:
            info["warning"] = NO_FACE_WARNING
            LOG.warning("ReSyncer Track Face: %s", NO_FACE_WARNING)
        return {"ui": {"images": preview, "resyncer": [info]}, "result": (track, crops, mask)}


NODE_CLASSES = {
    "ReSyncerTrackFace": (ReSyncerTrackFace, "Track Face"),
}
