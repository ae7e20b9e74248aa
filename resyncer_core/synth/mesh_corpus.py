"""A procedural stage-1 corpus: synthetic speech with meshes whose jaw follows it, written into
the training dataset layout (resyncer_core.train.dataset) without any video. Tests and
benchmarks train on it; the jaw opens exactly when the voice is loud, so a Style-SyncFormer
can learn the mapping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..face import topology
from ..face.lips import INNER_LIP_MIDLINE
from .speech import synthetic_speech
from .speech_plan import SpeechPlan

JAW_DROP = 1.5   # canonical units (about cm) the chin drops at full mouth opening
CORPUS_FPS = 25.0


def speaking_meshes(plan: SpeechPlan, frames: int, jaw_drop: float = JAW_DROP) -> tuple[np.ndarray, np.ndarray]:
    """(canonical [T,468,3], template [468,3]) at 25 fps: MediaPipe's canonical face whose jaw
    (every vertex below the lips' meeting line) drops with the plan's speech envelope, the
    chin most, so the lips part as the voice gets loud."""
    template = topology.template_vertices().astype(np.float32)
    opening = plan.envelope(np.arange(frames) / CORPUS_FPS).astype(np.float32)
    heights = template[:, 1]
    upper_lip, lower_lip = INNER_LIP_MIDLINE
    mouth_line = (heights[upper_lip] + heights[lower_lip]) / 2
    below = (mouth_line - heights).clip(min=0) / (mouth_line - heights[topology.CHIN])
    weight = np.where(heights < mouth_line, 0.7 + 0.3 * below.clip(max=1), 0.0).astype(np.float32)
    canonical = np.repeat(template[None], frames, axis=0)
    canonical[:, :, 1] -= jaw_drop * opening[:, None] * weight[None]
    return canonical, template


def write_mesh_corpus(data_dir: str | os.PathLike, clips: int = 3, frames: int = 60, seed: int = 0,
                      features: dict | None = None) -> Path:
    """A dataset of `clips` synthetic speakers of `frames` frames each (no crop video) in `data_dir`."""
    from ..train.dataset import ClipArrays, write_clip  # the dataset layout belongs to training

    duration = frames / CORPUS_FPS
    for index in range(clips):
        plan = SpeechPlan.generate(duration, seed + index)
        canonical, template = speaking_meshes(plan, frames)
        waveform = synthetic_speech(duration, 16000, seed + index, plan)
        write_clip(data_dir, f"speaker{index}-clip", ClipArrays(canonical=canonical, template=template), waveform,
                   speaker=f"speaker{index}", features=features)
    return Path(data_dir)
