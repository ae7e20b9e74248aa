"""Rotated square crops in torch that reproduce MediaPipe's image-to-tensor step.

MediaPipe (ImageToTensorCalculator, OpenCV path) crops a region of interest — centre, side,
rotation — by mapping the ROI's *corners* onto the output tensor's corners and resampling the
uint8 image with cv::warpPerspective(INTER_LINEAR). Output pixel (row i, column j) therefore
reads the source at

    centre + R(angle) · side · (j / out_size − ½,  i / out_size − ½)

in OpenCV's convention, where integer coordinates are pixel centres; R rotates in image
coordinates (y down), so a positive angle is a clockwise turn on screen. OpenCV quantises the
source coordinate to 1/32 pixel and rounds the interpolated value back to uint8 before the
value-range conversion; both are mirrored here because the networks saw exactly those inputs.
The landmark projection in landmark_model.py uses the same mapping in reverse, so crops and
landmarks agree to the sub-pixel.

With source points on the 1/32 grid, bilinear weights are multiples of 1/1024 and every product
and sum is exact in float32, so the rounded result equals OpenCV's integer arithmetic — provided
the coordinates reach the interpolation unrounded. Two samplers guarantee that (see below);
each ROI uses the cheaper one, and both give identical values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# OpenCV's warp tables resolve source coordinates to 1/INTER_TAB_SIZE of a pixel.
_OPENCV_SUBPIXEL_STEPS = 32


@dataclass
class SquareRois:
    """A batch of rotated square regions in image pixels (OpenCV pixel-centre convention)."""

    center: torch.Tensor  # [B, 2] float32, (x, y)
    size: torch.Tensor  # [B] float32, side length
    angle: torch.Tensor  # [B] float32, radians, clockwise on screen

    def select(self, index: torch.Tensor | slice | list[int]) -> "SquareRois":
        return SquareRois(self.center[index], self.size[index], self.angle[index])

    def to_image(self, unit_points: torch.Tensor) -> torch.Tensor:
        """Map points in ROI units ([B, N, 2], (0, 0) top-left corner, (1, 1) bottom-right) to
        image pixels."""
        offset = (unit_points - 0.5) * self.size[:, None, None]
        cos, sin = torch.cos(self.angle)[:, None], torch.sin(self.angle)[:, None]
        x = self.center[:, None, 0] + cos * offset[..., 0] - sin * offset[..., 1]
        y = self.center[:, None, 1] + sin * offset[..., 0] + cos * offset[..., 1]
        return torch.stack([x, y], dim=-1)


def crop_square_rois(frames: torch.Tensor, rois: SquareRois, out_size: int, border: str) -> torch.Tensor:
    """Resample each ROI of `frames` to an out_size² image, as MediaPipe does.

    frames: uint8 [B, H, W, C] (one ROI per frame, same device). border: "zero" (pixels outside
    read as black) or "replicate" (edge pixels extend outwards). Returns float32
    [B, C, out_size, out_size] (channels-last memory) holding whole numbers in 0..255.
    """
    if border not in ("zero", "replicate"):
        raise ValueError(f"border must be 'zero' or 'replicate', not {border!r}")
    batch, height, width, _ = frames.shape
    device = frames.device
    steps = torch.arange(out_size, device=device, dtype=torch.float32) / out_size
    unit = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(1, -1, 2)
    source = rois.to_image(unit.expand(batch, -1, -1))
    source = torch.round(source * _OPENCV_SUBPIXEL_STEPS) / _OPENCV_SUBPIXEL_STEPS  # [B, out², 2]

    # The pixels each ROI's samples touch: [begin, end) per axis, clipped to the frame.
    limits = torch.tensor([width, height])
    begin = torch.minimum(source.amin(dim=1).floor().cpu(), limits - 1).clamp(min=0).long()
    end = torch.maximum(torch.minimum(source.amax(dim=1).floor().cpu() + 2, limits), begin + 1).long()
    crops = []
    for b in range(batch):  # one ROI at a time, so results never depend on the rest of the batch
        (x0, y0), (x1, y1) = begin[b].tolist(), end[b].tolist()
        padded_size = (_next_power_of_two(x1 - x0), _next_power_of_two(y1 - y0))
        if padded_size[0] * padded_size[1] <= _MAX_REGION_PER_SAMPLE * out_size**2:
            crop = _sample_region(frames[b, y0:y1, x0:x1], source[b] - source.new_tensor([x0, y0]), padded_size,
                                  border)
        else:  # a small ROI in a large frame, or the whole frame: gathering beats converting it
            crop = _sample_by_gathering(frames[b], source[b], border)
        crops.append(crop.reshape(1, out_size, out_size, -1))
    # An NCHW view of NHWC memory, i.e. channels-last, the layout the networks run in.
    return torch.cat(crops).permute(0, 3, 1, 2)


# Above this many region pixels per output pixel, gathering neighbours is cheaper than converting
# the region to float for grid_sample.
_MAX_REGION_PER_SAMPLE = 16


def _next_power_of_two(value: int) -> int:
    return 1 << (value - 1).bit_length()


def _sample_region(region: torch.Tensor, points: torch.Tensor, padded_size: tuple[int, int],
                   border: str) -> torch.Tensor:
    """Bilinear samples [N, C] of a uint8 region [h, w, C] at points [N, 2] (region pixels) with
    grid_sample. The region is padded to power-of-two sides (never read except where the frame
    ends, so the padding mode equals the border mode): grid_sample's coordinate round trip is then
    exact for 1/32-pixel points, and so are its weights and sums, which keeps the uint8 rounding
    identical to OpenCV's fixed-point result."""
    height, width = region.shape[:2]
    image = region.permute(2, 0, 1)[None].float()
    image = F.pad(image, (0, padded_size[0] - width, 0, padded_size[1] - height),
                  mode="constant" if border == "zero" else "replicate")
    grid = (2 * points + 1) / points.new_tensor(padded_size) - 1  # align_corners=False: ±1 = outer edges
    sampled = F.grid_sample(image, grid[None, None], mode="bilinear", align_corners=False,
                            padding_mode="zeros" if border == "zero" else "border")
    return torch.floor(sampled[0, :, 0].T + 0.5)  # uint8 round-to-nearest


def _sample_by_gathering(frame: torch.Tensor, points: torch.Tensor, border: str) -> torch.Tensor:
    """The same samples as _sample_region, computed from the four neighbours of each point (all
    products and sums are exact in float32 for 1/32-pixel points)."""
    height, width, channels = frame.shape
    corner = points.floor()
    fx, fy = (points - corner).unbind(-1)
    x0, y0 = corner.long().unbind(-1)
    flat = frame.reshape(-1, channels)

    def neighbour(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if border == "zero":
            weight = weight * ((x >= 0) & (x < width) & (y >= 0) & (y < height))
        values = flat[y.clamp(0, height - 1) * width + x.clamp(0, width - 1)].float()
        return values * weight[:, None]

    value = (neighbour(x0, y0, (1 - fx) * (1 - fy)) + neighbour(x0 + 1, y0, fx * (1 - fy))
             + neighbour(x0, y0 + 1, (1 - fx) * fy) + neighbour(x0 + 1, y0 + 1, fx * fy))
    return torch.floor(value + 0.5)
