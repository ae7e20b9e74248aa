"""ReSyncer's style-based generator (paper §3.2–3.3; GPEN / StyleSync lineage).

    [overlay, reference] (6 × size²) ──► FeatureEncoder ──► f_f ──► MLP ──► W ──► W+ (n_latent × style_dim)
                                               │                                  │
                                               └─ F_4², F_8², … F_size² ──────────┴──► SynthesisNetwork ──► RGB

The encoder's maps enter the StyleGAN2 synthesis network where StyleGAN adds noise (GPEN:
concatenated as extra channels), carrying the spatial content (pose, background, the white
mesh of the mouth); the vector f_f becomes the style W that modulates every layer and carries
appearance and identity. Face swap (§3.3) takes W and the maps from two different encodings;
personalization adds a W+ offset before `synthesize`. Both go through the same
`encode` / `latent_from_features` / `synthesize` pieces that `forward` uses.

Layer numbering (1-based, L = n_latent = 2·log2(size) − 2 = 14 at 256²): styled conv 1 runs at
4², convs 2–3 at 8², …, convs 2(i−2) and 2(i−2)+1 at 2^i; the two convs of one resolution
share that resolution's encoder map, as in GPEN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ResyncerInputError
from .stylegan import (ConstantInput, ConvLayer, EqualLinear, PixelNorm, StyledConv, ToRGB,
                       check_power_of_two_size, stylegan_channels)


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator hyper-parameters; every field is JSON-friendly (stored in checkpoints).

    size: output and input resolution (power of two, 8 … 1024; the paper uses 256).
    in_channels: encoder input channels, 6 = [overlay RGB, reference RGB].
    style_dim: width of f_f, W and the mapping MLP.
    n_mlp: layers of the MLP that maps f_f to W. 8 as in GPEN's FullGenerator, the code base
        StyleSync and ReSyncer build on; the MLP costs ~2 M parameters and a negligible share of
        the compute at 512 wide.
    channel_multiplier: StyleGAN2's width factor for the resolutions ≥ 64².
    narrow: scales every convolution channel count (0.125 for CPU demos, 1/32 for tests).
    concat_noise: encoder maps are concatenated to the styled-conv outputs (GPEN); False adds
        them like StyleGAN noise.
    audio_dim: StyleSync option; > 0 means a per-frame audio vector of this size is concatenated
        to f_f before the MLP (w = MLP(concat(f_f, f_a))), and `audio` becomes required.
    mask_low_level_features: StyleSync option (its eq. 1, F'_l = (1 − M)·F_l for l > ⌊L/2⌋):
        the encoder maps of the high-resolution layers are multiplied by (1 − mask), so the
        reference frame's fine structure cannot leak into the masked mouth region. Rounded to
        whole resolutions (both convs of a resolution must have l > ⌊L/2⌋): 64², 128², 256² at
        256², i.e. layers 8–13 of L = 14. Off by default: in ReSyncer the masked region holds
        the mesh guidance, and removing it from the maps is the paper's "w/o Mesh-Inject"
        ablation, which hurts sync.
    hide_reference_lower_face: not in the paper. The reference frame's pixels under the mask are
        zeroed before encoding, so the lower face can come only from the mesh overlay and the
        weights. At inference the reference is the target frame itself (paper A.1), whose own
        mouth a generator trained on little data learns to copy; hiding it makes such a
        generator follow the mesh (the demo generator, tools/train_demo_generator.py: re-tracked
        lip aperture against the driving mesh r 0.62 seeing the reference's mouth, 0.99 with the
        same weights not seeing it). Off by default; when on, the mask is required, as with
        mask_low_level_features.
    w_offset_hidden: StyleSync's personalisation option; > 0 adds ΔW = MLP(f_f) (hidden width
        w_offset_hidden, output one offset per W+ layer) to W+, learnt by `resyncer personalize
        --w-plus` with an L2 penalty; its last layer starts at zero, so a fresh offset changes
        nothing. 0 (default): no offset network.
    lr_mlp: learning-rate multiplier of the mapping MLP (StyleGAN2 / GPEN).
    blur_kernel: FIR taps of the resampling filters.
    """

    size: int = 256
    in_channels: int = 6
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0
    concat_noise: bool = True
    audio_dim: int = 0
    mask_low_level_features: bool = False
    hide_reference_lower_face: bool = False
    w_offset_hidden: int = 0
    lr_mlp: float = 0.01
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)

    def __post_init__(self):
        check_power_of_two_size(self.size, "generator")
        positive = {"in_channels": self.in_channels, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                    "channel_multiplier": self.channel_multiplier, "narrow": self.narrow,
                    "lr_mlp": self.lr_mlp}
        for name, value in positive.items():
            if not value > 0:
                raise ResyncerInputError(f"generator {name} must be positive, got {value!r}")
        if self.w_offset_hidden < 0:
            raise ResyncerInputError(f"generator w_offset_hidden must be 0 (no W+ offset) or positive, got {self.w_offset_hidden!r}")
        if self.audio_dim < 0:
            raise ResyncerInputError(f"generator audio_dim must be 0 (no audio) or positive, got {self.audio_dim!r}")
        if len(self.blur_kernel) < 2:
            raise ResyncerInputError(f"generator blur_kernel needs at least 2 taps, got {self.blur_kernel!r}")

    @property
    def log_size(self) -> int:
        return self.size.bit_length() - 1

    @property
    def n_latent(self) -> int:
        return 2 * self.log_size - 2

    @property
    def masked_resolutions(self) -> tuple[int, ...]:
        """Resolutions whose encoder maps are masked (empty unless mask_low_level_features)."""
        if not self.mask_low_level_features:
            return ()
        half = self.n_latent // 2
        return tuple(2 ** i for i in range(3, self.log_size + 1) if 2 * (i - 2) > half)


class FeatureEncoder(nn.Module):
    """GPEN's encoder: a 1×1 conv at full resolution, then one anti-aliased stride-2 conv per
    resolution down to 4²; every resolution's output is kept as a map, and the flattened 4²
    map becomes the vector f_f through a linear layer."""

    def __init__(self, config: GeneratorConfig, channels: dict[int, int]):
        super().__init__()
        self.stem = ConvLayer(config.in_channels, channels[config.size], 1)
        self.downs = nn.ModuleList(
            ConvLayer(channels[2 ** i], channels[2 ** (i - 1)], 3, downsample=True, blur_kernel=config.blur_kernel)
            for i in range(config.log_size, 2, -1)
        )
        self.to_vector = EqualLinear(channels[4] * 4 * 4, config.style_dim, activate=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns f_f [B, style_dim] and the maps ordered coarse to fine (4², 8², … size²)."""
        x = self.stem(x)
        maps = [x]
        for down in self.downs:
            x = down(x)
            maps.append(x)
        return self.to_vector(x.flatten(1)), maps[::-1]


class MappingNetwork(nn.Sequential):
    """PixelNorm then `n_mlp` equalised linear layers with leaky ReLU, at a reduced learning
    rate (StyleGAN's mapping network, fed with f_f instead of a random z)."""

    def __init__(self, in_dim: int, style_dim: int, n_mlp: int, lr_mul: float):
        layers = [EqualLinear(in_dim if index == 0 else style_dim, style_dim, lr_mul=lr_mul, activate=True)
                  for index in range(n_mlp)]
        super().__init__(PixelNorm(), *layers)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: 2× upsampling styled conv, styled conv, ToRGB;
    both convs receive the encoder map of this resolution."""

    def __init__(self, in_channels: int, out_channels: int, config: GeneratorConfig):
        super().__init__()
        widen = 2 if config.concat_noise else 1
        common = dict(style_dim=config.style_dim, blur_kernel=config.blur_kernel,
                      concat_noise=config.concat_noise)
        self.up_conv = StyledConv(in_channels * widen, out_channels, 3, upsample=True, **common)
        self.conv = StyledConv(out_channels * widen, out_channels, 3, **common)
        self.to_rgb = ToRGB(out_channels * widen, config.style_dim, blur_kernel=config.blur_kernel)

    def forward(self, x: torch.Tensor, rgb: torch.Tensor, styles: torch.Tensor,
                feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`styles` [B, 3, style_dim]: the two convs' and the ToRGB's."""
        x = self.up_conv(x, styles[:, 0], feature_map)
        x = self.conv(x, styles[:, 1], feature_map)
        return x, self.to_rgb(x, styles[:, 2], rgb)


class SynthesisNetwork(nn.Module):
    """StyleGAN2's skip-architecture generator with the encoder maps in place of noise."""

    def __init__(self, config: GeneratorConfig, channels: dict[int, int]):
        super().__init__()
        widen = 2 if config.concat_noise else 1
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], 3, config.style_dim,
                                blur_kernel=config.blur_kernel, concat_noise=config.concat_noise)
        self.to_rgb1 = ToRGB(channels[4] * widen, config.style_dim, upsample=False)
        self.blocks = nn.ModuleList(
            SynthesisBlock(channels[2 ** (i - 1)], channels[2 ** i], config)
            for i in range(3, config.log_size + 1)
        )

    def forward(self, w_plus: torch.Tensor, feature_maps: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.input(w_plus.shape[0]), w_plus[:, 0], feature_maps[0])
        rgb = self.to_rgb1(x, w_plus[:, 1])
        for level, (block, feature_map) in enumerate(zip(self.blocks, feature_maps[1:])):
            # Block k uses styles 1+2k … 3+2k; its first style is shared with the previous
            # ToRGB, as in StyleGAN2, which is what makes n_latent = 2·log2(size) − 2.
            first = 1 + 2 * level
            x, rgb = block(x, rgb, w_plus[:, first:first + 3], feature_map)
        return rgb


class ReSyncGenerator(nn.Module):
    """Encoder + mapping MLP + style-based synthesis network; see the module docstring.

    Images are [B, 3, size, size] in −1..1. The output is the StyleGAN2 RGB sum without tanh
    (as GPEN and StyleGAN2): it is trained toward −1..1 by the L1/VGG losses, and a tanh would
    only flatten the gradients near the extremes; clamp when converting to pixels.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config if config is not None else GeneratorConfig()
        channels = stylegan_channels(self.config.size, self.config.channel_multiplier, self.config.narrow)
        self.encoder = FeatureEncoder(self.config, channels)
        self.mapping = MappingNetwork(self.config.style_dim + self.config.audio_dim, self.config.style_dim,
                                      self.config.n_mlp, self.config.lr_mlp)
        self.synthesis = SynthesisNetwork(self.config, channels)
        self.w_offset = None
        if self.config.w_offset_hidden:
            width = self.config.style_dim
            self.w_offset = nn.Sequential(nn.Linear(width, self.config.w_offset_hidden), nn.LeakyReLU(0.2),
                                          nn.Linear(self.config.w_offset_hidden, self.n_latent * width))
            nn.init.zeros_(self.w_offset[-1].weight)
            nn.init.zeros_(self.w_offset[-1].bias)

    @property
    def n_latent(self) -> int:
        return self.config.n_latent

    def encode(self, six_channel_input: torch.Tensor,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """E([I^AM, I_ref]) → (f_f [B, style_dim], feature maps coarse to fine: [B, C_r, r, r]
        for r = 4, 8, … size).

        `mask` ([B, 1, H, W] or [B, H, W], 1 where the lower face is replaced) is used only with
        `mask_low_level_features`, which then requires it; the returned maps are already masked.
        """
        size, in_channels = self.config.size, self.config.in_channels
        if six_channel_input.ndim != 4 or tuple(six_channel_input.shape[1:]) != (in_channels, size, size):
            raise ResyncerInputError(f"generator input must be [B, {in_channels}, {size}, {size}], "
                             f"got {list(six_channel_input.shape)}")
        f_f, maps = self.encoder(six_channel_input)
        masked = self.config.masked_resolutions
        if masked:
            keep = _kept_area(_required_mask(mask, "masks its high-resolution features (mask_low_level_features)"),
                              maps[-1])
            maps = [fmap * F.interpolate(keep, size=fmap.shape[-2:], mode="area")
                    if fmap.shape[-1] in masked else fmap for fmap in maps]
        return f_f, maps

    def encode_pair(self, overlay: torch.Tensor, reference: torch.Tensor,
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """E([I^AM, I_ref]) as lip-sync sees it (the reference hidden under the mask with
        hide_reference_lower_face); returns what `encode` does."""
        return self.encode(torch.cat([overlay, self._visible_reference(reference, mask)], dim=1), mask)

    def _visible_reference(self, reference: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The reference as the encoder sees it: whole, or its masked area zeroed
        (hide_reference_lower_face)."""
        if not self.config.hide_reference_lower_face:
            return reference
        return reference * _kept_area(_required_mask(mask, "hides the reference's lower face (hide_reference_lower_face)"),
                                      reference)

    def latent_from_features(self, f_f: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """f_f [B, style_dim] (and audio [B, audio_dim] when audio_dim > 0) → W+ [B, n_latent,
        style_dim], the same W at every layer. The result is an expanded view: add offsets out
        of place (w_plus + delta), do not write into it."""
        audio_dim = self.config.audio_dim
        if audio_dim:
            if audio is None or tuple(audio.shape) != (f_f.shape[0], audio_dim):
                got = None if audio is None else list(audio.shape)
                raise ResyncerInputError(f"this generator needs audio features [B, {audio_dim}] per frame, got {got}")
            f_f = torch.cat([f_f, audio], dim=1)
        elif audio is not None:
            raise ResyncerInputError("this generator was built without audio (audio_dim=0); pass audio=None")
        w_plus = self.mapping(f_f).unsqueeze(1).expand(-1, self.n_latent, -1)
        offset = self.latent_offset(f_f[:, :self.config.style_dim])
        return w_plus if offset is None else w_plus + offset

    def latent_offset(self, f_f: torch.Tensor) -> torch.Tensor | None:
        """StyleSync's personalised ΔW = MLP(f_f), [B, n_latent, style_dim]; None without one."""
        if self.w_offset is None:
            return None
        return self.w_offset(f_f).view(len(f_f), self.n_latent, self.config.style_dim)

    def synthesize(self, w_plus: torch.Tensor, feature_maps: list[torch.Tensor]) -> torch.Tensor:
        """G(W+, maps) → RGB [B, 3, size, size]; maps as returned by `encode`."""
        expected = (self.n_latent, self.config.style_dim)
        if w_plus.ndim != 3 or tuple(w_plus.shape[1:]) != expected:
            raise ResyncerInputError(f"W+ must be [B, {expected[0]}, {expected[1]}], got {list(w_plus.shape)}")
        if len(feature_maps) != self.config.log_size - 1:
            raise ResyncerInputError(f"expected {self.config.log_size - 1} feature maps (4² … {self.config.size}²), "
                             f"got {len(feature_maps)}")
        return self.synthesis(w_plus, feature_maps)

    def forward(self, overlay: torch.Tensor, reference: torch.Tensor, audio: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Lip-sync: G(E([I^AM, I_ref])) → [B, 3, size, size]."""
        f_f, feature_maps = self.encode_pair(overlay, reference, mask)
        return self.synthesize(self.latent_from_features(f_f, audio), feature_maps)

    def swap(self, overlay_swap: torch.Tensor, identity_frame: torch.Tensor, reference: torch.Tensor,
             audio: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Face swap (paper §3.3): W from E([I^{A'M'}, I']) carries the source identity, the
        maps from E([I^{A'M'}, I_ref]) carry the target's attributes; `mask` is A'."""
        batch = overlay_swap.shape[0]
        # Both encodings in one batch: one encoder pass instead of two.
        pairs = torch.cat([torch.cat([overlay_swap, identity_frame], dim=1),
                           torch.cat([overlay_swap, self._visible_reference(reference, mask)], dim=1)], dim=0)
        f_f, feature_maps = self.encode(pairs, None if mask is None else torch.cat([mask, mask], dim=0))
        w_plus = self.latent_from_features(f_f[:batch], audio)
        return self.synthesize(w_plus, [fmap[batch:] for fmap in feature_maps])


def _required_mask(mask: torch.Tensor | None, what: str) -> torch.Tensor:
    if mask is None:
        raise ResyncerInputError(f"this generator {what}; pass the lower-face mask (Mesh Overlay's mask)")
    return mask


def _kept_area(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """1 − mask as [B, 1, H, W] on `like`'s device and dtype; mask is [B, H, W] or [B, 1, H, W]."""
    return 1.0 - (mask.unsqueeze(1) if mask.ndim == 3 else mask).to(like.device, like.dtype)
