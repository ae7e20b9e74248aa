"""Style-SyncFormer (ReSyncer §3.1): audio features plus a speaking-style reference give
per-frame mesh displacements ΔM = M − M̄ in canonical space.

One Transformer encoder block turns the T_S reference ΔM frames into a style vector f_S that
is added to every mesh token. One decoder block predicts ΔM_t from the right-shifted ΔM
tokens (self-attention under FaceFormer's ALiBi-biased causal mask, periodic positional
encoding) and the audio tokens (cross-attention under the alignment mask: mesh token t sees
audio frame t only). Training is teacher-forced (`forward`); inference is autoregressive in
overlapping windows that are cross-faded (`generate`).

Tensors: audio features [B, T, audio_dim] at one vector per video frame; mesh sequences
[B, T, V, 3] of displacements from the person's template.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ResyncerInputError

STYLE_MODES = ("encoder", "audio_aware")


@dataclass
class SyncFormerConfig:
    vertex_count: int = 468        # MediaPipe face mesh
    audio_dim: int = 768           # Wav2Vec2-base hidden size; 1280 for the mel front-end
    d_model: int = 128             # (paper) token width
    n_heads: int = 4
    ff_dim: int = 256              # 2 × d_model, FaceFormer's feed-forward ratio
    style_frames: int = 90         # (paper) T_S, the reference length the pipeline cuts and training uses
    period: int = 25               # (paper) fps: period of the positional encoding and of the ALiBi steps
    max_seq_len: int = 600         # longest teacher-forced sequence, style reference or inference window
    dropout: float = 0.1
    train_window: int = 100        # (paper) teacher-forced tokens per training sample
    infer_window: int = 100        # (paper) frames per autoregressive inference window
    infer_overlap: int = 20        # (paper) frames shared by consecutive windows, cross-faded
    style_mode: str = "encoder"    # "encoder" (paper) or "audio_aware" (audio-aware style reference)

    def __post_init__(self) -> None:
        for name in ("vertex_count", "audio_dim", "d_model", "n_heads", "ff_dim", "style_frames",
                     "period", "max_seq_len", "train_window", "infer_window"):
            if int(getattr(self, name)) < 1:
                raise ResyncerInputError(f"SyncFormerConfig.{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise ResyncerInputError(
                f"SyncFormerConfig.d_model ({self.d_model}) must be even and divisible by n_heads ({self.n_heads}).")
        if not 0.0 <= self.dropout < 1.0:
            raise ResyncerInputError(f"SyncFormerConfig.dropout must be in [0, 1), got {self.dropout!r}.")
        if self.style_mode not in STYLE_MODES:
            raise ResyncerInputError(f"SyncFormerConfig.style_mode must be one of {STYLE_MODES}, got {self.style_mode!r}.")
        check_window(self.infer_window, self.infer_overlap, self.max_seq_len)
        if max(self.train_window, self.style_frames) > self.max_seq_len:
            raise ResyncerInputError(
                f"SyncFormerConfig.train_window and style_frames must not exceed max_seq_len ({self.max_seq_len}).")


def check_window(window: int, overlap: int, max_seq_len: int) -> None:
    """Refuses inference windows the model cannot run or blend."""
    if not 0 <= overlap < window <= max_seq_len:
        raise ResyncerInputError(
            f"inference window {window} and overlap {overlap} must satisfy "
            f"0 <= overlap < window <= max_seq_len ({max_seq_len}).")


def periodic_positional_encoding(length: int, d_model: int, period: int,
                                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """FaceFormer's periodic positional encoding, [length, d_model]: the sinusoidal code of
    the phase t mod period. Frames one period apart share a code, so the model generalises to
    sequences longer than the ones it was trained on."""
    phase = torch.arange(period, device=device, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    one_period = torch.stack([torch.sin(phase * frequencies), torch.cos(phase * frequencies)], dim=-1).flatten(1)
    periods = -(-length // period)
    return one_period.repeat(periods, 1)[:length].to(dtype)


def alibi_slopes(n_heads: int) -> list[float]:
    """Per-head ALiBi slopes as FaceFormer uses them: 2^(-8/n), 2^(-16/n), ... for a power of
    two n; otherwise the slopes of the next lower power of two followed by every other slope
    of the next higher one."""
    def power_of_two_slopes(n: int) -> list[float]:
        base = 2.0 ** (-8.0 / n)
        return [base ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_two_slopes(n_heads)
    lower = 2 ** math.floor(math.log2(n_heads))
    return power_of_two_slopes(lower) + alibi_slopes(2 * lower)[0::2][: n_heads - lower]


def alibi_biased_causal_mask(length: int, n_heads: int, period: int, batch_size: int,
                             device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Additive self-attention mask [batch_size * n_heads, length, length] (FaceFormer's
    biased causal mask). Query i, key j <= i gets -slope_h * floor((i - j) / period): the
    penalty grows once per period, so a head prefers the most recent period of frames
    without fixating on the last one. Keys after the query get -inf (causality).
    Row b * n_heads + h belongs to sample b, head h: the layout nn.MultiheadAttention
    reshapes a 3-D mask into."""
    query = torch.arange(length, device=device)[:, None]
    key = torch.arange(length, device=device)[None, :]
    distance = query - key
    periods_back = torch.div(distance.clamp(min=0), period, rounding_mode="floor").to(dtype)
    slopes = torch.tensor(alibi_slopes(n_heads), device=device, dtype=dtype)
    mask = (-slopes[:, None, None] * periods_back).masked_fill(distance < 0, float("-inf"))
    return mask.repeat(batch_size, 1, 1)


def alignment_mask(length: int, device: torch.device | None = None) -> Tensor:
    """Cross-attention mask [length, length], True where attention is blocked: mesh token t
    attends to audio frame t only (audio is resampled to one vector per video frame). It is
    the same for every sample and head, and nn.MultiheadAttention broadcasts a 2-D mask over
    both, so it is not repeated per sample × head like the self-attention mask."""
    return ~torch.eye(length, dtype=torch.bool, device=device)


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """First frame of each inference window: windows advance by window - overlap frames, and
    a next window starts only while the current one ends before the sequence does."""
    starts = [0]
    while starts[-1] + window < length:
        starts.append(starts[-1] + window - overlap)
    return starts


def crossfade_weights(overlap: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Weight of the later window on each of `overlap` shared frames: the linear ramp
    1/(n+1), ..., n/(n+1), strictly between 0 and 1, so the blend moves in equal steps from
    the earlier window to the later one and neither end of the overlap jumps."""
    return torch.arange(1, overlap + 1, device=device, dtype=dtype) / (overlap + 1)


def blend_windows(window_outputs: list[Tensor], starts: list[int], length: int) -> Tensor:
    """Joins per-window sequences [B, n_k, ...] that begin at frame `starts[k]` into one
    [B, length, ...], cross-fading every overlap linearly from the earlier window to the
    later one. Between two frames of an overlap the result moves by at most the larger step
    of the two windows plus 1/(overlap+1) of their disagreement there."""
    first = window_outputs[0]
    blended = first.new_zeros(first.shape[0], length, *first.shape[2:])
    covered = 0  # frames [0, covered) are final unless a later window overlaps them
    for start, output in zip(starts, window_outputs):
        overlap = covered - start
        if overlap < 0:
            raise ResyncerInputError(f"window starting at frame {start} leaves frames {covered}..{start - 1} uncovered.")
        if overlap:
            weight = crossfade_weights(overlap, device=output.device, dtype=output.dtype)
            weight = weight.view(1, overlap, *[1] * (output.dim() - 2))
            blended[:, start:covered] = (1 - weight) * blended[:, start:covered] + weight * output[:, :overlap]
        end = start + output.shape[1]
        blended[:, covered:end] = output[:, overlap:]
        covered = end
    if covered != length:
        raise ResyncerInputError(f"windows cover {covered} frames, expected {length}.")
    return blended


def _batch_label(batch: int | None) -> str:
    return "B" if batch is None else str(batch)


class StyleSyncFormer(nn.Module):
    def __init__(self, config: SyncFormerConfig):
        super().__init__()
        self.config = config
        mesh_dim = config.vertex_count * 3
        self.audio_projection = nn.Linear(config.audio_dim, config.d_model)
        # One embedding of a ΔM frame serves the decoder input and the style reference alike.
        self.vertex_embedding = nn.Linear(mesh_dim, config.d_model)
        # First decoder input. Training windows start mid-speech, where the previous frame is
        # unknown rather than the template, so "no previous frame" gets its own token instead
        # of pretending ΔM_{-1} = 0.
        self.start_embedding = nn.Parameter(torch.zeros(config.d_model))
        self.token_dropout = nn.Dropout(config.dropout)
        self.style_encoder = nn.TransformerEncoderLayer(
            config.d_model, config.n_heads, config.ff_dim, config.dropout, batch_first=True)
        # Audio-aware style reference: current audio tokens query the reference audio (keys)
        # to aggregate the encoded reference ΔM frames (values), one style vector per frame.
        self.style_attention = (
            nn.MultiheadAttention(config.d_model, config.n_heads, dropout=config.dropout, batch_first=True)
            if config.style_mode == "audio_aware" else None)
        self.decoder = nn.TransformerDecoderLayer(
            config.d_model, config.n_heads, config.ff_dim, config.dropout, batch_first=True)
        self.output_projection = nn.Linear(config.d_model, mesh_dim)
        # FaceFormer's zero init: training starts from ΔM = 0, the template itself.
        nn.init.zeros_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)

    @property
    def uses_style_audio(self) -> bool:
        return self.config.style_mode == "audio_aware"

    def forward(self, audio_features: Tensor, delta_mesh: Tensor, style_reference: Tensor,
                style_audio: Tensor | None = None) -> Tensor:
        """Teacher-forced prediction of ΔM [B, T, V, 3] from the right-shifted targets
        `delta_mesh` [B, T, V, 3]. Audio longer than T is cut to its first T frames."""
        batch, length = self._check_mesh_sequence("delta_mesh", delta_mesh)
        audio_features = self._check_audio(audio_features, batch, length)
        self._check_mesh_sequence("style_reference", style_reference, batch)
        style = self.encode_style(style_reference, style_audio, audio_features)
        return self._decode(self.audio_projection(audio_features), delta_mesh[:, :-1], style)

    @torch.no_grad()
    def generate(self, audio_features: Tensor, style_reference: Tensor, style_audio: Tensor | None = None,
                 window: int | None = None, overlap: int | None = None) -> Tensor:
        """Autoregressive ΔM [B, T, V, 3] for audio_features [B, T, audio_dim], in windows of
        `window` frames (default config.infer_window) that share `overlap` frames (default
        config.infer_overlap), cross-faded. Each window starts from the start token. Call
        model.eval() first; no gradients are kept.

        Cost: every step re-runs the decoder block over the window's whole prefix (no key/value
        cache in nn.TransformerDecoderLayer), i.e. n(n+1)/2 token passes for an n-frame window
        (5050 for n = 100, about 50 teacher-forced passes), cheap at d_model 128."""
        window = self.config.infer_window if window is None else window
        overlap = self.config.infer_overlap if overlap is None else overlap
        check_window(window, overlap, self.config.max_seq_len)
        audio_features = self._check_audio(audio_features)
        batch, length = audio_features.shape[:2]
        self._check_mesh_sequence("style_reference", style_reference, batch)
        style = self.encode_style(style_reference, style_audio, audio_features)
        audio_tokens = self.audio_projection(audio_features)
        starts = window_starts(length, window, overlap)
        outputs = [self._generate_window(audio_tokens[:, start:start + window], self._style_for_frames(style, start, window))
                   for start in starts]
        return blend_windows(outputs, starts, length)

    def encode_style(self, style_reference: Tensor, style_audio: Tensor | None = None,
                     audio_features: Tensor | None = None) -> Tensor:
        """Speaking style from ΔM_ref [B, T_S, V, 3]; pass another person's ΔM_ref for style
        transfer. Encoder mode: f_S [B, d_model], the mean of the encoded reference frames
        (style_audio and audio_features are not needed and ignored). Audio-aware mode: one
        style vector per frame of audio_features [B, T, audio_dim], [B, T, d_model], attended
        from the reference frames whose audio style_audio [B, T_S, audio_dim] is closest."""
        batch, reference_length = self._check_mesh_sequence("style_reference", style_reference)
        embedded = self.vertex_embedding(style_reference.flatten(2))
        embedded = embedded + periodic_positional_encoding(
            reference_length, self.config.d_model, self.config.period, embedded.device, embedded.dtype)
        encoded_frames = self.style_encoder(self.token_dropout(embedded))
        if not self.uses_style_audio:
            # Mean pooling: every reference frame counts the same, no extra parameters, and
            # any reference length works (the paper compares T_S = 50, 90, 200).
            return encoded_frames.mean(dim=1)
        style_audio = self._check_style_audio(style_audio, batch, reference_length)
        audio_features = self._check_audio(audio_features, batch)
        # Queries and keys share the audio projection, so "similar sound" is measured in one space.
        # Neither gets a positional code: the match is by content, and query t depends on audio
        # frame t alone, which keeps the whole model causal.
        style, _ = self.style_attention(self.audio_projection(audio_features), self.audio_projection(style_audio),
                                        encoded_frames, need_weights=False)
        return style

    def _decode(self, audio_tokens: Tensor, previous_delta: Tensor, style: Tensor) -> Tensor:
        """The one decoder pass shared by teacher forcing and autoregression: audio tokens
        [B, T, d_model], the T-1 previous ΔM frames [B, T-1, V, 3] and the style give ΔM [B, T, V, 3]."""
        batch, length = audio_tokens.shape[:2]
        config = self.config
        start = self.start_embedding.to(audio_tokens.dtype).expand(batch, 1, -1)
        tokens = torch.cat([start, self.vertex_embedding(previous_delta.flatten(2))], dim=1)
        tokens = tokens + periodic_positional_encoding(length, config.d_model, config.period, tokens.device, tokens.dtype)
        tokens = self.token_dropout(tokens + self._style_for_frames(style, 0, length))
        hidden = self.decoder(
            tokens, audio_tokens,
            tgt_mask=alibi_biased_causal_mask(length, config.n_heads, config.period, batch, tokens.device, tokens.dtype),
            memory_mask=alignment_mask(length, tokens.device))
        return self.output_projection(hidden).view(batch, length, config.vertex_count, 3)

    def _generate_window(self, audio_tokens: Tensor, style: Tensor) -> Tensor:
        batch, length = audio_tokens.shape[:2]
        predicted = audio_tokens.new_zeros(batch, 0, self.config.vertex_count, 3)
        for step in range(1, length + 1):
            latest = self._decode(audio_tokens[:, :step], predicted, self._style_for_frames(style, 0, step))[:, -1:]
            predicted = torch.cat([predicted, latest], dim=1)
        return predicted

    @staticmethod
    def _style_for_frames(style: Tensor, start: int, length: int) -> Tensor:
        """The style to add to `length` mesh tokens from frame `start` on: f_S broadcast over
        time, or the matching slice of a per-frame (audio-aware) style."""
        return style[:, None] if style.dim() == 2 else style[:, start:start + length]

    def _check_mesh_sequence(self, name: str, tensor: Tensor, batch: int | None = None) -> tuple[int, int]:
        vertex_count, max_length = self.config.vertex_count, self.config.max_seq_len
        if (tensor.dim() != 4 or tuple(tensor.shape[2:]) != (vertex_count, 3) or not 1 <= tensor.shape[1] <= max_length
                or batch not in (None, tensor.shape[0])):
            raise ResyncerInputError(
                f"{name} must have shape [{_batch_label(batch)}, T, {vertex_count}, 3] with 1 <= T <= {max_length}, "
                f"got {list(tensor.shape)}.")
        return tensor.shape[0], tensor.shape[1]

    def _check_audio(self, audio_features: Tensor | None, batch: int | None = None, length: int | None = None) -> Tensor:
        """Checks audio_features [B, T, audio_dim] (B = batch and T >= length where given) and
        returns its first `length` frames, or all of them without a length."""
        audio_dim, min_length = self.config.audio_dim, length or 1
        if (audio_features is None or audio_features.dim() != 3 or audio_features.shape[2] != audio_dim
                or audio_features.shape[1] < min_length or batch not in (None, audio_features.shape[0])):
            shape = None if audio_features is None else list(audio_features.shape)
            raise ResyncerInputError(
                f"audio_features must have shape [{_batch_label(batch)}, T >= {min_length}, {audio_dim}], got {shape}.")
        return audio_features if length is None else audio_features[:, :length]

    def _check_style_audio(self, style_audio: Tensor | None, batch: int, reference_length: int) -> Tensor:
        expected = [batch, reference_length, self.config.audio_dim]
        if style_audio is None or list(style_audio.shape) != expected:
            shape = None if style_audio is None else list(style_audio.shape)
            raise ResyncerInputError(
                f"style_audio must have shape {expected} (the style reference's audio) in audio_aware mode, got {shape}.")
        return style_audio
