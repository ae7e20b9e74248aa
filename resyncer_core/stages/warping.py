"""The mesh-warp renderer as a pipeline stage, interchangeable with the generator: from aligned
crops, their track and the new canonical meshes to new crops (render.mesh_warp).

The pipelines hold a `MeshWarp` where they would hold a generator; `choose_renderer` picks one
of the two from the user's choice, the generator checkpoint and the target's face: a random
initialisation (which draws noise) and a generator trained on other faces only are replaced by
the warp, with one line of explanation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ResyncerInputError
from ..face.alignment import CROP_SIZE
from ..face.track import FaceTrack, posed_mesh_in_crop
from ..models.checkpoint import (TRAINING_CONFIG_KEY, check_checkpoint, marks_random_initialisation,
                                read_checkpoint_metadata)
from ..render.mesh_warp import MEMORY_SIZE, MouthMemory, lip_gap, traced_warp
from ..models.presets import MODEL_FILES
from ..weights import shipped_weights
from .face_identity import SAME_FACE_SIMILARITY, TargetCrops, best_face_similarity, evenly_spaced, recorded_faces
from .functions import aligned_crops, select_frames
from .native_warp import NativeSources

RENDERERS = ("auto", "generator", "warp")
WARP_BATCH_SIZE = 16


@dataclass
class MeshWarp:
    """The training-free renderer in a generator's place: where it runs, and the clip's mouth
    memory once `remember` has built it."""

    device: torch.device
    memory: MouthMemory | None = None


def choose_renderer(choice: str, generator_path: Path | None, log: Callable[[str], None] | None = None,
                    target_crops: TargetCrops | None = None, swap: bool = False) -> str:
    """"generator" or "warp" for the user's `choice` (auto | generator | warp). Auto takes the
    generator unless `warp_reason` gives one, and then says so in one line."""
    if choice not in RENDERERS:
        raise ResyncerInputError(f"renderer {choice!r} is unknown; choose one of {', '.join(RENDERERS)}")
    if choice != "auto":
        return choice
    reason = warp_reason(generator_path, target_crops, swap)
    if reason is None:
        return "generator"
    if log is not None:
        what = "identity transferred by the mesh warp" if swap else "rendering with the training-free mesh warp"
        log(f"{reason}: {what} (--renderer generator to force the generator)")
    return "warp"


def warp_reason(generator_path: Path | None, target_crops: TargetCrops | None = None,
                swap: bool = False) -> str | None:
    """Why the generator checkpoint should not render the target, or None: it is a random
    initialisation (it draws noise), for a `swap` its training record shows no swap training
    (a file without a record is trusted), it is the shipped demo generator, or it records the
    few faces it was trained on (stages.face_identity) and `target_crops()` shows another. A
    missing or unreadable file gives None: the generator's loader reports what is wrong with it.
    A readable file the loader would refuse (another model's, tensors of other shapes) raises
    its CheckpointError: a wrong file is the user's mistake to hear about, not noise to replace."""
    if generator_path is None:
        return None
    try:
        metadata = read_checkpoint_metadata(generator_path)
    except CheckpointError:  # missing or unreadable (a personalised node generator has no file)
        return None
    check_checkpoint(generator_path, "generator")
    name = Path(generator_path).name
    if marks_random_initialisation(metadata):
        return f"{name} is a random initialisation (untrained)"
    if swap and not _trained_for_swap(metadata):
        return f"{name} was not trained for face swap (`resyncer train swap` trains it)"
    if _is_shipped_demo_generator(generator_path):
        # Measured on the demo portrait (benchmarks/visible_sync.py): the warp keeps the face's
        # detail and moves the mouth further than this small CPU-trained generator.
        return "the shipped generator is a small demo model that draws softer than the mesh warp"
    faces = recorded_faces(metadata)
    if faces is None or target_crops is None:
        return None
    crops = target_crops()
    if not len(crops):
        return None  # no face to compare: faceless frames pass through anyway
    similarity = best_face_similarity(faces, crops)
    if similarity >= SAME_FACE_SIMILARITY:
        return None
    return (f"{name} was trained on {len(faces)} face(s) only and this face is another (face similarity "
            f"{similarity:.2f} < {SAME_FACE_SIMILARITY}; `resyncer personalize` or `resyncer train stage2` "
            "trains a generator for it)")


def _is_shipped_demo_generator(path: Path) -> bool:
    try:
        return Path(path).resolve() == shipped_weights(MODEL_FILES["generator"]).resolve()
    except OSError:
        return False


def _trained_for_swap(metadata: dict[str, str]) -> bool:
    """Whether a generator file's training record (if any) is a swap run's: only swap's
    config has an identity weight."""
    record = metadata.get(TRAINING_CONFIG_KEY)
    return record is None or "identity_weight" in json.loads(record)


def tracked_in_crop(track: FaceTrack) -> torch.Tensor:
    """The tracked canonical meshes posed into the track's crops, [T,468,3]."""
    return posed_mesh_in_crop(torch.from_numpy(track.canonical), track.pose, track.crop_affine)


def memory_frames(track: FaceTrack, size: int = MEMORY_SIZE) -> np.ndarray:
    """Indices (sorted) of up to `size` tracked frames spread evenly over the clip's lip gaps,
    the widest included: the frames a mouth memory keeps (MouthMemory.from_frames' choice)."""
    valid = np.flatnonzero(track.valid)
    if not len(valid):
        return valid
    gaps = lip_gap(tracked_in_crop(select_frames(track, valid))).numpy()
    order = valid[np.argsort(gaps, kind="stable")]
    return np.unique(order[evenly_spaced(len(order), size)])


def mouth_memory(crops: torch.Tensor, track: FaceTrack) -> MouthMemory:
    """The mouth memory of a clip from its aligned crops [T,3,256,256] and track (only tracked
    frames are used)."""
    valid = np.flatnonzero(track.valid)
    return MouthMemory.from_frames(crops[torch.from_numpy(valid)],
                                   tracked_in_crop(select_frames(track, valid))).with_generic_mouth()


def warp_crops(warp: MeshWarp, crops: torch.Tensor, track: FaceTrack, meshes, mask_mode: str = "mouth",
               batch_size: int = WARP_BATCH_SIZE,
               on_batch: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Warped crops [T,3,256,256] and the warp's masks [T,256,256] for aligned crops (−1..1),
    their track and the new canonical meshes [T,468,3]. Frames without a face pass through.
    Runs in batches on warp.device, calling on_batch(done, total) after each."""
    return traced_warp_crops(warp, crops, track, meshes, mask_mode, batch_size, on_batch)[:2]


def traced_warp_crops(warp: MeshWarp, crops: torch.Tensor, track: FaceTrack, meshes, mask_mode: str = "mouth",
                      batch_size: int = WARP_BATCH_SIZE, on_batch: Callable[[int, int], None] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, NativeSources]:
    """warp_crops, with the source maps that let paste_back redo the warp at the frame's own
    resolution (stages.native_warp)."""
    if not (len(crops) == len(track) == len(meshes)):
        raise ResyncerInputError(f"the warp got {len(crops)} crops, a {len(track)}-frame track and {len(meshes)} meshes; "
                                 "they must be the same frames")
    if batch_size < 1:
        raise ResyncerInputError(f"warp batch size must be at least 1, got {batch_size}")
    memory = warp.memory if warp.memory is not None else mouth_memory(crops, track)
    # Both meshes posed with the same (smoothed) pose, so a mesh equal to the tracked one warps nothing.
    tracked = tracked_in_crop(track)
    new = posed_mesh_in_crop(torch.as_tensor(meshes, dtype=torch.float32), track.pose, track.crop_affine)
    valid = torch.from_numpy(track.valid)  # frames without a face pass through (mask 0)
    outputs, masks, sources, plain = [], [], [], []
    for start in range(0, len(crops), batch_size):
        part = slice(start, start + batch_size)
        traced = traced_warp(crops[part].to(warp.device, torch.float32), tracked[part].to(warp.device),
                             new[part].to(warp.device), memory, mask_mode)
        outputs.append(traced.warped.to("cpu", torch.float32))
        masks.append(traced.changed[:, 0].to("cpu", torch.float32))
        sources.append(traced.sources.to("cpu", torch.float32))
        plain.append(traced.plain.to("cpu", torch.float32))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(crops)), len(crops))
    if not outputs:
        return crops.clone(), torch.zeros(0, CROP_SIZE, CROP_SIZE), NativeSources.of_no_crops(CROP_SIZE)
    masks = torch.cat(masks) * valid.view(-1, 1, 1)
    return (torch.where(masks[:, None] > 0, torch.cat(outputs), crops), masks,
            NativeSources(torch.cat(sources), torch.cat(plain)))


def load_mesh_warp_memory(warp: MeshWarp, read_frames: Callable[[np.ndarray], np.ndarray], track: FaceTrack) -> MeshWarp:
    """`warp` with the mouth memory of a clip whose frames `read_frames(indices)` decodes (uint8
    [n,H,W,3]); only the few remembered frames are read."""
    indices = memory_frames(track)
    if not len(indices):
        return MeshWarp(warp.device, MouthMemory(torch.zeros(0, 3, CROP_SIZE, CROP_SIZE), torch.zeros(0, 468, 2)))
    chosen = select_frames(track, indices)
    crops = aligned_crops(read_frames(indices), chosen)
    return MeshWarp(warp.device, MouthMemory(crops, tracked_in_crop(chosen)).with_generic_mouth())
