"""ReSyncer Lip-sync (streaming): the CLI's chunked engine (resyncer_core.pipeline) as one node,
from a file or VIDEO to a VIDEO, so memory stays flat however long the clip is.

The frame-by-frame nodes hold every frame as a float32 IMAGE (60 s of 1080p is ~37 GB per
IMAGE); this node decodes, renders, generates, blends and encodes a few frames at a time, and
keeps only per-frame landmarks and meshes for the whole clip. Modes: audio-driven lip-sync,
video-driven lip-sync and face swap (lip-synced when audio is given).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import wave
from pathlib import Path

import numpy as np

from . import comfy_adapter as adapter
from .common import (
    AUDIO_ENCODER,
    GENERATOR,
    SYNCFORMER,
    audio_parts,
    batch_size_input,
    category,
    fps_input,
    image_to_uint8,
    require_handle,
    with_node_info,
)
from .generator import KIND as GENERATOR_KIND
from .syncformer import KIND as SYNCFORMER_KIND
from .track_face import NO_FACE_WARNING

LOG = logging.getLogger("resyncer.nodes")
MODES = ["audio", "video-driven", "swap"]
LONG_AUDIO = ["pingpong", "trim"]
SHORT_AUDIO = ["trim", "pad"]


def _file_or_none(name: str) -> Path | None:
    """A typed file input: None when empty, else its path (one-line error when missing)."""
    from resyncer_core.errors import ResyncerInputError

    if not str(name or "").strip():
        return None
    path = adapter.resolve_input_path(name)
    if not path.is_file():
        raise ResyncerInputError(f"file {name!r} was not found in the input folder ({adapter.input_directory()}); "
                                 "upload it or give its full path")
    return path


def _temp_path(stem: str, suffix: str) -> Path:
    folder = adapter.temp_directory()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"ReSyncer_{stem}_{uuid.uuid4().hex[:10]}{suffix}"


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def write_audio_file(audio, path: Path) -> Path:
    """An AUDIO (any Mapping with waveform/sample_rate) as 16-bit PCM WAV at its own rate and
    channels, for the engine, which reads its driving audio from a file."""
    waveform, rate = audio_parts(audio)
    samples = np.rint(np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(len(samples))
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(np.ascontiguousarray(samples.T).tobytes())
    return path


def write_frames_file(images, fps: float, path: Path) -> Path:
    """An IMAGE (a photo or a batch of frames) as a video file at `fps` for the engine, which
    reads its target from a file; the engine then holds or repeats it for the speech's length."""
    adapter.FramesVideo(images, None, fps).save_to(path)
    return path


def write_image_file(images, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(image_to_uint8(images[:1])[0]).save(path)
    return path


class ReSyncerLipSyncStreaming:
    DESCRIPTION = ("Lip-syncs a whole video in one node with the CLI's streaming engine: a few frames are decoded, "
                   "rendered, generated, blended and encoded at a time, so memory does not grow with the clip's "
                   "length (use it for anything longer than a few seconds). Modes: audio (speech drives the mouth in "
                   "the target's own style), video-driven (a driver video's mouth motion), swap (the identity's face, "
                   "lip-synced when audio is given). Outputs a VIDEO (H.264, the driving audio at its own rate and "
                   "channels) for Save Video.")
    CATEGORY = category("pipeline")
    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The lip-synced video (a file in ComfyUI's temp folder).",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "generator": (GENERATOR, {"tooltip": "From Load ReSync Generator (or Personalize)."}),
                "mode": (MODES, {"default": "audio", "tooltip": "audio: speech drives the mouth; video-driven: the "
                                 "driver video's mouth motion; swap: the identity's face (lip-synced when audio is given)."}),
                "long_audio": (LONG_AUDIO, {"default": "pingpong", "tooltip": "Audio longer than the video: pingpong "
                                            "plays the video forward and back; trim stops with the video."}),
                "short_audio": (SHORT_AUDIO, {"default": "trim", "tooltip": "Audio shorter than the video: trim stops "
                                              "with the audio; pad plays the whole video with silence after it."}),
                "batch_size": batch_size_input(),
                "chunk_frames": ("INT", {"default": 8, "min": 1, "max": 256, "step": 1,
                                         "tooltip": "Frames decoded, blended and encoded together; memory grows with it."}),
                "crf": ("INT", {"default": 18, "min": 0, "max": 51, "step": 1,
                                "tooltip": "H.264 quality: lower is better and larger (18 is visually lossless)."}),
            },
            "optional": {
                "video": ("VIDEO", {"tooltip": "The target video (e.g. core Load Video)."}),
                "video_file": ("STRING", {"default": "", "tooltip": "Or the target as a file in the input folder or a "
                                          "path (used when no VIDEO is connected)."}),
                "audio": ("AUDIO", {"tooltip": "Driving speech (audio and swap modes); any rate and channels."}),
                "audio_file": ("STRING", {"default": "", "tooltip": "Or the speech as a file or path."}),
                "driver": ("VIDEO", {"tooltip": "video-driven mode: the video whose mouth motion is copied."}),
                "driver_file": ("STRING", {"default": "", "tooltip": "Or the driver as a file or path."}),
                "identity": ("IMAGE", {"tooltip": "swap mode: a picture of the face to put in (the first frame is used)."}),
                "identity_file": ("STRING", {"default": "", "tooltip": "Or the identity as an image/video file or path."}),
                "style_video": ("VIDEO", {"tooltip": "audio mode: another person's video whose speaking style to use; "
                                                     "left out, the target's own."}),
                "syncformer": (SYNCFORMER, {"tooltip": "From Load Style-SyncFormer; needed whenever audio drives."}),
                "audio_encoder": (AUDIO_ENCODER, {"tooltip": "From Load Audio Encoder; needed whenever audio drives."}),
                # Last, so the widget values of workflows saved before they existed keep their places.
                "images": ("IMAGE", {"tooltip": "Or the target as frames: a photo (core Load Image) or any IMAGE, "
                                     "held (or played forward and back) for the speech's length."}),
                "fps": fps_input("Frame rate of the video made from images (ignored for a VIDEO or a file)."),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @staticmethod
    def _renderer(generator, target: Path, mode: str, device):
        """(renderer, warning): the generator, or the mesh warp and why where `auto` would take it
        on the CLI: an untrained generator, one trained on other faces only, or one not trained
        for swap."""
        from resyncer_core.face import FaceTracker
        from resyncer_core.stages.face_identity import sampled_face_crops
        from resyncer_core.stages.warping import MeshWarp, warp_reason

        reason = warp_reason(Path(generator.source), lambda: sampled_face_crops(target, FaceTracker(device)),
                             swap=mode == "swap")
        if reason is None:
            return generator.model, None
        warning = f"{reason}: {'identity transferred by' if mode == 'swap' else 'drawn with'} the mesh warp instead"
        LOG.warning("ReSyncer: %s", warning)
        return MeshWarp(device), warning

    def run(self, generator, mode="audio", long_audio="pingpong", short_audio="trim", batch_size=8, chunk_frames=8,
            crf=18, video=None, video_file="", images=None, fps=25.0, audio=None, audio_file="", driver=None,
            driver_file="", identity=None, identity_file="", style_video=None, syncformer=None, audio_encoder=None,
            unique_id=None):
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.pipeline import PipelineCancelled, PipelineModels, RenderOptions

        if mode not in MODES:
            raise ResyncerInputError(f"mode {mode!r} is unknown; use one of {', '.join(MODES)}")
        generator = require_handle(generator, GENERATOR_KIND, "generator")
        temporary: list[Path] = []
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(_remove, temporary)  # the engine's inputs made here, on every exit path
            if video is None and images is not None:
                target = write_frames_file(images, fps, _temp_path("target", ".mp4"))
                temporary.append(target)
            else:
                target = self._video_path(video, video_file, "video", temporary, required=True)
            speech = self._audio_path(audio, audio_file, temporary)
            drives_from_audio = mode == "audio" or (mode == "swap" and speech is not None)
            if drives_from_audio:
                if speech is None:
                    raise ResyncerInputError("mode audio needs speech; connect audio or set audio_file")
                syncformer = require_handle(syncformer, SYNCFORMER_KIND, "syncformer")
                audio_encoder = require_handle(audio_encoder, "audio_encoder", "audio_encoder")
            driver_path = self._video_path(driver, driver_file, "driver", temporary, required=mode == "video-driven")
            identity_path = self._identity_path(identity, identity_file, temporary, required=mode == "swap")
            style_path = self._video_path(style_video, "", "style", temporary, required=False)
            options = RenderOptions(batch_size=batch_size, chunk_size=chunk_frames, crf=crf)
            output = _temp_path("lipsync", ".mp4")
            modules = [generator.model] + ([syncformer.model, audio_encoder.model] if drives_from_audio else [])
            callbacks = adapter.StageProgress(unique_id).callbacks()
            try:
                with adapter.on_device(*modules, device=generator.torch_device()) as device:
                    renderer, warning = self._renderer(generator, target, mode, device)
                    models = PipelineModels(generator=renderer, device=device,
                                            syncformer=syncformer.model if drives_from_audio else None,
                                            audio_encoder=audio_encoder.model if drives_from_audio else None)
                    result = self._render(mode, models, target, speech, driver_path, identity_path, style_path,
                                          output, long_audio, short_audio, options, callbacks)
            except PipelineCancelled:
                adapter.raise_interrupted()
        if result.frames_without_face == result.frames_written:
            warning = NO_FACE_WARNING
            LOG.warning("ReSyncer: %s: %s", target.name, warning)
        LOG.info("ReSyncer: %s", result.summary())
        return with_node_info((adapter.video_from_file(output),), frames=result.frames_written,
                              faces=result.frames_written - result.frames_without_face, fps=result.fps, mode=mode,
                              warning=warning)

    @staticmethod
    def _render(mode, models, target, speech, driver, identity, style, output, long_audio, short_audio, options,
                callbacks):
        from resyncer_core.pipeline import drive_video, lipsync_video, swap_video

        lengths = {"long_audio": long_audio, "short_audio": short_audio, "options": options, "callbacks": callbacks}
        if mode == "audio":
            return lipsync_video(target, speech, output, models, style_from=style, **lengths)
        if mode == "video-driven":
            return drive_video(target, driver, output, models, **lengths)
        return swap_video(target, identity, output, models, audio=speech, **lengths)

    @staticmethod
    def _video_path(video, name: str, purpose: str, temporary: list[Path], required: bool) -> Path | None:
        from resyncer_core.errors import ResyncerInputError

        if video is not None:
            path = adapter.video_source_path(video, purpose)
            if adapter.video_file_path(video) is None:
                temporary.append(path)
            return path
        path = _file_or_none(name)
        if path is None and required:
            raise ResyncerInputError(f"no {purpose} was given; connect a VIDEO to {purpose}"
                                     f"{' or an IMAGE to images' if purpose == 'video' else ''}, or set {purpose}_file")
        return path

    @staticmethod
    def _audio_path(audio, name: str, temporary: list[Path]) -> Path | None:
        if audio is None:
            return _file_or_none(name)
        path = write_audio_file(audio, _temp_path("audio", ".wav"))
        temporary.append(path)
        return path

    @staticmethod
    def _identity_path(image, name: str, temporary: list[Path], required: bool) -> Path | None:
        from resyncer_core.errors import ResyncerInputError

        if image is not None:
            path = write_image_file(image, _temp_path("identity", ".png"))
            temporary.append(path)
            return path
        path = _file_or_none(name)
        if path is None and required:
            raise ResyncerInputError("mode swap needs an identity; connect an IMAGE to identity or set identity_file")
        return path


NODE_CLASSES = {
    "ReSyncerLipSyncStreaming": (ReSyncerLipSyncStreaming, "Lip-sync (streaming)"),
}
