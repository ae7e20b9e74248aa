"""Wav2Vec2 features at the video frame rate, FaceFormer's way.

The frozen CNN feature extractor runs on the audio (one vector per `hop` = 320 samples, 50 Hz);
its output is linearly interpolated in time to one vector per video frame, and only then go the
feature projection and the transformer encoder, so the transformer works at the frame rate the
mesh decoder consumes. Interpolation is by timestamp: frame j is sampled at its centre,
(j + 0.5) / fps seconds, on the extractor's grid (step i centred on sample
i * hop + (receptive_field - 1) / 2), which serves any fps and puts windowed and one-pass
frames on the same time grid.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..errors import CheckpointError
from .encoder import AudioEncoder, EncodingWindow
from .timing import exact_fps
from .wav2vec2_folder import check_wav2vec2_folder, read_do_normalize

if TYPE_CHECKING:
    from transformers import Wav2Vec2Model

# Wav2Vec2FeatureExtractor's epsilon for zero-mean unit-variance normalisation.
_NORMALIZE_EPS = 1e-7


def _receptive_field(kernels, strides) -> int:
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def sample_linearly(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """features [B,L,C] read at fractional step positions [T] (clamped to the ends) -> [B,T,C]."""
    last = features.shape[1] - 1
    positions = positions.clamp(0, last)
    left = positions.floor().long().clamp(max=max(last - 1, 0))
    right = (left + 1).clamp(max=last)
    weight = (positions - left).to(features.dtype)[None, :, None]
    return features[:, left] * (1 - weight) + features[:, right] * weight


class Wav2Vec2AudioEncoder(AudioEncoder):
    """AudioEncoder over a transformers Wav2Vec2Model; feature_dim = hidden_size (768 for base)."""

    def __init__(self, model: Wav2Vec2Model, do_normalize: bool = True, window: EncodingWindow | None = None):
        config = model.config
        if getattr(config, "add_adapter", False):
            raise CheckpointError("This Wav2Vec2 model has an adapter that halves its frame rate; use one without.")
        super().__init__(config.hidden_size, window)
        self.model = model
        self.do_normalize = bool(do_normalize)
        self.hop_samples = math.prod(config.conv_stride)
        self.receptive_field = _receptive_field(config.conv_kernel, config.conv_stride)
        self.segment_alignment_samples = self.hop_samples
        model.freeze_feature_encoder()

    @classmethod
    def from_pretrained(cls, folder, device="cpu", window: EncodingWindow | None = None) -> Wav2Vec2AudioEncoder:
        """Load a local Hugging Face-format folder (safetensors only, never the network) onto
        `device`, in eval mode."""
        folder = check_wav2vec2_folder(folder)
        from transformers import Wav2Vec2Model  # heavy import kept out of package import

        try:
            model = Wav2Vec2Model.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        except Exception as error:  # transformers and safetensors raise many types; the user needs one line
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(
                f"Could not load Wav2Vec2 from {folder} ({reason}); re-save the model with save_pretrained."
            ) from error
        return cls(model, do_normalize=read_do_normalize(folder), window=window).to(device).eval()

    def prepare_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        # Over the whole clip, as the Hugging Face processor does, so windows share one scale.
        if not self.do_normalize:
            return waveform
        mean = waveform.mean(dim=-1, keepdim=True)
        variance = waveform.var(dim=-1, correction=0, keepdim=True)
        return (waveform - mean) / torch.sqrt(variance + _NORMALIZE_EPS)

    def encode_segment(
        self, segment: torch.Tensor, segment_start: int, frame_indices: torch.Tensor, fps: float
    ) -> torch.Tensor:
        segment = segment.to(self.model.dtype)
        if segment.shape[-1] < self.receptive_field:
            segment = torch.nn.functional.pad(segment, (0, self.receptive_field - segment.shape[-1]))
        extractor = self.model.feature_extractor
        extractor_trainable = any(parameter.requires_grad for parameter in extractor.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and extractor_trainable):
            conv_features = extractor(segment).transpose(1, 2)  # [B, L, conv_dim]

        # float64 on the CPU: sample indices of long clips outgrow float32, and MPS has no float64.
        samples_per_frame = self.sample_rate / float(exact_fps(fps))
        frame_centres = (frame_indices.cpu().double() + 0.5) * samples_per_frame - segment_start
        positions = (frame_centres - (self.receptive_field - 1) / 2) / self.hop_samples
        frame_features = sample_linearly(conv_features, positions.to(conv_features.device, torch.float32))

        projected = self.model.feature_projection(frame_features)
        # Recent transformers return (projected, normalised); early 4.x releases the tensor alone.
        hidden_states = projected[0] if isinstance(projected, tuple) else projected
        return self.model.encoder(hidden_states)[0]
