"""Fit Length: frames and audio made the same length, the CLI's way (`--long-audio pingpong|trim`,
`--short-audio trim|pad`, resyncer_core.pipeline.chunking), before the frame-by-frame nodes, so
a 2 s video with 4 s of speech yields 4 s of lip-sync (or 2 s), never a count mismatch."""

from __future__ import annotations

from .common import MAX_FRAMES, audio_parts, category, channels_to_audio, fps_input
from .video_io import check_memory


class ReSyncerFitLength:
    DESCRIPTION = ("Makes the frames as long as the driving audio (or a driver's frame count): longer audio plays "
                   "the video forward and back (pingpong) or is cut (trim); shorter audio cuts the video (trim) or is "
                   "padded with silence (pad). A photo is held for the whole length. Connect its outputs to "
                   "everything downstream.")
    CATEGORY = category("io")
    # fps last: links saved before it existed keep their output slots.
    RETURN_TYPES = ("IMAGE", "AUDIO", "INT", "FLOAT")
    RETURN_NAMES = ("images", "audio", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("The frames, repeated or cut to the driving length.",
                       "The audio cut or silence-padded to the frames (at its own rate and channels).",
                       "How many frames there now are.",
                       "The frame rate, passed on: for a photo (held for the speech's length) it is set here.")
    FUNCTION = "fit"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The target video's frames, or a photo (core Load Image) to hold for "
                                     "the speech's length."}),
                "fps": fps_input("Frame rate of the frames; for a photo, the frame rate of the video it becomes."),
                "long_audio": (["pingpong", "trim"], {"default": "pingpong", "tooltip": "Driving longer than the "
                                                      "video: pingpong plays it forward and back; trim stops with it."}),
                "short_audio": (["trim", "pad"], {"default": "trim", "tooltip": "Driving shorter than the video: trim "
                                                  "stops with the driving; pad plays the whole video, audio padded."}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "The driving speech (or the driver video's audio)."}),
                "driving_frames": ("INT", {"default": 0, "min": 0, "max": MAX_FRAMES, "step": 1,
                                           "tooltip": "Driving length in frames (e.g. a driver video's frame count); "
                                                      "0 = as long as the audio."}),
            },
        }

    def fit(self, images, fps, long_audio="pingpong", short_audio="trim", audio=None, driving_frames=0):
        import torch

        from resyncer_core.audio import frame_count_for
        from resyncer_core.errors import ResyncerInputError
        from resyncer_core.pipeline.chunking import plan_frames

        waveform, rate = audio_parts(audio) if audio is not None else (None, 0)
        driving = int(driving_frames) or (frame_count_for(waveform.shape[1], fps, rate) if waveform is not None else 0)
        if driving == 0:
            raise ResyncerInputError("Fit Length needs the driving length; connect audio or set driving_frames")
        plan = plan_frames(len(images), driving, long_audio, short_audio)
        indices = plan.source_indices
        if plan.frame_count == len(images):
            fitted = images
        elif plan.frame_count < len(images):
            fitted = images[:plan.frame_count]
        else:
            check_memory(plan.frame_count, int(images.shape[1]), int(images.shape[2]), "Fit Length")
            fitted = images[torch.from_numpy(indices)]
        fitted_audio = None
        if waveform is not None:
            fitted_audio = channels_to_audio(plan.fit_audio(waveform, fps, rate), rate)
        return (fitted, fitted_audio, plan.frame_count, float(fps))


NODE_CLASSES = {
    "ReSyncerFitLength": (ReSyncerFitLength, "Fit Length"),
}
