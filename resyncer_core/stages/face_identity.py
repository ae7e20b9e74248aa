"""Which faces a generator was trained on, and whether a video shows one of them.

A generator trained on a handful of people (the shipped demo generator: one face) repaints
only those people convincingly; on anyone else it draws a trained person's mouth. Stage 2
records, for a dataset of at most MAX_RECORDED_FACES speakers, each speaker's mean face
descriptor (the shipped dlib face-descriptor port, so inference never needs ArcFace) in the
generator file. The `auto` renderer compares the target video's face with them and takes the
training-free mesh warp for another face (stages.warping.choose_renderer).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..face.alignment import CROP_SIZE
from ..models.checkpoint import load_checkpoint, read_checkpoint_metadata
from ..video import probe_video
from ..weights import FACE_DESCRIPTOR, shipped_weights
from .frame_source import FrameSource
from .functions import aligned_crops, select_frames

TRAINED_FACES_KEY = "resyncer.trained_faces"
MAX_RECORDED_FACES = 8      # more speakers: a generator meant for unseen faces, nothing recorded
DESCRIPTOR_CROPS = 16       # crops averaged per face
# Cosine similarity of mean descriptors above which two faces count as the same person.
# Measured on our 256² crops: demo/target.mp4 against a training clip of the demo generator
# 0.999; the largest face of each of face-api's six demo photos against the astronaut
# 0.83–0.89; different people in tools/convert_face_api.py --check up to 0.95.
SAME_FACE_SIMILARITY = 0.97

TargetCrops = Callable[[], torch.Tensor]   # aligned crops of the target's face, [N,3,256,256] (N may be 0)


def face_descriptor_network(device: str | torch.device = "cpu") -> torch.nn.Module:
    return load_checkpoint(shipped_weights(FACE_DESCRIPTOR), kind="face_descriptor", device=device)[0]


@torch.no_grad()
def mean_face_descriptor(network: torch.nn.Module, crops: torch.Tensor) -> np.ndarray:
    """The unit-length mean of the unit descriptors of aligned crops [N,3,256,256] in −1..1."""
    device = next(network.parameters()).device
    descriptors = F.normalize(network(crops.to(device, torch.float32)).float(), dim=1).mean(0)
    return F.normalize(descriptors, dim=0).cpu().numpy()


def evenly_spaced(count: int, wanted: int = DESCRIPTOR_CROPS) -> np.ndarray:
    """Up to `wanted` indices spread evenly over range(count)."""
    return np.unique(np.linspace(0, count - 1, min(wanted, count)).round().astype(np.int64)) if count else np.zeros(0, np.int64)


def trained_faces_metadata(descriptors: list[np.ndarray]) -> dict[str, str]:
    """The generator-file metadata entry for these faces' descriptors (none for too many faces)."""
    if not descriptors or len(descriptors) > MAX_RECORDED_FACES:
        return {}
    return {TRAINED_FACES_KEY: json.dumps([[round(float(v), 5) for v in d] for d in descriptors])}


def trained_faces(generator_path: str | os.PathLike) -> np.ndarray | None:
    """[K,D] descriptors of the faces a generator was trained on, or None when it records none."""
    return recorded_faces(read_checkpoint_metadata(generator_path))


def recorded_faces(metadata: dict[str, str]) -> np.ndarray | None:
    """trained_faces from a generator file's metadata (read_checkpoint_metadata)."""
    recorded = metadata.get(TRAINED_FACES_KEY)
    return None if recorded is None else np.asarray(json.loads(recorded), dtype=np.float32)


def best_face_similarity(faces: np.ndarray, target_crops: torch.Tensor,
                         network: torch.nn.Module | None = None) -> float:
    """The highest cosine similarity between the target's mean descriptor and a trained face."""
    network = network if network is not None else face_descriptor_network()
    target = mean_face_descriptor(network, target_crops)
    return float((faces @ target).max())


def sampled_face_crops(video: str | os.PathLike, tracker, count: int = DESCRIPTOR_CROPS) -> torch.Tensor:
    """Aligned crops [N,3,256,256] of the tracked face in up to `count` frames spread over the
    video (the tracker's face choice applies; frames without a face are left out)."""
    with FrameSource(video) as source:
        frames = source.read_each(evenly_spaced(probe_video(video).frame_count, count))
    track = tracker.track(frames, 25.0, smoothing=0.0)
    valid = np.flatnonzero(track.valid)
    if not len(valid):
        return torch.zeros(0, 3, CROP_SIZE, CROP_SIZE)
    return aligned_crops(frames[valid], select_frames(track, valid))
