"""The training dataset folder (DATA) that `resyncer preprocess` writes and every stage reads.

Layout (all per-frame arrays at DATASET_FPS = 25 fps, the paper's rate):

    DATA/index.jsonl           one JSON line per finished clip, appended only after all of the
                               clip's files are in place (a listed clip is complete):
        {"clip": id, "speaker": name, "frames": T, "fps": 25.0, "source": relative input path or null,
         "quality": {"tracked_fraction": 0..1, ...}, "has_crops": bool, "features": [cache keys]}
    DATA/skipped.jsonl         one JSON line per input preprocess could not use: {"source", "reason"}
    DATA/clips/<id>/meshes.safetensors
        canonical        float32 [T,468,3]  pose-free meshes M (ΔM = canonical − template)
        template         float32 [468,3]    the neutral template M̄ (face/template.py)
        valid            uint8   [T]        1 where a face was tracked
        mouth_opening    float32 [T]        inner-lip gap in canonical units (face/template.py)
        pose_scale       float32 [T]        optional: per-frame similarity pose (face/canonical.py)
        pose_rotation    float32 [T,3,3]    optional
        pose_translation float32 [T,3]      optional
        crop_affine      float32 [T,2,3]    optional: source frame → aligned 256² crop
        metadata "resyncer.clip": JSON {"format_version", "fps", "frame_size": [H, W] or null}
    DATA/clips/<id>/audio.wav  16 kHz mono PCM16, covering the T frames (padded with silence)
    DATA/clips/<id>/crops.mp4  optional: the aligned 256² crops at 25 fps, near-lossless H.264
    DATA/clips/<id>/features/<key>.safetensors
        features float32 [T, A], one vector per frame at 25 fps, from the audio encoder whose
        spec string is in the metadata "resyncer.audio_encoder" (key: feature_cache_key(spec))

Stage 1 needs only meshes, template, audio and features; stage 2 and swap also need
crops.mp4 and the pose/crop arrays. `write_clip` is the one way to add a clip: preprocess
calls it with tracked video, a synthetic corpus can call it with meshes and audio it already
has (no crop video). Clips are written into a hidden temporary folder and renamed into
place, so an interrupted write leaves nothing that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..audio import SAMPLE_RATE, load_audio_encoder, samples_spanned_by
from ..errors import ResyncerInputError
from ..face import topology
from ..face.template import mouth_opening
from ..jsonl_records import append_jsonl, read_jsonl
from ..models.presets import AUDIO_ENCODER_KEY

DATASET_FPS = 25.0                 # (paper) every per-frame array of the dataset is at 25 fps
FORMAT_VERSION = 1
INDEX_FILE = "index.jsonl"
SKIPPED_FILE = "skipped.jsonl"
CLIPS_FOLDER = "clips"
MESHES_FILE = "meshes.safetensors"
AUDIO_FILE = "audio.wav"
CROPS_FILE = "crops.mp4"
FEATURES_FOLDER = "features"
CLIP_METADATA_KEY = "resyncer.clip"
_POSE_ARRAYS = ("pose_scale", "pose_rotation", "pose_translation", "crop_affine")
_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def clip_id_for(relative_path: str | os.PathLike) -> str:
    """A folder-safe, stable id for an input file's path relative to the corpus folder:
    the path with separators as "__", plus a short hash so distinct paths never collide."""
    text = Path(relative_path).with_suffix("").as_posix()
    readable = _UNSAFE_ID_CHARACTERS.sub("_", text.replace("/", "__")).strip("._")[:80] or "clip"
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def encoder_folder(spec: str | os.PathLike) -> Path | None:
    """The resolved folder an audio encoder spec names, or None for a keyword ("mel", "whisper").
    A spec is a folder when it is a path (has a separator) or a folder holding config.json, so
    a keyword stays a keyword even where a folder of that name happens to exist."""
    text = str(spec).strip()
    path = Path(text).expanduser()
    is_path = os.sep in text or "/" in text or (path / "config.json").is_file()
    return path.resolve() if is_path else None


def feature_cache_key(spec: str | os.PathLike) -> str:
    """File name (without .safetensors) of the cached features of audio encoder `spec`:
    a keyword spec ("mel", "whisper") is its own key; a folder gets its name and a hash of
    its resolved path."""
    folder = encoder_folder(spec)
    if folder is None:
        return _UNSAFE_ID_CHARACTERS.sub("_", str(spec).strip().lower()) or "encoder"
    return f"{_UNSAFE_ID_CHARACTERS.sub('_', folder.name)}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------------------- writing

def _write_wav(path: Path, waveform: np.ndarray) -> None:
    pcm = np.round(np.clip(waveform, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(pcm.tobytes())


def read_wav(path: str | os.PathLike) -> np.ndarray:
    """The mono float32 16 kHz waveform of a dataset audio.wav."""
    with wave.open(str(path), "rb") as file:
        if file.getnchannels() != 1 or file.getsampwidth() != 2 or file.getframerate() != SAMPLE_RATE:
            raise ResyncerInputError(f"{path} is not 16 kHz mono PCM16; re-run resyncer preprocess")
        data = file.readframes(file.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def audio_for_frames(waveform: np.ndarray, frame_count: int, fps: float = DATASET_FPS) -> np.ndarray:
    """`waveform` (16 kHz) cut or padded with silence to exactly the samples `frame_count` frames span."""
    samples = samples_spanned_by(frame_count, fps)
    waveform = np.asarray(waveform, dtype=np.float32)[:samples]
    return np.pad(waveform, (0, samples - len(waveform)))


@dataclass
class ClipArrays:
    """A clip's per-frame arrays at 25 fps (see the module docstring for shapes)."""

    canonical: np.ndarray
    template: np.ndarray
    valid: np.ndarray | None = None              # default: every frame tracked
    pose_scale: np.ndarray | None = None
    pose_rotation: np.ndarray | None = None
    pose_translation: np.ndarray | None = None
    crop_affine: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None    # (H, W) of the source frames the crop_affine maps from

    def __len__(self) -> int:
        return len(self.canonical)

    def check(self) -> None:
        count = len(self.canonical)
        if self.canonical.shape != (count, topology.NUM_VERTICES, 3) or self.template.shape != (topology.NUM_VERTICES, 3):
            raise ResyncerInputError(f"clip meshes must be canonical [T,468,3] and template [468,3], got "
                                     f"{list(self.canonical.shape)} and {list(self.template.shape)}")
        if count < 1:
            raise ResyncerInputError("a dataset clip needs at least one frame")
        for name in ("valid", *_POSE_ARRAYS):
            value = getattr(self, name)
            if value is not None and len(value) != count:
                raise ResyncerInputError(f"clip array {name} has {len(value)} frames, canonical has {count}")

    def tensors(self) -> dict[str, torch.Tensor]:
        valid = np.ones(len(self), dtype=np.uint8) if self.valid is None else np.asarray(self.valid, dtype=np.uint8)
        arrays = {"canonical": self.canonical, "template": self.template, "valid": valid,
                  "mouth_opening": mouth_opening(self.canonical)}
        arrays.update({name: getattr(self, name) for name in _POSE_ARRAYS if getattr(self, name) is not None})
        return {name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.uint8 if name == "valid" else np.float32))
                for name, value in arrays.items()}


class ClipWriter:
    """Writes one clip into a hidden temporary folder; `commit` moves it into DATA/clips/<id>
    and appends its index line. Leaving the `with` block by an exception removes everything."""

    def __init__(self, data_dir: str | os.PathLike, clip_id: str):
        self.data_dir = Path(data_dir)
        self.clip_id = clip_id
        self.final = self.data_dir / CLIPS_FOLDER / clip_id
        self.folder = self.final.with_name(f".{clip_id}.{secrets.token_hex(4)}.partial")
        self.folder.mkdir(parents=True)
        self._features: list[str] = []
        self._frames: int | None = None

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.abort()

    @property
    def crops_path(self) -> Path:
        """Where to write the crop video (e.g. with a VideoWriter) before commit."""
        return self.folder / CROPS_FILE

    def write_arrays(self, arrays: ClipArrays) -> None:
        arrays.check()
        self._frames = len(arrays)
        metadata = {"format_version": FORMAT_VERSION, "fps": DATASET_FPS,
                    "frame_size": None if arrays.frame_size is None else list(arrays.frame_size)}
        save_file(arrays.tensors(), str(self.folder / MESHES_FILE), metadata={CLIP_METADATA_KEY: json.dumps(metadata)})

    def write_audio(self, waveform_16k: np.ndarray) -> np.ndarray:
        """Writes the audio cut or padded to the clip's frames; returns what was written, as
        read back (PCM16), so features computed from it match a later read. Needs write_arrays first."""
        if self._frames is None:
            raise ResyncerInputError("write the clip's arrays before its audio (the audio is cut to the frames)")
        _write_wav(self.folder / AUDIO_FILE, audio_for_frames(waveform_16k, self._frames))
        return read_wav(self.folder / AUDIO_FILE)

    def write_features(self, spec: str, features: np.ndarray | torch.Tensor) -> None:
        features = torch.as_tensor(features, dtype=torch.float32).contiguous()
        if features.ndim != 2 or len(features) != self._frames:
            raise ResyncerInputError(f"features must be [{self._frames}, A] (one per clip frame), got {list(features.shape)}")
        key = feature_cache_key(spec)
        _save_features(self.folder / FEATURES_FOLDER / f"{key}.safetensors", features, spec)
        self._features.append(key)

    def commit(self, speaker: str, source: str | None = None, quality: dict[str, Any] | None = None) -> dict:
        """Moves the clip into place and appends its index line; returns that record."""
        if self._frames is None or not (self.folder / AUDIO_FILE).is_file():
            raise ResyncerInputError(f"clip {self.clip_id} needs its arrays and audio before commit")
        if self.final.exists():
            shutil.rmtree(self.final)  # a clip written again (an index line was lost before the crash)
        os.replace(self.folder, self.final)
        record = {"clip": self.clip_id, "speaker": speaker, "frames": self._frames, "fps": DATASET_FPS,
                  "source": source, "quality": quality or {}, "has_crops": (self.final / CROPS_FILE).is_file(),
                  "features": sorted(set(self._features))}
        append_jsonl(self.data_dir / INDEX_FILE, record)
        return record

    def abort(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _save_features(path: Path, features: torch.Tensor, spec: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        save_file({"features": features}, str(temporary), metadata={AUDIO_ENCODER_KEY: str(spec)})
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_clip(data_dir: str | os.PathLike, clip_id: str, arrays: ClipArrays, waveform_16k: np.ndarray,
               speaker: str, features: dict[str, np.ndarray | torch.Tensor] | None = None,
               source: str | None = None, quality: dict[str, Any] | None = None) -> dict:
    """Adds a clip without crop video (e.g. a synthetic speech corpus): arrays at 25 fps,
    16 kHz audio, optional precomputed features {encoder spec: [T, A]}. Features not given
    are computed later by `cache_features`. Returns the index record."""
    with ClipWriter(data_dir, clip_id) as writer:
        writer.write_arrays(arrays)
        writer.write_audio(waveform_16k)
        for spec, values in (features or {}).items():
            writer.write_features(spec, values)
        return writer.commit(speaker, source, quality)


# --------------------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class ClipRecord:
    clip: str
    speaker: str
    frames: int
    folder: Path
    has_crops: bool = False
    quality: dict[str, Any] = field(default_factory=dict)


def finished_clip_ids(data_dir: str | os.PathLike) -> set[str]:
    return {record["clip"] for record in read_jsonl(Path(data_dir) / INDEX_FILE)}


def read_index(data_dir: str | os.PathLike) -> list[ClipRecord]:
    """The dataset's clips (the last line wins for a clip listed twice), sorted by id."""
    data_dir = Path(data_dir)
    if not (data_dir / INDEX_FILE).is_file():
        raise ResyncerInputError(f"{data_dir} has no {INDEX_FILE}; make the dataset with `resyncer preprocess`")
    records = {record["clip"]: record for record in read_jsonl(data_dir / INDEX_FILE)}
    return [ClipRecord(clip=clip, speaker=record.get("speaker", clip), frames=int(record["frames"]),
                       folder=data_dir / CLIPS_FOLDER / clip, has_crops=bool(record.get("has_crops")),
                       quality=record.get("quality", {}))
            for clip, record in sorted(records.items())]


def load_clip_arrays(clip: ClipRecord) -> dict[str, np.ndarray]:
    """The numpy arrays of a clip's meshes.safetensors."""
    path = clip.folder / MESHES_FILE
    try:
        return {name: tensor.numpy() for name, tensor in load_file(str(path)).items()}
    except (OSError, ValueError) as error:
        raise ResyncerInputError(f"dataset clip file {path} is unreadable ({error}); re-run resyncer preprocess") from None


def features_path(clip: ClipRecord, spec: str) -> Path:
    return clip.folder / FEATURES_FOLDER / f"{feature_cache_key(spec)}.safetensors"


def load_features(clip: ClipRecord, spec: str) -> np.ndarray:
    path = features_path(clip, spec)
    if not path.is_file():
        raise ResyncerInputError(f"clip {clip.clip} has no cached features of audio encoder {spec!r}; "
                                 "run cache_features or resyncer preprocess --audio-encoder with that encoder")
    return load_file(str(path))["features"].numpy()


def cached_feature_dim(clip: ClipRecord, spec: str) -> int | None:
    path = features_path(clip, spec)
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        return int(handle.get_slice("features").get_shape()[1])


def cache_features(clips: list[ClipRecord], spec: str, device: str | torch.device = "cpu",
                   encoder=None, on_clip: Callable[[int, int], None] | None = None) -> int:
    """Computes and stores the features of audio encoder `spec` for every clip that lacks
    them; returns how many were computed. The encoder is loaded only when one is missing."""
    missing = [clip for clip in clips if not features_path(clip, spec).is_file()]
    for done, clip in enumerate(missing, start=1):
        encoder = encoder if encoder is not None else load_audio_encoder(spec, device=device)
        waveform = read_wav(clip.folder / AUDIO_FILE)
        features = encoder.encode(waveform, DATASET_FPS, clip.frames).to("cpu", torch.float32)
        _save_features(features_path(clip, spec), features.contiguous(), spec)
        if on_clip is not None:
            on_clip(done, len(missing))
    return len(missing)
