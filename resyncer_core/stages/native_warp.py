"""The mesh warp at the frame's own resolution (DESIGN §4, Renderers).

The warp's geometry is worked out in the aligned 256² crop (render.mesh_warp.traced_warp), but
a crop smaller than the face would blur it twice: once into the crop, once back into the frame.
So the paste-back does not resample the warped crop where it does not have to: for every frame
pixel it looks up, through the crop transform, which crop position the warp took that pixel
from, maps that position back into the frame and samples the original frame there (bicubic).
The geometry is piecewise affine, so the bilinear look-up of source positions is exact inside
each triangle. Only the pixels the warp painted itself (the inner mouth: teeth layers, a
memory frame, the cavity) come from the warped crop. A face swap's warp takes its pixels from
the identity's pictures instead of the frame (SourceImages): the same look-up samples those,
through their own crop transforms, with the swap's colour transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..face.alignment import invert_affine
from .regions import FrameWindow


@dataclass(eq=False)
class SourceImages:
    """The pictures a warp sampled when they are not the frames it is pasted into (a face swap's
    identity): uint8 pictures [K,H,W,3] and their crop transforms [K,2,3]; per crop, the picture
    it sampled (`picks` [T]) and the colour transfer applied to it, gain and bias [T,3] in
    −1..1 units (value ↦ gain·value + bias)."""

    pictures: np.ndarray
    crop_affine: np.ndarray
    picks: np.ndarray
    gain: torch.Tensor
    bias: torch.Tensor

    def select(self, indices) -> SourceImages:
        return SourceImages(self.pictures, self.crop_affine, self.picks[indices], self.gain[indices],
                            self.bias[indices])


@dataclass(eq=False)
class NativeSources:
    """Per crop: the crop position each warped crop pixel sampled, [T,S,S,2] (pixels), and the
    pixels that are only that sample, [T,1,S,S] in 0..1 (render.mesh_warp.TracedWarp); with
    `images`, those positions are in the crops of these pictures, not of the frames."""

    sources: torch.Tensor
    plain: torch.Tensor
    images: SourceImages | None = None

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.plain):
            raise ValueError(f"{len(self.sources)} source maps for {len(self.plain)} masks")

    @classmethod
    def of_no_crops(cls, size: int) -> NativeSources:
        """The source maps of an empty batch of size² crops."""
        return cls(torch.zeros(0, size, size, 2), torch.zeros(0, 1, size, size))

    def select(self, indices) -> NativeSources:
        images = None if self.images is None else self.images.select(indices)
        return NativeSources(self.sources[indices], self.plain[indices], images)


def _normalised(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """grid_sample coordinates (align_corners=False) of pixel positions [...,2] (x, y)."""
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=positions.dtype, device=positions.device)
    return positions * scale - 1.0


def resample_native(frame: torch.Tensor, pasted: torch.Tensor, native: NativeSources, index: int,
                    crop_affine: torch.Tensor, window: FrameWindow, window_to_crop: torch.Tensor) -> torch.Tensor:
    """The window [h,w,3] of `frame` [H,W,3] (its value scale) as crop `index` of `native`
    draws it: the warp's plain pixels sampled from the frame itself, its painted ones from
    `pasted` [h,w,3] (the warped crop already resampled into the window)."""
    height, width = window.size
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # [h,w,2] window pixels
    to_crop = window_to_crop.to(torch.float32)
    in_crop = centres @ to_crop[:, :2].T + to_crop[:, 2]
    crop_size = native.sources.shape[1]
    grid = _normalised(in_crop, crop_size, crop_size)[None]
    maps = torch.cat([native.sources[index].permute(2, 0, 1), native.plain[index]], 0)[None].to(torch.float32)
    looked_up = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    source_in_crop, plain = looked_up[:2].permute(1, 2, 0), looked_up[2].clamp(0, 1)
    picture, scale, white = frame, 1.0, 255.0 if frame.dtype == torch.uint8 else 1.0
    if native.images is not None:  # the identity's uint8 picture, brought to the frame's value scale
        pick = int(native.images.picks[index])
        picture, crop_affine = torch.from_numpy(native.images.pictures[pick]), native.images.crop_affine[pick]
        scale = white / 255.0
    to_frame = invert_affine(torch.as_tensor(crop_affine, dtype=torch.float64)[None])[0].to(torch.float32)
    source_in_frame = source_in_crop @ to_frame[:, :2].T + to_frame[:, 2]
    image = picture.permute(2, 0, 1)[None].to(torch.float32) * scale
    sampled = F.grid_sample(image, _normalised(source_in_frame, picture.shape[0], picture.shape[1])[None],
                            mode="bicubic", padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
    if native.images is not None:
        sampled = _colour_transferred(sampled, native.images.gain[index], native.images.bias[index], white)
    return pasted + plain[..., None] * (sampled - pasted)


def _colour_transferred(pixels: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, white: float) -> torch.Tensor:
    """pixels [h,w,3] (0..white) under the colour transfer value ↦ gain·value + bias of −1..1 values."""
    return pixels * gain.to(pixels) + (bias.to(pixels) + 1 - gain.to(pixels)) * (white / 2)
