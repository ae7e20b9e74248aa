"""`resyncer eval`: the paper's metrics on a preprocessed dataset's held-out clips.

Held-out clips are the ones training holds out (stage1.split_clips: by a hash of the clip id,
the same split every stage uses); with a single clip, that clip. Per clip the first `frames`
tracked frames are evaluated.

    stage 1 (--syncformer)   LVE: lip vertex error of the predicted meshes (style from the clip's
                             own displacements, as inference takes the target's) against the tracked
    generator (--generator)  PSNR, SSIM: reconstruction of frame t from the overlay of its tracked
                             mesh and the reference 75 frames away (paper A.1, same-identity
                             evaluation); LMD: mouth landmarks re-tracked in output and real crops
                             (pixels of the 256² crop); identity similarity of output and real crops
                             (ArcFace when --models holds trained weights, else the dlib descriptor)
    both                     aperture sync: frames generated from the predicted meshes, their
                             re-tracked lip aperture against the predicted meshes' (correlation at
                             lag 0, best lag in frames); LSE-D / LSE-C of those frames with the clip's
                             audio when --models holds a trained syncnet.safetensors

A generator alone has no driving audio, so its aperture sync compares the reconstruction
(tracked meshes) with the tracked aperture. Output: a table on stdout and the same numbers as
JSON (--json).

With --compare-renderers the generator's same-identity reconstruction is set beside the two
training-free ones, each asked to repaint frame t's lower face from the reference 75 frames
away: the mesh warp (the reference crop warped from its tracked mesh to frame t's, mouth memory
from the clip's reference frames, never frame t) and the static mouth (the reference's lower
face as it is). Each output's mask-A region is pasted into the real crop of frame t, so all
three are scored on the same region: PSNR, SSIM and LMD of the pasted crops (`lower_*.<renderer>`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face import FaceTracker
from ..metrics.identity import identity_similarity
from ..metrics.image import psnr, ssim
from ..metrics.landmarks import aperture_sync, landmark_distance, mesh_aperture, track_crops
from ..metrics.mesh import lip_vertex_error
from ..metrics.sync import sync_scores
from ..models.checkpoint import is_random_initialised, load_checkpoint
from ..models.presets import MODEL_FILES
from ..render.mesh_warp import MouthMemory, warp_faces
from ..stages.functions import predict_meshes
from ..stages.model_files import load_identity_network, resolve_device, trained_audio_encoder_spec
from ..stages.warping import WARP_BATCH_SIZE
from .crop_dataset import CropDataset
from .dataset import AUDIO_FILE, DATASET_FPS, cache_features, load_clip_arrays, load_features, read_index, read_wav
from .generator_training import crops_from_uint8
from .stage1 import split_clips

STYLE_FRAMES = 90
DEFAULT_FRAMES = 50
GENERATOR_BATCH = 8


@dataclass
class EvalConfig:
    data: str
    syncformer: str | None = None
    generator: str | None = None
    models: str | None = None          # trained arcface / syncnet here are used when present
    frames: int = DEFAULT_FRAMES       # per clip
    validation_clips: int | None = None
    compare_renderers: bool = False    # also score the mesh warp and the static mouth (needs generator)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.syncformer and not self.generator:
            raise ResyncerInputError("eval needs --syncformer and/or --generator to evaluate")
        if self.compare_renderers and not self.generator:
            raise ResyncerInputError("--compare-renderers sets the warp and the static mouth beside a generator; "
                                     "pass --generator")
        if self.frames < 1:
            raise ResyncerInputError(f"frames per clip must be at least 1, got {self.frames}")


def _mean(values: list[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return float(np.mean(finite)) if finite else float("nan")


def _held_out(config: EvalConfig):
    clips = read_index(config.data)
    _, held_out = split_clips(clips, config.validation_clips) if len(clips) > 1 else ([], clips)
    return held_out or clips


def _generate(generator, data: CropDataset, clip_index: int, frames: np.ndarray, references: np.ndarray,
              meshes: np.ndarray | None, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs, targets, masks A [N,S,S]), images [N,3,S,S] in -1..1, on the CPU; overlays
    from `meshes` (else tracked)."""
    outputs, targets, masks = [], [], []
    for start in range(0, len(frames), GENERATOR_BATCH):
        samples = [(clip_index, int(t), int(r)) for t, r in zip(frames[start:start + GENERATOR_BATCH],
                                                                 references[start:start + GENERATOR_BATCH])]
        drawn = None if meshes is None else [meshes[t] for _, t, _ in samples]
        batch = data.batch(samples, device, meshes=drawn)
        with torch.no_grad():
            outputs.append(generator(batch.overlays, batch.references, mask=batch.masks[:, None]).clamp(-1, 1).cpu())
        targets.append(batch.targets.cpu())
        masks.append(batch.masks.cpu())
    return torch.cat(outputs), torch.cat(targets), torch.cat(masks)


def training_free_reconstructions(data: CropDataset, clip_index: int, frames: np.ndarray,
                                  references: np.ndarray) -> dict[str, torch.Tensor]:
    """Frames rebuilt from their references without weights, [N,3,S,S] in -1..1: "warp" (each
    reference crop mesh-warped from its tracked mesh to the frame's, with a mouth memory of the
    references only) and "static" (the reference crop unchanged)."""
    clip = data.clips[clip_index]
    reference_crops = crops_from_uint8(data.crops(clip_index)[torch.from_numpy(references)], torch.device("cpu"))
    reference_meshes, target_meshes = clip.meshes_in_crop(references), clip.meshes_in_crop(frames)
    memory = MouthMemory.from_frames(reference_crops, reference_meshes)
    warped = [warp_faces(reference_crops[part], reference_meshes[part], target_meshes[part], memory)[0]
              for part in (slice(start, start + WARP_BATCH_SIZE) for start in range(0, len(frames), WARP_BATCH_SIZE))]
    return {"warp": torch.cat(warped), "static": reference_crops}


def paste_lower_face(outputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The real crops with the outputs' mask-A region (masks [N,S,S]) pasted in."""
    return targets + masks[:, None] * (outputs - targets)


def evaluate(config: EvalConfig, log=print) -> dict[str, float]:
    device = resolve_device(config.device)
    clips = _held_out(config)
    models_dir = Path(config.models) if config.models else None
    results: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(float(value))

    syncformer = spec = None
    if config.syncformer:
        syncformer = load_checkpoint(config.syncformer, kind="syncformer", device=device)[0]
        spec = trained_audio_encoder_spec(config.syncformer)
        if spec is None:
            raise ResyncerInputError(f"{config.syncformer} does not record its audio encoder; use a file written by "
                                     "`resyncer train stage1`")
        cache_features(clips, spec, device=device)
    predicted: dict[str, np.ndarray] = {}
    if syncformer is not None:
        for clip in clips:
            arrays = load_clip_arrays(clip)
            delta = arrays["canonical"] - arrays["template"][None]
            style = torch.from_numpy(delta[:min(STYLE_FRAMES, len(delta))])
            meshes = predict_meshes(syncformer, torch.from_numpy(load_features(clip, spec)), style,
                                    arrays["template"]).numpy()
            predicted[clip.clip] = meshes
            tracked = arrays["valid"].astype(bool)
            add("lve", lip_vertex_error(meshes[tracked], arrays["canonical"][tracked]))

    if config.generator:
        generator = load_checkpoint(config.generator, kind="generator", device=device)[0]
        data = CropDataset([clip for clip in clips if clip.has_crops])
        tracker = FaceTracker(device)
        identity = load_identity_network(models_dir, device)
        syncnet = _supplied(models_dir, "syncnet", device)
        for index, clip in enumerate(data.clips):
            frames, references = clip.evaluation_frames(config.frames)
            outputs, targets, masks = _generate(generator, data, index, frames, references, None, device)
            add("psnr", psnr(outputs, targets))
            add("ssim", ssim(outputs, targets))
            generated_track, real_track = track_crops(tracker, outputs), track_crops(tracker, targets)
            add("lmd", landmark_distance(generated_track, real_track))
            add("identity_similarity", identity_similarity(identity.network, outputs, targets))
            if config.compare_renderers:
                renderers = {"generator": outputs, **training_free_reconstructions(data, index, frames, references)}
                for name, rebuilt in renderers.items():
                    pasted = paste_lower_face(rebuilt, targets, masks)
                    add(f"lower_psnr.{name}", psnr(pasted, targets))
                    add(f"lower_ssim.{name}", ssim(pasted, targets))
                    add(f"lower_lmd.{name}", landmark_distance(track_crops(tracker, pasted), real_track))
            driving = predicted.get(clip.record.clip)
            if driving is not None:
                # Lip-sync of the clip's own audio: overlays of the predicted meshes, reference = target (production).
                outputs, _, _ = _generate(generator, data, index, frames, frames, driving, device)
                generated_track = track_crops(tracker, outputs)
                driving_aperture = mesh_aperture(driving[frames])
            else:
                driving_aperture = mesh_aperture(clip.canonical[frames])
            sync = aperture_sync(mesh_aperture(generated_track.canonical), driving_aperture, generated_track.valid)
            add("aperture_correlation", sync.correlation)
            add("aperture_best_lag", sync.best_lag)
            if syncnet is not None and driving is not None:
                waveform = read_wav(clip.record.folder / AUDIO_FILE)
                start = int(round(frames[0] / DATASET_FPS * 16000))
                scores = sync_scores(syncnet, outputs, waveform[start:], DATASET_FPS)
                add("lse_d", scores.lse_distance)
                add("lse_c", scores.lse_confidence)
        log(f"eval: identity similarity with {identity.name}")
    summary = {name: _mean(values) for name, values in results.items() if values}
    summary["clips"] = len(clips)
    return summary


def _supplied(models_dir: Path | None, kind: str, device):
    """A trained checkpoint of `kind` from the models folder, or None (absent or random-initialised)."""
    if models_dir is None:
        return None
    path = models_dir / MODEL_FILES[kind]
    if not path.is_file() or is_random_initialised(path):
        return None
    return load_checkpoint(path, kind=kind, device=device)[0]


_DESCRIPTIONS = {
    "lve": "lip vertex error (canonical units, lower better)",
    "psnr": "PSNR dB (higher better)",
    "ssim": "SSIM (higher better)",
    "lmd": "mouth landmark distance, crop px (lower better)",
    "identity_similarity": "identity cosine similarity (higher better)",
    "aperture_correlation": "lip aperture vs driving mesh, correlation at lag 0",
    "aperture_best_lag": "lip aperture best lag, frames (0 = in sync)",
    "lse_d": "LSE-D (lower better)",
    "lse_c": "LSE-C (higher better)",
    "clips": "held-out clips evaluated",
    "lower_psnr": "PSNR dB, renderer's lower face pasted into the real crop",
    "lower_ssim": "SSIM, renderer's lower face pasted into the real crop",
    "lower_lmd": "mouth landmark distance, crop px, lower face pasted",
}


def format_table(summary: dict[str, float]) -> str:
    width = max(len(name) for name in summary)
    return "\n".join(f"{name:<{width}}  {value:>10.4f}  {_DESCRIPTIONS.get(name.split('.')[0], '')}" for name, value in summary.items())


def write_json(summary: dict[str, float], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                     for k, v in summary.items()}, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
    return path
