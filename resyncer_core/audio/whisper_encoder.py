"""Whisper encoder features at the video frame rate (MuseTalk / LatentSync use the same encoder).

Whisper only ever saw 30 s windows (shorter audio padded with silence), so every segment is
padded to 30 s before the log-mel; the encoder gives one vector per 320 samples (50 Hz), step i
centred on sample 320 * i of the segment. Frame j is read at its centre, (j + 0.5) / fps
seconds, by linear interpolation between steps. Longer clips go through the base class's
overlapping windows: 20 s per window with 4.5 s of context either side, so every window,
context included, fits one 30 s Whisper input.

Whisper's features carry where in the window a moment falls (its absolute positions): the same
speech 4.5 s and 15 s into a window gives features of cosine similarity ~0.4 on LibriVox.
Subtracting what a silent window gives at each position (computed once per encoder) takes
most of that out (~0.9) without touching what varies with the audio, so a model trained on
short utterances also holds for frames deep in a window. Neighbouring windows are still
cross-faded across the 9 s they share rather than cut at a seam. subtract_silence=False gives
Whisper's raw features (as MuseTalk uses them).
"""

from __future__ import annotations

import os

import torch

from ..errors import ResyncerInputError
from ..models.checkpoint import load_checkpoint
from ..models.whisper_encoder import WhisperAudioTransformer
from ..weights import WHISPER_ENCODER_PATH
from .encoder import AudioEncoder, EncodingWindow, fit_to_length
from .timing import exact_fps
from .wav2vec2_encoder import sample_linearly
from .whisper_features import (WHISPER_HOP_SAMPLES, WHISPER_MEL, WHISPER_WINDOW_SAMPLES, whisper_filterbank,
                               whisper_log_mel)

WHISPER_WINDOW = EncodingWindow(window_seconds=20.0, context_seconds=4.5)
# The rounding of window edges to whole frames and to the step grid must fit in what is left.
_WINDOW_MARGIN_SECONDS = 1.0


class WhisperAudioEncoder(AudioEncoder):
    """AudioEncoder over a WhisperAudioTransformer; feature_dim = d_model (384 for tiny)."""

    crossfade_windows = True

    def __init__(self, model: WhisperAudioTransformer, window: EncodingWindow | None = None,
                 subtract_silence: bool = True) -> None:
        window = window or WHISPER_WINDOW
        if window.window_seconds + 2 * window.context_seconds > WHISPER_WINDOW_SAMPLES / self.sample_rate - _WINDOW_MARGIN_SECONDS:
            raise ResyncerInputError(
                f"a Whisper window of {window.window_seconds} s with {window.context_seconds} s context each side does "
                f"not fit Whisper's 30 s input; keep window + 2 * context <= {30 - _WINDOW_MARGIN_SECONDS:g} s.")
        super().__init__(model.config.d_model, window)
        self.model = model
        self.step_samples = WHISPER_HOP_SAMPLES * model.conv2.stride[0]
        self.segment_alignment_samples = self.step_samples
        self.register_buffer("filterbank", whisper_filterbank(), persistent=False)
        self.register_buffer("stft_window", torch.hann_window(WHISPER_MEL.n_fft), persistent=False)
        self.subtract_silence = bool(subtract_silence)
        # [max_positions, d_model] features of an all-silent window, filled on first use.
        self.register_buffer("silence_steps", torch.empty(0), persistent=False)

    @classmethod
    def from_file(cls, path: str | os.PathLike = WHISPER_ENCODER_PATH, device="cpu",
                  window: EncodingWindow | None = None, subtract_silence: bool = True) -> WhisperAudioEncoder:
        """A converted encoder (tools/convert_whisper_ctranslate2.py; default the shipped
        tiny.en) on `device`, in eval mode, as float32."""
        model, _ = load_checkpoint(path, kind="whisper_encoder")  # float16 values into a float32 model
        return cls(model, window=window, subtract_silence=subtract_silence).to(device).eval()

    def window_steps(self, padded: torch.Tensor) -> torch.Tensor:
        """Encoder steps [B, max_positions, d_model] of 30 s windows [B, 480000]."""
        log_mel = whisper_log_mel(padded.to(self.filterbank.dtype), self.filterbank, self.stft_window)
        return self.model(log_mel.to(self.model.conv1.weight.dtype))

    def positional_baseline(self) -> torch.Tensor:
        """What a silent window gives at each step [max_positions, d_model] (a constant)."""
        if self.silence_steps.numel() == 0:
            with torch.no_grad():
                self.silence_steps = self.window_steps(self.stft_window.new_zeros(1, WHISPER_WINDOW_SAMPLES))[0]
        return self.silence_steps

    def encode_segment(
        self, segment: torch.Tensor, segment_start: int, frame_indices: torch.Tensor, fps: float
    ) -> torch.Tensor:
        if segment.shape[-1] > WHISPER_WINDOW_SAMPLES:
            raise ResyncerInputError(
                f"fps {float(fps):g} is too low for Whisper's 30 s windows; resample the video to at least 2 fps.")
        steps = self.window_steps(fit_to_length(segment, WHISPER_WINDOW_SAMPLES))
        if self.subtract_silence:
            steps = steps - self.positional_baseline()

        # float64 on the CPU: sample indices of long clips outgrow float32, and MPS has no float64.
        samples_per_frame = self.sample_rate / float(exact_fps(fps))
        frame_centres = (frame_indices.cpu().double() + 0.5) * samples_per_frame - segment_start
        positions = (frame_centres / self.step_samples).to(steps.device, torch.float32)
        return sample_linearly(steps, positions)
