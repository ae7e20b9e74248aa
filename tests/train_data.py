"""Tiny training datasets made in the tests: synthetic speech with meshes whose jaw follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resyncer_core.face import topology
from resyncer_core.synth.speech import synthetic_speech
from resyncer_core.synth.speech_plan import SpeechPlan
from resyncer_core.train.dataset import DATASET_FPS, ClipArrays, write_clip


def speaking_meshes(plan: SpeechPlan, frames: int, jaw_drop: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """(canonical [T,468,3], template [468,3]): the lower-face vertices drop with the speech envelope."""
    template = topology.template_vertices().astype(np.float32)
    opening = plan.envelope(np.arange(frames) / DATASET_FPS).astype(np.float32)
    heights = template[:, 1]
    lower = topology.lower_face_vertices()
    weight = np.zeros(len(template), dtype=np.float32)
    weight[lower] = (heights[lower].max() - heights[lower]) / (heights[lower].max() - heights[lower].min())
    canonical = np.repeat(template[None], frames, axis=0)
    canonical[:, :, 1] -= jaw_drop * opening[:, None] * weight[None]
    return canonical, template


def make_mesh_dataset(data_dir: Path, clips: int = 3, frames: int = 60, seed: int = 0,
                      features: dict | None = None) -> Path:
    """A dataset of `clips` synthetic speakers (no crop video) in `data_dir`."""
    for index in range(clips):
        duration = frames / DATASET_FPS
        plan = SpeechPlan.generate(duration, seed + index)
        canonical, template = speaking_meshes(plan, frames)
        waveform = synthetic_speech(duration, 16000, seed + index, plan)
        write_clip(data_dir, f"speaker{index}-clip", ClipArrays(canonical=canonical, template=template), waveform,
                   speaker=f"speaker{index}", features=features)
    return data_dir
