"""Stage-2 and swap samples from a preprocessed dataset (dataset.py): aligned crops, meshes,
poses and the overlays drawn on them.

A clip is usable for image training when preprocess stored its crop video (crops.mp4) and its
pose/crop arrays. Crop videos are decoded whole when first needed and kept as uint8 in a small
least-recently-used cache (`max_cached_clips`, ~200 kB per frame): random access into H.264
would decode a group of pictures per sample anyway, and talking-head clips are seconds long.

A training sample is (clip, target frame t, reference frame): t uniformly over the tracked
frames of all clips, the reference among the 30 tracked frames nearest to t (paper A.1). The
overlay I^AM draws the clip's tracked mesh at t, or the Style-SyncFormer's prediction for t
when the stage switches to predicted meshes (paper A.1), over mask A built from the clip's
neutral template posed at t (stages.functions.overlay_on_crops, the same as at inference).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.canonical import Pose
from ..face.track import FaceTrack, posed_mesh_in_crop
from ..stages.functions import overlay_on_crops, predict_meshes
from ..video import read_frames
from .dataset import CROPS_FILE, ClipRecord, load_clip_arrays, load_features
from .generator_training import REFERENCE_WINDOW, crops_from_uint8, reference_indices

DEFAULT_CACHED_CLIPS = 16
SAME_IDENTITY_REFERENCE_OFFSET = 75   # (paper A.1) frames between target and reference in evaluation
_POSE_KEYS = ("pose_scale", "pose_rotation", "pose_translation", "crop_affine")


class CropClip:
    """One clip's per-frame arrays. A preprocessed clip's crops are read through the dataset's
    cache; a clip held in memory (`from_track`, personalisation) carries them as `frames`."""

    def __init__(self, record: ClipRecord, arrays: dict[str, np.ndarray] | None = None,
                 frames: torch.Tensor | None = None):
        arrays = load_clip_arrays(record) if arrays is None else arrays
        missing = [key for key in _POSE_KEYS if key not in arrays]
        if missing or (frames is None and not (record.folder / CROPS_FILE).is_file()):
            raise ResyncerInputError(f"clip {record.clip} has no crop video or pose arrays; stage 2 needs a dataset "
                                     "made by `resyncer preprocess` from videos")
        self.record = record
        self.frames = frames    # uint8 [T,3,S,S] crops of a clip held in memory, else None
        self.canonical = arrays["canonical"]
        self.template = arrays["template"]
        self.valid = arrays["valid"].astype(bool)
        self.pose = Pose(arrays["pose_scale"], arrays["pose_rotation"], arrays["pose_translation"])
        self.crop_affine = arrays["crop_affine"]
        self.tracked = np.flatnonzero(self.valid)
        self.predicted: np.ndarray | None = None    # Style-SyncFormer meshes [T,468,3], when computed

    @classmethod
    def from_track(cls, name: str, track: FaceTrack, crops: torch.Tensor) -> CropClip:
        """A clip held in memory: a face track and its frames' aligned crops (uint8 [T,3,S,S]),
        the same arrays `resyncer preprocess` stores, so it is sampled exactly as a dataset clip."""
        arrays = {"canonical": track.canonical, "template": track.template, "valid": track.valid,
                  "pose_scale": track.pose.scale, "pose_rotation": track.pose.rotation,
                  "pose_translation": track.pose.translation, "crop_affine": track.crop_affine}
        record = ClipRecord(clip=name, speaker=name, frames=len(track), folder=Path(), has_crops=True)
        return cls(record, arrays, crops)

    def __len__(self) -> int:
        return len(self.canonical)

    def meshes_in_crop(self, frames: np.ndarray) -> torch.Tensor:
        """The tracked meshes of `frames` posed into their own crops, [N,468,3] crop pixels."""
        frames = np.asarray(frames)
        return posed_mesh_in_crop(torch.from_numpy(self.canonical[frames]), self.pose[frames], self.crop_affine[frames])

    def evaluation_frames(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(targets, references): the first `count` tracked frames and, for each, the tracked
        frame SAME_IDENTITY_REFERENCE_OFFSET further on (wrapping around; the paper's
        same-identity evaluation, which keeps the target out of the reference)."""
        targets = self.tracked[:count]
        references = self.tracked[(np.arange(len(targets)) + SAME_IDENTITY_REFERENCE_OFFSET) % len(self.tracked)]
        return targets, references


@dataclass
class ImageBatch:
    """A batch of stage-2 inputs on the training device."""

    overlays: torch.Tensor     # I^AM [B,3,S,S]
    references: torch.Tensor   # I_ref
    targets: torch.Tensor      # I_t
    masks: torch.Tensor        # A [B,S,S]


class CropDataset:
    def __init__(self, records: list[ClipRecord | CropClip], max_cached_clips: int = DEFAULT_CACHED_CLIPS,
                 reference_window: int = REFERENCE_WINDOW):
        """`records`: the dataset's clips, as index records or as clips already built (in memory)."""
        self.clips = [record if isinstance(record, CropClip) else CropClip(record) for record in records]
        self.clips = [clip for clip in self.clips if len(clip.tracked)]
        if not self.clips:
            raise ResyncerInputError("no clip of the dataset has a tracked face; preprocess videos that show one")
        self.reference_window = reference_window
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._max_cached = max(1, max_cached_clips)
        counts = np.array([len(clip.tracked) for clip in self.clips])
        self._offsets = np.concatenate([[0], np.cumsum(counts)])

    def crops(self, clip_index: int) -> torch.Tensor:
        """uint8 [T,3,S,S] crops of a clip (decoded once, then cached; or held in memory)."""
        if self.clips[clip_index].frames is not None:
            return self.clips[clip_index].frames
        if clip_index in self._cache:
            self._cache.move_to_end(clip_index)
            return self._cache[clip_index]
        clip = self.clips[clip_index]
        frames = torch.from_numpy(read_frames(clip.record.folder / CROPS_FILE)).permute(0, 3, 1, 2).contiguous()
        if len(frames) < len(clip):
            raise ResyncerInputError(f"clip {clip.record.clip}: crops.mp4 has {len(frames)} frames, its arrays "
                                     f"{len(clip)}; re-run resyncer preprocess")
        self._cache[clip_index] = frames
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return frames

    def draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """(clip index, target frame, reference frame) of one random sample."""
        drawn = int(rng.integers(0, self._offsets[-1]))
        clip_index = int(np.searchsorted(self._offsets, drawn, side="right") - 1)
        clip = self.clips[clip_index]
        position = drawn - int(self._offsets[clip_index])
        reference = reference_indices(np.array([position]), len(clip.tracked), rng, self.reference_window)[0]
        return clip_index, int(clip.tracked[position]), int(clip.tracked[reference])

    def meshes(self, clip_index: int, frame: int, predicted: bool) -> np.ndarray:
        clip = self.clips[clip_index]
        if predicted and clip.predicted is not None:
            return clip.predicted[frame]
        return clip.canonical[frame]

    def batch(self, samples: list[tuple[int, int, int]], device: torch.device, predicted: bool = False,
              mask_mode: str = "mouth", meshes: list[np.ndarray] | None = None,
              templates: list[np.ndarray] | None = None) -> ImageBatch:
        """Overlays, references, targets and masks of samples (clip, t, reference). `meshes`
        replace the clip's own (swap draws another identity's), `templates` the mask's template."""
        clips = [self.clips[c] for c, _, _ in samples]
        targets = torch.stack([self.crops(c)[t] for c, t, _ in samples])
        references = torch.stack([self.crops(c)[r] for c, _, r in samples])
        if meshes is None:
            meshes = [self.meshes(c, t, predicted) for c, t, _ in samples]
        if templates is None:
            templates = [clip.template for clip in clips]
        frames = [t for _, t, _ in samples]
        pose = Pose(np.stack([clip.pose.scale[t] for clip, t in zip(clips, frames)]),
                    np.stack([clip.pose.rotation[t] for clip, t in zip(clips, frames)]),
                    np.stack([clip.pose.translation[t] for clip, t in zip(clips, frames)]))
        affine = np.stack([clip.crop_affine[t] for clip, t in zip(clips, frames)])
        real = crops_from_uint8(targets, torch.device("cpu"))
        overlays, masks = overlay_on_crops(real, pose, affine, np.stack(templates), np.stack(meshes), mask_mode)
        return ImageBatch(overlays=overlays.to(device), references=crops_from_uint8(references, device),
                          targets=real.to(device), masks=masks.to(device))

    def predict_meshes(self, syncformer, encoder_spec: str, style_frames: int) -> None:
        """Style-SyncFormer meshes for every clip from its cached audio features, its style from
        its own first `style_frames` tracked displacements (as inference takes the target's)."""
        for clip in self.clips:
            features = torch.from_numpy(load_features(clip.record, encoder_spec))
            style = torch.from_numpy(clip.canonical[:style_frames] - clip.template[None])
            clip.predicted = predict_meshes(syncformer, features, style, clip.template).numpy()
