"""Core I/O nodes, so a workflow also runs headless where ComfyUI's own loaders are absent:
Load Video (frames + audio + fps), Load Audio, Save Video (H.264 + AAC mp4)."""

from __future__ import annotations

import logging

import numpy as np

from . import comfy_adapter as adapter
from .common import (
    CATEGORY,
    MAX_FRAMES,
    audio_to_mono,
    category,
    fps_input,
    image_to_uint8,
    input_verdict,
    mono_to_audio,
    uint8_to_image,
)

LOG = logging.getLogger("resyncer.nodes")
_SAVE_CHUNK = 32


class ReSyncerLoadVideo:
    DESCRIPTION = ("Decodes a video file into frames (IMAGE), its audio track (AUDIO, 16 kHz mono; silence when the "
                   "file has none), its frame rate and frame count.")
    CATEGORY = category("io")
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT", "INT")
    RETURN_NAMES = ("images", "audio", "fps", "frame_count")
    OUTPUT_TOOLTIPS = ("Decoded RGB frames.", "The audio track cut to the loaded frames.",
                       "The file's frame rate.", "How many frames were loaded.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video": ("STRING", {"default": "input.mp4", "tooltip": "Path of the video file; a relative path is "
                                     "looked up in ComfyUI's input folder (or the runner's), then the working folder."}),
                "start_frame": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                        "tooltip": "First frame to load (0 = the beginning)."}),
                "frame_limit": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                        "tooltip": "Most frames to load; 0 loads to the end. Every frame is held in "
                                                   "memory, so keep long videos short here."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, video):
        from resyncer_core.video import probe_video

        return input_verdict(lambda: probe_video(adapter.resolve_input_path(video)))

    @classmethod
    def IS_CHANGED(cls, video, start_frame=0, frame_limit=0):
        path = adapter.resolve_input_path(video) if str(video).strip() else None
        return str(adapter.file_key(path)) if path is not None else ""

    def load(self, video, start_frame=0, frame_limit=0):
        from resyncer_core.audio import SAMPLE_RATE, load_audio
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.video import iter_frames, probe_video

        path = adapter.resolve_input_path(video)
        info = probe_video(path)
        stop = start_frame + frame_limit if frame_limit else None
        expected = max(0, (min(stop, info.frame_count) if stop else info.frame_count) - start_frame)
        progress = adapter.Progress(max(expected, 1))
        chunks = []
        for chunk in iter_frames(path, start=start_frame, stop=stop):
            adapter.check_interrupt()
            chunks.append(chunk)
            progress.update(len(chunk))
        if not chunks:
            raise ResyncerInputError(f"video {path} has no frames from frame {start_frame}; lower start_frame")
        frames = np.concatenate(chunks)
        fps = info.fps
        first = round(start_frame / fps * SAMPLE_RATE)
        count = round(len(frames) / fps * SAMPLE_RATE)
        waveform = np.zeros(count, np.float32)
        if info.has_audio:
            track = load_audio(path)[first:first + count]
            waveform[:len(track)] = track
        else:
            LOG.info("ReSyncer: %s has no audio track; the audio output is silence", path.name)
        return (uint8_to_image(frames), mono_to_audio(waveform, SAMPLE_RATE), float(fps), len(frames))


class ReSyncerLoadAudio:
    DESCRIPTION = "Loads speech from an audio file (or a video's audio track) as AUDIO at 16 kHz mono."
    CATEGORY = category("io")
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_file": ("STRING", {"default": "speech.wav", "tooltip": "Path of a wav/mp3/flac/m4a file or a video "
                                          "with sound; relative paths are looked up in the input folder."}),
                "start_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 86400.0, "step": 0.01,
                                            "tooltip": "Skip this many seconds from the start."}),
                "duration_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 86400.0, "step": 0.01,
                                               "tooltip": "Keep this many seconds; 0 keeps the rest of the file."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio_file):
        from resyncer_core.audio import load_audio

        return input_verdict(lambda: load_audio(adapter.resolve_input_path(audio_file)))  # NaN/inf refused too

    @classmethod
    def IS_CHANGED(cls, audio_file, start_seconds=0.0, duration_seconds=0.0):
        return str(adapter.file_key(adapter.resolve_input_path(audio_file))) if str(audio_file).strip() else ""

    def load(self, audio_file, start_seconds=0.0, duration_seconds=0.0):
        from resyncer_core.audio import SAMPLE_RATE, load_audio
        from resyncer_core.errors import ResyncerInputError

        waveform = load_audio(adapter.resolve_input_path(audio_file))
        first = round(start_seconds * SAMPLE_RATE)
        last = first + round(duration_seconds * SAMPLE_RATE) if duration_seconds > 0 else None
        waveform = waveform[first:last]
        if waveform.size == 0:
            raise ResyncerInputError(f"{audio_file} has no audio after {start_seconds} s; lower start_seconds")
        return (mono_to_audio(waveform, SAMPLE_RATE),)


class ReSyncerSaveVideo:
    DESCRIPTION = ("Encodes frames (and optional audio) to an H.264/AAC .mp4 in the output folder. The file appears "
                   "only when complete: an interrupt or error leaves nothing behind.")
    CATEGORY = category("io")
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames to encode, in order."}),
                "fps": fps_input("Frame rate to write the video at; use the source video's."),
                "filename_prefix": ("STRING", {"default": "ReSyncer/lipsync", "tooltip": "Output name prefix; a "
                                               "counter and .mp4 are appended. May include subfolders of the output folder."}),
                "crf": ("INT", {"default": 18, "min": 0, "max": 51, "step": 1,
                                "tooltip": "H.264 quality: lower is better and larger (18 is visually lossless)."}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "Soundtrack to mux in (mono); left out, the video is silent."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix):
        return input_verdict(lambda: adapter.output_folder(filename_prefix))

    def save(self, images, fps, filename_prefix="ReSyncer/lipsync", crf=18, audio=None):
        from resyncer_core.audio import SAMPLE_RATE
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.video import VideoWriter

        if images is None or len(images) == 0:
            raise ResyncerInputError("Save Video got no frames; connect a node that outputs images")
        soundtrack = (audio_to_mono(audio), SAMPLE_RATE) if audio is not None else None
        path, entry = adapter.output_path(filename_prefix, ".mp4")
        height, width = int(images.shape[1]), int(images.shape[2])
        progress = adapter.Progress(len(images))
        with VideoWriter(path, fps, (height, width), audio=soundtrack, crf=crf, preset="medium") as writer:
            for start in range(0, len(images), _SAVE_CHUNK):
                adapter.check_interrupt()
                writer.write(image_to_uint8(images[start:start + _SAVE_CHUNK]))
                progress.update(min(_SAVE_CHUNK, len(images) - start))
        LOG.info("ReSyncer: wrote %s", path)
        return {"ui": {"images": [entry], "animated": [True]}, "result": ()}


NODE_CLASSES = {
    "ReSyncerLoadVideo": (ReSyncerLoadVideo, "Load Video"),
    "ReSyncerLoadAudio": (ReSyncerLoadAudio, "Load Audio"),
    "ReSyncerSaveVideo": (ReSyncerSaveVideo, "Save Video"),
}

__all__ = ["CATEGORY", "NODE_CLASSES"]
