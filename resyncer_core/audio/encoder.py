"""The audio-encoder interface: 16 kHz mono waveform in, exactly one vector per video frame out.

Subclasses implement `encode_segment` for one stretch of audio; the base class owns what every
encoder shares: input checks, fitting the waveform to the frames it must cover, and encoding
long clips in overlapping windows so memory stays bounded by the window, not the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ResyncerInputError
from .timing import SAMPLE_RATE, exact_fps, frame_count_for, samples_spanned_by


@dataclass(frozen=True)
class EncodingWindow:
    """How long clips are split: each window keeps `window_seconds` of frames and sees
    `context_seconds` of extra audio on each side, so frames next to a seam still get
    (nearly) the context they would have in one pass."""

    window_seconds: float = 20.0
    context_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.window_seconds > 0 or not self.context_seconds >= 0:
            raise ResyncerInputError(
                f"EncodingWindow needs window_seconds > 0 and context_seconds >= 0, got "
                f"{self.window_seconds} and {self.context_seconds}."
            )


@dataclass(frozen=True)
class WindowSpan:
    """One window: frames [frames_start, frames_end) are encoded from samples
    [sample_start, sample_end); frames [core_start, core_end) of them are kept."""

    core_start: int
    core_end: int
    frames_start: int
    frames_end: int
    sample_start: int
    sample_end: int


def plan_windows(frame_count: int, fps: float, window: EncodingWindow, alignment: int = 1) -> list[WindowSpan]:
    """Split frames [0, frame_count) into windows; segment starts are rounded down to a
    multiple of `alignment` samples so a windowed encoder sees the same hop grid as one pass."""
    core_length = max(1, round(window.window_seconds * float(fps)))
    context = math.ceil(window.context_seconds * float(fps))
    spans = []
    for core_start in range(0, frame_count, core_length):
        core_end = min(frame_count, core_start + core_length)
        frames_start = max(0, core_start - context)
        frames_end = min(frame_count, core_end + context)
        spans.append(
            WindowSpan(
                core_start=core_start,
                core_end=core_end,
                frames_start=frames_start,
                frames_end=frames_end,
                sample_start=samples_spanned_by(frames_start, fps) // alignment * alignment,
                sample_end=samples_spanned_by(frames_end, fps),
            )
        )
    return spans


def crossfade_weights(span: WindowSpan, previous: WindowSpan | None, following: WindowSpan | None) -> torch.Tensor:
    """Weights [frames_end - frames_start] of one window's frames when neighbouring windows are
    blended: linear ramps across the frames it shares with each neighbour (the neighbour's ramp
    is the mirror image, so they sum to 1 there) and 1 elsewhere."""
    frames = torch.arange(span.frames_start, span.frames_end, dtype=torch.float64) + 0.5
    weights = torch.ones_like(frames)
    if previous is not None and previous.frames_end > span.frames_start:
        rising = (frames - span.frames_start) / (previous.frames_end - span.frames_start)
        weights = torch.minimum(weights, rising)
    if following is not None and following.frames_start < span.frames_end:
        falling = (span.frames_end - frames) / (span.frames_end - following.frames_start)
        weights = torch.minimum(weights, falling)
    return weights.to(torch.float32)


def fit_to_length(waveform: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Crop [B,S] to num_samples, or pad the end with silence."""
    missing = num_samples - waveform.shape[-1]
    if missing <= 0:
        return waveform[:, :num_samples]
    return torch.nn.functional.pad(waveform, (0, missing))


def _as_mono_tensor(waveform) -> torch.Tensor:
    tensor = waveform if torch.is_tensor(waveform) else torch.as_tensor(np.asarray(waveform))
    if tensor.dim() == 2 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ResyncerInputError(
            f"encode expects a non-empty mono waveform [S] at 16 kHz, got shape {tuple(tensor.shape)}; "
            "load it with resyncer_core.audio.load_audio."
        )
    return tensor.to(torch.float32)


def _check_forward_inputs(waveform: torch.Tensor, frame_count: int) -> None:
    if not torch.is_tensor(waveform) or waveform.dim() != 2 or waveform.shape[-1] == 0:
        shape = tuple(waveform.shape) if torch.is_tensor(waveform) else type(waveform).__name__
        raise ResyncerInputError(
            f"The audio encoder expects a waveform tensor [B,S] of 16 kHz samples, got {shape}; "
            "batch mono clips of equal length."
        )
    if isinstance(frame_count, bool) or not isinstance(frame_count, (int, np.integer)) or frame_count < 1:
        raise ResyncerInputError(f"frame_count must be a positive integer, got {frame_count!r}.")


class AudioEncoder(torch.nn.Module):
    """Base of all audio encoders.

    forward(waveform [B,S] float32 16 kHz, frame_count, fps) -> [B, frame_count, feature_dim],
    on the encoder's device (the waveform is moved there). The features cover frames
    [0, frame_count) as laid out in `timing`: audio past the last frame is ignored and audio
    missing before it is treated as silence.
    """

    sample_rate: int = SAMPLE_RATE
    # Subclasses with a fixed hop set this to it, so windows start on the one-pass hop grid.
    segment_alignment_samples: int = 1
    # Encoders whose features depend on where in the window a frame sits (Whisper's absolute
    # positions) blend neighbouring windows across their shared context instead of cutting.
    crossfade_windows: bool = False

    def __init__(self, feature_dim: int, window: EncodingWindow | None = None) -> None:
        super().__init__()
        self.feature_dim = int(feature_dim)
        self.window = window or EncodingWindow()

    def encode_segment(
        self, segment: torch.Tensor, segment_start: int, frame_indices: torch.Tensor, fps: float
    ) -> torch.Tensor:
        """Features [B, len(frame_indices), feature_dim] for the given absolute frame indices,
        from `segment` [B,S'] whose first sample is sample `segment_start` of the clip."""
        raise NotImplementedError

    def prepare_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whole-clip preprocessing applied once before windowing (e.g. normalisation)."""
        return waveform

    def forward(self, waveform: torch.Tensor, frame_count: int, fps: float) -> torch.Tensor:
        _check_forward_inputs(waveform, frame_count)
        exact_fps(fps)  # reject a bad fps before any work
        frame_count = int(frame_count)
        waveform = self.prepare_waveform(waveform.to(self.device, torch.float32))
        waveform = fit_to_length(waveform, samples_spanned_by(frame_count, fps))
        spans = plan_windows(frame_count, fps, self.window, self.segment_alignment_samples)
        pieces, blended = [], None
        for index, span in enumerate(spans):
            frame_indices = torch.arange(span.frames_start, span.frames_end, device=waveform.device)
            segment = waveform[:, span.sample_start : span.sample_end]
            features = self.encode_segment(segment, span.sample_start, frame_indices, fps)
            if not self.crossfade_windows:
                pieces.append(features[:, span.core_start - span.frames_start : span.core_end - span.frames_start])
                continue
            neighbours = (spans[index - 1] if index else None, spans[index + 1] if index + 1 < len(spans) else None)
            weights = crossfade_weights(span, *neighbours).to(features.device, features.dtype)
            if blended is None:
                blended = features.new_zeros(features.shape[0], frame_count, features.shape[2])
                weight_sum = features.new_zeros(frame_count)
            blended = blended.index_add(1, frame_indices, features * weights[None, :, None])
            # Two overlapping windows' weights sum to 1; dividing also covers windows so short
            # that three overlap.
            weight_sum = weight_sum.index_add(0, frame_indices, weights)
        return blended / weight_sum[None, :, None] if self.crossfade_windows else torch.cat(pieces, dim=1)

    @property
    def device(self) -> torch.device:
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @torch.no_grad()
    def encode(self, waveform, fps: float, frame_count: int | None = None) -> torch.Tensor:
        """Features [frame_count, feature_dim] of one mono 16 kHz clip (numpy or tensor, [S]),
        on the encoder's device, without gradients. frame_count defaults to frame_count_for.
        The caller chooses train/eval mode; loaders return encoders in eval mode."""
        tensor = _as_mono_tensor(waveform)
        if frame_count is None:
            frame_count = frame_count_for(tensor.numel(), fps)
        return self(tensor[None].to(self.device), frame_count, fps)[0]
