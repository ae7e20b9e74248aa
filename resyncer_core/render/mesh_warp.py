"""The training-free renderer (DESIGN §4, Renderers): a piecewise-affine warp of the face from
its tracked mesh to the new one, with the inner mouth filled from a mouth memory.

Geometry, all in the image's pixels (crop pixels in the pipeline, photo pixels in synth):
- Output pixel p inside triangle t of the new mesh, with barycentric weights λ, takes the input
  image at Σ λ_k · (tracked corner k): every triangle of the closed 468-vertex mesh moves
  affinely. A ring of fixed points outside the face oval (RING_SCALE of the oval's size from
  its centre, the same in both meshes) closes the warp, so the skin beyond the chin and cheeks
  follows the jaw and fades back to rest instead of tearing at the mesh's edge.
- Only the region moves: new vertices are blended towards the tracked ones with a per-vertex
  weight that is 1 in the lower face (the whole face for swap's A') and falls to 0 across a
  band below the region's top, so the warp is the identity at the mask's upper edge and above.
- The inner mouth (the closed mesh's triangles between the inner lip contours) comes from the
  image itself or from a MouthMemory (frames of the same clip with their tracked meshes),
  whichever has the lip gap nearest the wanted one: the upper half of that mouth (teeth) hangs
  from the new upper lip, the lower half rises with the new lower lip, and where the new mouth
  opens wider than the source, a dark cavity shows between them (all of it when no frame has an
  open mouth).
- Only triangles with a moving corner are rasterised; every other pixel is returned
  bit-identical, and the covered pixels are the warp's mask (what Blend pastes).

Everything is batched torch on the images' device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ResyncerInputError
from ..face import lips, topology
from .torch_rasterizer import rasterize_triangles

# Closing lips are drawn from this share of the lip's thickness inside its tracked inner edge:
# on a smile or an open mouth the tracked inner contour lies on the teeth's edge, and lips
# brought together from there keep a line of teeth between them.
LIP_EDGE_INSET = 0.3
# The fixed ring sits this many times the oval's distance from its centre: far enough that a
# dropped chin (about 10 % of the face height) still lies well inside it.
RING_SCALE = 1.5
# Height band (canonical units, ≈ cm) over which the moving region fades out below its top.
REGION_FADE_BAND = 1.5
# The mouth cavity, −1..1: a dark red-brown throat, and a tongue that shows in the lower part
# of a wide opening, most in the middle. Shading darkens the cavity towards the mouth corners
# and in the shadow under the upper teeth.
CAVITY_RGB = (0.26 * 2 - 1, 0.09 * 2 - 1, 0.10 * 2 - 1)
TONGUE_RGB = (0.62 * 2 - 1, 0.30 * 2 - 1, 0.32 * 2 - 1)
# An opening this many pixels high shows the cavity colour fully; thinner ones partly.
CAVITY_SOLID_HEIGHT_PX = 3.0
MEMORY_SIZE = 8
MASK_MODES = ("mouth", "face")
# The mouth interior of last resort (tools/make_generic_mouth.py): the bundled public-domain
# astronaut photo's aligned crop, whose smile shows both rows of teeth, and its mesh.
GENERIC_MOUTH_FILE = Path(__file__).resolve().parent / "assets" / "generic_mouth.npz"
# A memory none of whose frames parts the lips by this much (inter-ocular distances) shows no
# teeth to open onto, so the generic mouth joins it.
GENERIC_MOUTH_BELOW_IOD = 0.05


@functools.cache
def mouth_triangles() -> np.ndarray:
    """Closed-mesh triangles that fill the opening between the inner lip contours, [18, 3]."""
    inner = np.zeros(topology.NUM_VERTICES, dtype=bool)
    inner[list(lips.INNER_UPPER + lips.INNER_LOWER)] = True
    closed = topology.closed_triangles()
    return closed[inner[closed].all(axis=1)]


@functools.cache
def warp_triangles(mask_mode: str = "mouth") -> tuple[np.ndarray, int]:
    """The triangles the warp rasterises, those with a corner that moves in `mask_mode`'s
    region: skin and ring first, then the mouth; and the index of the first mouth triangle.
    Ring vertex i is vertex 468 + i, outside face_oval()[i]. Every other pixel keeps its place."""
    mouth = {tuple(sorted(t)) for t in mouth_triangles()}
    skin = np.array([t for t in topology.closed_triangles() if tuple(sorted(t)) not in mouth])
    oval = topology.face_oval()
    ring = topology.NUM_VERTICES + np.arange(len(oval))
    following = np.roll(np.arange(len(oval)), -1)
    ring_triangles = np.concatenate([np.stack([oval, oval[following], ring], -1),
                                     np.stack([oval[following], ring[following], ring], -1)])
    moves = np.concatenate([region_vertex_weights(mask_mode) > 0, np.zeros(len(oval), bool)])
    outside_mouth = np.concatenate([skin, ring_triangles])
    outside_mouth = outside_mouth[moves[outside_mouth].any(axis=1)]
    return np.concatenate([outside_mouth, mouth_triangles()]).astype(np.int64), len(outside_mouth)


@functools.cache
def region_vertex_weights(mask_mode: str = "mouth") -> np.ndarray:
    """Per-vertex share [468] of the new mesh's motion the warp applies: 1 in the region (lower
    face for "mouth", whole face for "face"), 0 at its top, smooth across REGION_FADE_BAND."""
    if mask_mode not in MASK_MODES:
        raise ResyncerInputError(f"mask mode {mask_mode!r} is unknown; use 'mouth' (lip-sync) or 'face' (face swap)")
    heights = topology.template_vertices()[:, 1]
    region = topology.lower_face_vertices() if mask_mode == "mouth" else topology.full_face_vertices()
    top = heights[region].max()
    x = np.clip((top - heights) / REGION_FADE_BAND, 0, 1)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def lip_gap(vertices: torch.Tensor) -> torch.Tensor:
    """Distance [...] between the inner lips' mid-line points of meshes [..., 468, ≥2]."""
    upper, lower = lips.INNER_LIP_MIDLINE
    return (vertices[..., upper, :2] - vertices[..., lower, :2]).norm(dim=-1)


@dataclass(eq=False)  # tensor fields
class MouthMemory:
    """Frames of one clip that show its mouth at different openings: images [K,3,H,W] in −1..1
    and their tracked meshes [K,468,≥2] in those images' pixels. K = 0 is allowed: every open
    mouth is then a dark cavity."""

    images: torch.Tensor
    meshes: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.images) != len(self.meshes):
            raise ResyncerInputError(f"mouth memory has {len(self.images)} images but {len(self.meshes)} meshes")
        self.meshes = torch.as_tensor(self.meshes, dtype=torch.float32)[..., :2]

    @classmethod
    def from_frames(cls, images: torch.Tensor, meshes: torch.Tensor, size: int = MEMORY_SIZE) -> MouthMemory:
        """Up to `size` of the frames, spread evenly over their range of lip gaps (the widest
        always included)."""
        if len(images) == 0:
            return cls(images, meshes)
        order = torch.argsort(lip_gap(meshes))
        picks = torch.unique(order[torch.linspace(0, len(order) - 1, min(size, len(order))).round().long()])
        return cls(images[picks].contiguous(), meshes[picks].contiguous())

    def __len__(self) -> int:
        return len(self.images)

    def with_generic_mouth(self) -> MouthMemory:
        """This memory, plus the generic mouth (GENERIC_MOUTH_FILE, aligned-crop sized) when none
        of its frames opens the lips (GENERIC_MOUTH_BELOW_IOD): a face never seen with its
        mouth open borrows those teeth instead of opening onto a bare cavity."""
        if len(self) and float(np.nanmax(lips.aperture_iod(self.meshes.numpy()))) >= GENERIC_MOUTH_BELOW_IOD:
            return self
        image, mesh = _generic_mouth()
        if len(self) and self.images.shape[-2:] != image.shape[-2:]:
            return self
        return MouthMemory(torch.cat([self.images, image.to(self.images)]), torch.cat([self.meshes, mesh]))

    def choose(self, wanted_gaps: torch.Tensor) -> torch.Tensor:
        """Per wanted gap [B], the index of the memory frame whose lip gap is nearest (K ≥ 1)."""
        gaps = lip_gap(self.meshes).to(wanted_gaps)
        return (gaps[None] - wanted_gaps[:, None]).abs().argmin(1)


@functools.cache
def _generic_mouth() -> tuple[torch.Tensor, torch.Tensor]:
    """The generic mouth's image [1,3,256,256] in −1..1 and mesh [1,468,2] (crop pixels)."""
    with np.load(GENERIC_MOUTH_FILE, allow_pickle=False) as data:
        image = torch.from_numpy(data["image"]).permute(2, 0, 1)[None].to(torch.float32) / 127.5 - 1
        return image, torch.from_numpy(data["mesh"])[None]


def _pixel_centres(height: int, width: int, device) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32) + 0.5,
                            torch.arange(width, device=device, dtype=torch.float32) + 0.5, indexing="ij")
    return torch.stack([xs, ys], -1)  # [H,W,2]


def _sample(images: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of images [B,C,H,W] at pixel positions [B,H',W',2] (x, y)."""
    height, width = images.shape[-2:]
    scale = torch.tensor([2.0 / width, 2.0 / height], device=positions.device)
    return F.grid_sample(images, positions * scale - 1, mode="bilinear", padding_mode="border", align_corners=False)


def ring_vertices(tracked: torch.Tensor) -> torch.Tensor:
    """Fixed ring vertices [B,36,3] around the tracked face oval, behind every face vertex."""
    oval = tracked[:, torch.from_numpy(topology.face_oval().copy())]
    centre = oval[..., :2].mean(1, keepdim=True)
    xy = centre + RING_SCALE * (oval[..., :2] - centre)
    depth = tracked[..., 2].amax(1, keepdim=True) + 1.0
    return torch.cat([xy, depth[..., None].expand(-1, oval.shape[1], 1)], -1)


def _interpolate(vertices: torch.Tensor, triangles: torch.Tensor, triangle_id: torch.Tensor,
                 barycentric: torch.Tensor) -> torch.Tensor:
    """Σ λ_k · vertices[corner k] per pixel, [B,H,W,2], for vertices [B,V,2]."""
    batch, count = vertices.shape[:2]
    corners = triangles[triangle_id.clamp(min=0)]  # [B,H,W,3]
    flat = corners + (torch.arange(batch, device=corners.device) * count).view(-1, 1, 1, 1)
    points = vertices.reshape(-1, 2)[flat.reshape(-1)].view(*corners.shape, 2)
    return (barycentric[..., None] * points).sum(-2)


@torch.no_grad()
def warp_faces(images: torch.Tensor, tracked: torch.Tensor, new: torch.Tensor, memory: MouthMemory,
               mask_mode: str = "mouth") -> tuple[torch.Tensor, torch.Tensor]:
    """images [B,3,H,W] in −1..1 with their tracked meshes and the new meshes, [B,468,3] in the
    images' pixels (depth z, smaller nearer) → (warped images, changed [B,1,H,W] in {0, 1}):
    pixels where `changed` is 0 are the input's, bit for bit. The memory's images must have
    the images' size."""
    return traced_warp(images, tracked, new, memory, mask_mode).images_and_changes()


@dataclass(eq=False)
class TracedWarp:
    """A warp with where each pixel came from, so it can be redone from a sharper copy of the
    same images (stages.native_warp): `sources` [B,H,W,2] are the image positions (pixels)
    each output pixel samples; `plain` [B,1,H,W] marks the pixels that are nothing but that
    sample (the inner mouth, drawn from layers, a memory frame and the cavity, is not)."""

    warped: torch.Tensor
    changed: torch.Tensor
    sources: torch.Tensor
    plain: torch.Tensor

    def images_and_changes(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.warped, self.changed


@torch.no_grad()
def traced_warp(images: torch.Tensor, tracked: torch.Tensor, new: torch.Tensor, memory: MouthMemory,
                mask_mode: str = "mouth") -> TracedWarp:
    """warp_faces, keeping each pixel's source position (TracedWarp)."""
    batch, _, height, width = images.shape
    device = images.device
    tracked = tracked.to(device, torch.float32)
    weights = torch.from_numpy(region_vertex_weights(mask_mode)).to(device)[None, :, None]
    new = tracked + weights * (new.to(device, torch.float32) - tracked)
    ring = ring_vertices(tracked)
    triangles_np, first_mouth = warp_triangles(mask_mode)
    triangles = torch.from_numpy(triangles_np).to(device)
    fragments = rasterize_triangles(torch.cat([new, ring], 1), triangles, height, width)
    triangle_id, barycentric = fragments.triangle_id, fragments.barycentric

    centres = _pixel_centres(height, width, device)[None]
    source = _interpolate(torch.cat([_lip_edges_inset(tracked, new), ring], 1)[..., :2], triangles, triangle_id,
                          barycentric)
    changed = (triangle_id >= 0)[:, None]
    sources = torch.where(changed[:, 0, ..., None], source, centres.expand_as(source))
    warped = _sample(images, sources)
    painted = torch.zeros_like(changed)
    in_mouth = triangle_id >= first_mouth
    if bool(in_mouth.any()):
        warped, painted = _fill_mouth(warped, images, tracked, new, memory, in_mouth)
    return TracedWarp(torch.where(changed, warped, images), changed.to(images.dtype), sources,
                      (changed & ~painted).to(images.dtype))


def _lip_edges_inset(tracked: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """`tracked` [B,468,≥2] with each inner-lip vertex moved towards its outer-lip partner by
    LIP_EDGE_INSET of the lip's thickness, in proportion to how far the new mesh closes that
    pair's gap (nothing where it opens or keeps it)."""
    inner_upper, inner_lower = list(lips.INNER_UPPER[1:-1]), list(lips.INNER_LOWER[1:-1])
    outer_upper, outer_lower = list(lips.OUTER_UPPER[1:-1]), list(lips.OUTER_LOWER[1:-1])
    source_gap = (tracked[:, inner_upper, :2] - tracked[:, inner_lower, :2]).norm(dim=-1)
    new_gap = (new[:, inner_upper, :2] - new[:, inner_lower, :2]).norm(dim=-1)
    closing = (1 - new_gap / source_gap.clamp(min=1e-6)).clamp(0, 1)[..., None] * LIP_EDGE_INSET
    inset = tracked.clone()
    inset[:, inner_upper, :2] += closing * (tracked[:, outer_upper, :2] - tracked[:, inner_upper, :2])
    inset[:, inner_lower, :2] += closing * (tracked[:, outer_lower, :2] - tracked[:, inner_lower, :2])
    return inset


def _mouth_layers(upper: torch.Tensor, lower: torch.Tensor, half_gap: torch.Tensor) -> torch.Tensor:
    """[B,44,2] points of the inner mouth's three layers: the upper lip contour, the bottom of
    what hangs from it (`half_gap` deep, along each upper → lower lip pair), the top of what
    rises from the lower lip, the lower lip contour. half_gap is [B,11], clamped to half the gap."""
    direction = lower - upper
    gap = direction.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    fraction = (half_gap[..., None] / gap).clamp(0, 0.5)
    return torch.cat([upper, upper + fraction * direction, lower - fraction * direction, lower], 1)


@functools.cache
def _layer_triangles() -> tuple[np.ndarray, int]:
    """Triangles over the 4 × 11 layer points: the upper strip, the lower strip, then the
    cavity strip between them; and the index of the first cavity triangle."""
    count = len(lips.INNER_UPPER)

    def strip(top: int, bottom: int) -> np.ndarray:
        i = np.arange(count - 1)
        a, b, c, d = top * count + i, top * count + i + 1, bottom * count + i, bottom * count + i + 1
        return np.concatenate([np.stack([a, b, c], -1), np.stack([b, d, c], -1)])

    return np.concatenate([strip(0, 1), strip(2, 3), strip(1, 2)]).astype(np.int64), 2 * 2 * (count - 1)


def _cavity_coordinates(batch: int, count: int, device) -> torch.Tensor:
    """Per layer point [B,4·count,2]: (depth v, 0 under the upper teeth … 1 above the lower
    ones; centrality u, 0 at the mouth corners … 1 in the middle)."""
    column = torch.linspace(0, 1, count, device=device)
    centrality = 1 - (2 * column - 1).abs()
    depth = torch.tensor([0.0, 0.0, 1.0, 1.0], device=device)[:, None].expand(4, count)
    return torch.stack([depth.reshape(-1), centrality.repeat(4)], -1)[None].expand(batch, -1, -1)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


def _cavity_colour(coordinates: torch.Tensor) -> torch.Tensor:
    """Cavity colour [B,3,H,W] in −1..1 at cavity coordinates [B,H,W,2] (_cavity_coordinates)."""
    depth, centrality = coordinates[..., 0][:, None], coordinates[..., 1][:, None]
    throat = torch.tensor(CAVITY_RGB, device=coordinates.device).view(1, 3, 1, 1)
    tongue = torch.tensor(TONGUE_RGB, device=coordinates.device).view(1, 3, 1, 1)
    tongue_share = _smoothstep((depth - 0.45) / 0.45) * (0.35 + 0.65 * centrality)
    colour = (throat + tongue_share * (tongue - throat) + 1) / 2
    shade = (0.55 + 0.45 * _smoothstep(centrality * 1.5)) * (0.6 + 0.4 * _smoothstep(depth / 0.35))
    return colour * shade * 2 - 1


def _fill_mouth(warped, images, tracked, new, memory: MouthMemory, in_mouth) -> tuple[torch.Tensor, torch.Tensor]:
    """Paints the inner-mouth pixels of `warped`; returns it and the painted pixels [B,1,H,W].
    The source is the image's own mouth, or the memory frame whose lip gap is nearer the new
    one: its upper half of the mouth hangs from the new upper lip and its lower half rises with
    the new lower lip, each as deep as it is there; what opens between them is the dark cavity."""
    device = warped.device
    batch, _, height, width = warped.shape
    upper_ids, lower_ids = torch.tensor(lips.INNER_UPPER, device=device), torch.tensor(lips.INNER_LOWER, device=device)
    wanted = lip_gap(new)
    sources, meshes = images, tracked[..., :2]
    if len(memory):
        index = memory.choose(wanted)
        remembered = memory.meshes.to(device, torch.float32)[index]
        use_memory = (lip_gap(remembered) - wanted).abs() < (lip_gap(tracked) - wanted).abs()
        sources = torch.where(use_memory.view(-1, 1, 1, 1), memory.images.to(device, images.dtype)[index], images)
        meshes = torch.where(use_memory.view(-1, 1, 1), remembered, meshes)
    half_gap = 0.5 * (meshes[:, lower_ids] - meshes[:, upper_ids]).norm(dim=-1)
    target = _mouth_layers(new[:, upper_ids, :2], new[:, lower_ids, :2], half_gap)
    source = _mouth_layers(meshes[:, upper_ids], meshes[:, lower_ids], half_gap)
    triangles_np, first_cavity = _layer_triangles()
    triangles = torch.from_numpy(triangles_np).to(device)
    fragments = rasterize_triangles(torch.cat([target, torch.zeros_like(target[..., :1])], -1), triangles, height, width)
    positions = _interpolate(source, triangles, fragments.triangle_id, fragments.barycentric)
    # In the cavity strip the source is the remembered mid-line (both its edges map there); the
    # cavity colour covers it in proportion to the strip's local height, so a sliver of an
    # opening is a faint line rather than dark dots.
    fill = _sample(sources, positions)
    count = len(lips.INNER_UPPER)
    opening = (target[:, 2 * count:3 * count] - target[:, count:2 * count]).norm(dim=-1)
    heights = torch.cat([torch.zeros_like(opening), opening, opening, torch.zeros_like(opening)], 1)
    height_here = _interpolate(heights[..., None].expand(-1, -1, 2), triangles, fragments.triangle_id,
                               fragments.barycentric)[..., 0]
    darkness = (height_here / CAVITY_SOLID_HEIGHT_PX).clamp(0, 1)[:, None]
    cavity = _cavity_colour(_interpolate(_cavity_coordinates(batch, count, device), triangles,
                                         fragments.triangle_id, fragments.barycentric))
    layer = fragments.triangle_id[:, None]
    fill = torch.where(layer >= first_cavity, fill + darkness * (cavity - fill), fill)
    # Pixels of the closed mesh's mouth that no layer covers (edge rounding, lips that cross)
    # keep the plain warp.
    painted = in_mouth[:, None] & (layer >= 0)
    return torch.where(painted, fill, warped), painted
