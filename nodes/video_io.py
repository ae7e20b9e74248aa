"""Core I/O nodes, so a workflow also runs headless where ComfyUI's own loaders are absent:
Load Video (frames + audio + fps + VIDEO), Load Audio, Save Video (H.264 + AAC mp4).

File inputs are combos over the input folder with ComfyUI's upload buttons (video_upload /
audio_upload); VALIDATE_INPUTS accepts any name that resolves to a file, so typed paths from
the headless runner and `--set` still work and a missing file fails before anything runs.
Audio keeps its own sample rate and channels from file to file.
"""

from __future__ import annotations

import logging
import shutil
from fractions import Fraction

import numpy as np

from . import comfy_adapter as adapter
from .common import (
    CATEGORY,
    MAX_FRAMES,
    audio_parts,
    category,
    channels_to_audio,
    fps_input,
    image_to_uint8,
    input_verdict,
)

LOG = logging.getLogger("resyncer.nodes")
_SAVE_CHUNK = 32
_DECODE_CHUNK = 32
_FLOAT_BYTES = 4
# Load Video refuses when the frames as float32 IMAGE would take more than this share of the
# memory still available: the rest of the graph (crops, blend output) needs room too.
_MEMORY_SHARE = 0.5
STREAMING_NODE = "ReSyncer Lip-sync (streaming)"


def _video_choices() -> list[str]:
    return adapter.list_input_files(adapter.VIDEO_SUFFIXES)


def _audio_choices() -> list[str]:
    return adapter.list_input_files(adapter.AUDIO_SUFFIXES + adapter.VIDEO_SUFFIXES)


def file_input_key(name: str) -> str:
    """IS_CHANGED value of a file input: the file's path, modification time and size."""
    return str(adapter.file_key(adapter.resolve_input_path(name))) if str(name or "").strip() else ""


def check_memory(frame_count: int, height: int, width: int, what: str) -> None:
    """Refuses, in one line, to load frames whose float32 IMAGE would not fit in memory."""
    from resyncer_core.errors import ResyncerInputError

    available = adapter.available_memory_bytes()
    frame_bytes = height * width * 3 * _FLOAT_BYTES
    if available is None or frame_count * frame_bytes <= available * _MEMORY_SHARE:
        return
    fits = max(1, int(available * _MEMORY_SHARE // frame_bytes))
    raise ResyncerInputError(
        f"{what}: {frame_count} frames of {width}×{height} need {frame_count * frame_bytes / 2**30:.1f} GiB as IMAGE but "
        f"only {available / 2**30:.1f} GiB of memory is free; set frame_limit to {fits} or less, or use the "
        f"{STREAMING_NODE} node, which holds only a few frames at a time")


def _decode(path, start_frame: int, frame_limit: int):
    """(IMAGE float32 [T,H,W,3], fps as Fraction, has_audio) of frames start_frame … (+frame_limit),
    decoded straight into one preallocated tensor (no uint8 copy of the whole clip)."""
    import torch

    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.video import iter_frames, probe_video

    info = probe_video(path)
    stop = start_frame + frame_limit if frame_limit else None
    expected = max(0, (min(stop, info.frame_count) if stop else info.frame_count) - start_frame)
    if expected == 0:
        raise ResyncerInputError(f"video {path} has no frames from frame {start_frame}; lower start_frame")
    check_memory(expected, info.height, info.width, f"Load Video {path.name}")
    images = torch.empty((expected, info.height, info.width, 3), dtype=torch.float32)
    progress = adapter.Progress(expected)
    loaded = 0
    for chunk in iter_frames(path, chunk_size=_DECODE_CHUNK, start=start_frame, stop=stop):
        adapter.check_interrupt()
        chunk = chunk[:expected - loaded]  # a file can hold more frames than its header counted
        images[loaded:loaded + len(chunk)] = torch.from_numpy(chunk).to(torch.float32).div_(255.0)
        loaded += len(chunk)
        progress.update(len(chunk))
    if loaded == 0:
        raise ResyncerInputError(f"video {path} has no frames from frame {start_frame}; lower start_frame")
    return images[:loaded], info.frame_rate, info.has_audio


def _soundtrack_span(path, has_audio: bool, first_second: float, seconds: float) -> dict:
    """AUDIO of the file's track from `first_second` for `seconds`, at its own rate and channels
    (silence padded where the track is shorter; mono 16 kHz silence when it has none)."""
    from resyncer_core.audio import SAMPLE_RATE, load_soundtrack

    if not has_audio:
        LOG.info("ReSyncer: %s has no audio track; the audio output is silence", path.name)
        return channels_to_audio(np.zeros(round(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)
    track, rate = load_soundtrack(path)
    first, count = round(first_second * rate), round(seconds * rate)
    waveform = np.zeros((track.shape[0], count), np.float32)
    piece = track[:, first:first + count]
    waveform[:, :piece.shape[1]] = piece
    return channels_to_audio(waveform, rate)


def _cut_audio(audio, first_second: float, seconds: float):
    if audio is None:
        return None
    waveform, rate = audio_parts(audio)
    first = round(first_second * rate)
    return channels_to_audio(waveform[:, first:first + round(seconds * rate)], rate)


class ReSyncerLoadVideo:
    DESCRIPTION = ("Decodes a video from the input folder (or a connected VIDEO) into frames (IMAGE), its audio track "
                   "(AUDIO at the file's own rate and channels; silence when it has none), its frame rate and frame "
                   "count, and passes it on as a VIDEO. Every frame is held in memory: for long clips use the "
                   f"{STREAMING_NODE} node.")
    CATEGORY = category("io")
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT", "INT", "VIDEO")
    RETURN_NAMES = ("images", "audio", "fps", "frame_count", "video")
    OUTPUT_TOOLTIPS = ("Decoded RGB frames.", "The audio track cut to the loaded frames.",
                       "The file's frame rate.", "How many frames were loaded.",
                       "The loaded frames and audio as a VIDEO (for core Save Video and the streaming node).")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video": (_video_choices(), {"video_upload": True, "tooltip": "A video in ComfyUI's input folder (upload "
                                             "one with the button); the headless runner also takes a path."}),
                "start_frame": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                        "tooltip": "First frame to load (0 = the beginning)."}),
                "frame_limit": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                        "tooltip": "Most frames to load; 0 loads to the end. Every frame is held in "
                                                   "memory, so keep long videos short here."}),
            },
            "optional": {
                "source_video": ("VIDEO", {"tooltip": "A VIDEO (e.g. from core Load Video) to read instead of the "
                                                      "file above."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, video):
        # Empty is allowed here: a connected source_video needs no file (checked when run).
        if not str(video or "").strip():
            return True
        found = adapter.input_file_problem(video)
        if found is not True:
            return found
        from resyncer_core.video import probe_video

        return input_verdict(lambda: probe_video(adapter.resolve_input_path(video)))

    @classmethod
    def IS_CHANGED(cls, video="", start_frame=0, frame_limit=0, **_):
        return file_input_key(video)

    def load(self, video="", start_frame=0, frame_limit=0, source_video=None):
        from resyncer_core.errors import ResyncerInputError

        path = adapter.video_file_path(source_video) if source_video is not None else adapter.resolve_input_path(video)
        if path is None:  # a VIDEO held in memory
            images, audio, frame_rate = self._from_components(source_video, start_frame, frame_limit)
        else:
            images, frame_rate, has_audio = _decode(path, start_frame, frame_limit)
            audio = _soundtrack_span(path, has_audio, start_frame / frame_rate, len(images) / frame_rate)
        whole = start_frame == 0 and (not frame_limit or frame_limit >= len(images))
        if source_video is not None and whole:
            out_video = source_video
        elif path is not None and whole:
            out_video = adapter.video_from_file(path)
        else:
            out_video = adapter.video_from_frames(images, audio, frame_rate)
        if len(images) == 0:
            raise ResyncerInputError(f"the video has no frames from frame {start_frame}; lower start_frame")
        return (images, audio, float(frame_rate), len(images), out_video)

    @staticmethod
    def _from_components(video, start_frame: int, frame_limit: int):
        components = video.get_components()
        frame_rate = Fraction(components.frame_rate).limit_denominator(1_000_000)
        stop = start_frame + frame_limit if frame_limit else None
        images = components.images[start_frame:stop, ..., :3]
        audio = _cut_audio(components.audio, start_frame / frame_rate, len(images) / frame_rate)
        return images, audio, frame_rate


class ReSyncerLoadAudio:
    DESCRIPTION = ("Loads speech from an audio file (or a video's audio track) in the input folder as AUDIO, at the "
                   "file's own sample rate and channels (the feature node makes its 16 kHz mono copy).")
    CATEGORY = category("io")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                # Named "audio" like core Load Audio: the frontend's audio upload widget looks for that name.
                "audio": (_audio_choices(), {"audio_upload": True, "tooltip": "A wav/mp3/flac/m4a file or a "
                                                  "video with sound in the input folder (upload one with the button); "
                                                  "the headless runner also takes a path."}),
                "start_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 86400.0, "step": 0.01,
                                            "tooltip": "Skip this many seconds from the start."}),
                "duration_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 86400.0, "step": 0.01,
                                               "tooltip": "Keep this many seconds; 0 keeps the rest of the file."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio):
        found = adapter.input_file_problem(audio)
        if found is not True or audio is None:
            return found
        from resyncer_core.audio import load_audio

        return input_verdict(lambda: load_audio(adapter.resolve_input_path(audio)))  # NaN/inf refused too

    @classmethod
    def IS_CHANGED(cls, audio="", start_seconds=0.0, duration_seconds=0.0, **_):
        return file_input_key(audio)

    def load(self, audio, start_seconds=0.0, duration_seconds=0.0):
        from resyncer_core.audio import load_soundtrack
        from resyncer_core.errors import ResyncerInputError

        waveform, rate = load_soundtrack(adapter.resolve_input_path(audio))
        first = round(start_seconds * rate)
        last = first + round(duration_seconds * rate) if duration_seconds > 0 else None
        waveform = waveform[:, first:last]
        if waveform.shape[1] == 0:
            raise ResyncerInputError(f"{audio} has no audio after {start_seconds} s; lower start_seconds")
        return (channels_to_audio(waveform, rate),)


class ReSyncerSaveVideo:
    DESCRIPTION = ("Encodes frames (and optional audio, kept at its own rate and channels) to an H.264/AAC .mp4 in the "
                   "output folder, or saves a connected VIDEO as it is. The file appears only when complete: an "
                   "interrupt or error leaves nothing behind.")
    CATEGORY = category("io")
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "fps": fps_input("Frame rate to write the frames at; use the source video's (unused for a VIDEO)."),
                "filename_prefix": ("STRING", {"default": "ReSyncer/lipsync", "tooltip": "Output name prefix; a "
                                               "counter and .mp4 are appended. May include subfolders of the output folder."}),
                "crf": ("INT", {"default": 18, "min": 0, "max": 51, "step": 1,
                                "tooltip": "H.264 quality: lower is better and larger (18 is visually lossless)."}),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "Frames to encode, in order."}),
                "audio": ("AUDIO", {"tooltip": "Soundtrack to mux in (mono or stereo, any AAC rate); left out, the "
                                               "video is silent."}),
                "video": ("VIDEO", {"tooltip": "A finished VIDEO (e.g. from the streaming lip-sync node) to save "
                                               "instead of frames; its own audio is kept."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix):
        return input_verdict(lambda: adapter.output_folder(filename_prefix))

    def save(self, fps=25.0, filename_prefix="ReSyncer/lipsync", crf=18, images=None, audio=None, video=None):
        from resyncer_core.errors import ResyncerInputError

        if video is not None:
            path, entry = self._save_video(video, filename_prefix)
        elif images is None or len(images) == 0:
            raise ResyncerInputError("Save Video got no frames; connect a node that outputs images or a VIDEO")
        else:
            path, entry = self._save_frames(images, fps, filename_prefix, crf, audio)
        LOG.info("ReSyncer: wrote %s", path)
        return {"ui": {"images": [entry], "animated": [True]}, "result": ()}

    @staticmethod
    def _save_frames(images, fps, filename_prefix, crf, audio):
        from resyncer_core.video import VideoWriter

        soundtrack = audio_parts(audio) if audio is not None else None
        path, entry = adapter.output_path(filename_prefix, ".mp4")
        height, width = int(images.shape[1]), int(images.shape[2])
        progress = adapter.Progress(len(images))
        with VideoWriter(path, fps, (height, width), audio=soundtrack, crf=crf, preset="medium") as writer:
            for start in range(0, len(images), _SAVE_CHUNK):
                adapter.check_interrupt()
                writer.write(image_to_uint8(images[start:start + _SAVE_CHUNK]))
                progress.update(min(_SAVE_CHUNK, len(images) - start))
        return path, entry

    @staticmethod
    def _save_video(video, filename_prefix):
        from resyncer_core.video.partial_file import PartialFile

        path, entry = adapter.output_path(filename_prefix, ".mp4")
        partial = PartialFile(path)
        try:
            source = adapter.video_file_path(video)
            if source is not None and source.suffix.lower() == ".mp4":
                shutil.copyfile(source, partial.temp_path)
            else:
                video.save_to(str(partial.temp_path))
            partial.commit()
        except BaseException:
            partial.discard()
            raise
        return path, entry


NODE_CLASSES = {
    "ReSyncerLoadVideo": (ReSyncerLoadVideo, "Load Video"),
    "ReSyncerLoadAudio": (ReSyncerLoadAudio, "Load Audio"),
    "ReSyncerSaveVideo": (ReSyncerSaveVideo, "Save Video"),
}

__all__ = ["CATEGORY", "NODE_CLASSES"]
