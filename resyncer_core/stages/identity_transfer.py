"""The training-free face swap (DESIGN §4, Renderers): the identity's face texture mapped onto
the target's mesh of every frame by the mesh warp, colour-matched, inside A'.

- The identity (a photo, or a few frames of a video: the most frontal, then one per head-turn
  bin) is tracked once; its aligned crops and their tracked meshes are the texture.
- Each target frame takes the identity view whose head rotation is nearest its own and warps
  it with render.mesh_warp.traced_warp from the identity's tracked mesh (in the identity's
  crop) to the new mesh posed in the target's crop: the identity's face shape, the target's
  pose and expression, eyelids following the target, the mouth from the driving audio, the
  inner mouth from a MouthMemory of the identity's views (the generic mouth when none opens).
- Colour: the warped identity's skin colour (per-channel mean) and contrast (luminance
  spread) are moved to the target's skin's (see `colour_transfer` for why statistics rather
  than gradient-domain blending).
- The mask is A' drawn on the new mesh (the identity's face where the target's pose and jaw
  put it), not the template's A' swept down by the jaw's reach: beyond the new face the warp's
  ring maps the identity photo's neck and background, which are never pasted.
- At the frame's resolution: the warp's source maps point into the identity crop, so the
  paste-back samples the identity picture itself through its crop transform (NativeSources
  with SourceImages), and the identity picture's resolution bounds the face's sharpness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ResyncerInputError
from ..face.alignment import CROP_SIZE
from ..face.masks import full_face_mask
from ..face.track import FaceTrack, posed_mesh_in_crop
from ..render.mesh_warp import MouthMemory, region_vertex_weights, traced_warp
from .functions import aligned_crops, select_frames
from .native_warp import NativeSources, SourceImages
from .warping import WARP_BATCH_SIZE, tracked_in_crop

# Views of an identity video: the most frontal, then the most frontal of each head-turn bin.
IDENTITY_VIEWS = 5
YAW_BIN_DEGREES = 12.0
# Share of the skin pixels, darkest first, left out of the colour statistics: brows, lashes,
# nostrils and the lip line are dark in one face and not at the same place in the other.
DARK_SHARE = 0.25
# The contrast gain stays within this factor of 1: a dark beard or a shadow must not flatten a face.
MAX_GAIN = 1.5


@dataclass(eq=False)
class IdentityTexture:
    """The identity's views: aligned crops [K,3,256,256] in −1..1, their tracked meshes [K,468,3]
    in crop pixels and head rotations [K,3,3]; the pictures they were cut from (uint8
    [K,H,W,3], one size) and their crop transforms [K,2,3], for the native-resolution paste."""

    crops: torch.Tensor
    meshes: torch.Tensor
    rotations: torch.Tensor
    pictures: np.ndarray
    crop_affine: np.ndarray

    def __len__(self) -> int:
        return len(self.crops)

    def nearest_views(self, rotations) -> torch.Tensor:
        """Per target head rotation [T,3,3], the view whose rotation is nearest (geodesic angle)."""
        relative = torch.einsum("tij,kij->tk", torch.as_tensor(np.asarray(rotations), dtype=torch.float32),
                                self.rotations)  # trace(Rₜᵀ R_k)
        return relative.argmax(1)


def _rotation_angles(rotations: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip((np.trace(rotations, axis1=1, axis2=2) - 1) / 2, -1, 1))


def identity_views(track: FaceTrack, count: int = IDENTITY_VIEWS) -> np.ndarray:
    """Up to `count` tracked frames of an identity clip: the most frontal, then the most frontal
    of each YAW_BIN_DEGREES head-turn bin, nearest bins first (sorted indices)."""
    valid = np.flatnonzero(track.valid)
    if not len(valid):
        raise ResyncerInputError("no face was found in the identity image or video; "
                                 "give one with a clearly visible face")
    rotations = np.asarray(track.pose.rotation)[valid]
    angles = _rotation_angles(rotations)
    yaw = np.degrees(np.arctan2(rotations[:, 0, 2], rotations[:, 2, 2]))
    bins = np.round(yaw / YAW_BIN_DEGREES).astype(np.int64)
    chosen = [int(np.argmin(angles))]
    for bin_ in sorted(set(bins.tolist()), key=abs):
        members = np.flatnonzero(bins == bin_)
        best = int(members[np.argmin(angles[members])])
        if best not in chosen:
            chosen.append(best)
    return np.sort(valid[chosen[:count]])


def identity_texture(frames, track: FaceTrack, views: np.ndarray | None = None) -> IdentityTexture:
    """The texture of an identity from its frames (uint8 [T,H,W,3]) and track; `views` (indices
    into both, default identity_views) are the frames kept."""
    views = identity_views(track) if views is None else np.asarray(views, dtype=np.int64)
    chosen = select_frames(track, views)
    pictures = np.ascontiguousarray(np.asarray(frames)[views][..., :3])
    if pictures.dtype != np.uint8:  # ComfyUI's float 0..1 images
        pictures = (np.clip(pictures, 0, 1) * 255).round().astype(np.uint8)
    return IdentityTexture(crops=aligned_crops(pictures, chosen), meshes=tracked_in_crop(chosen),
                           rotations=torch.as_tensor(np.asarray(chosen.pose.rotation), dtype=torch.float32),
                           pictures=pictures, crop_affine=np.asarray(chosen.crop_affine, dtype=np.float64))


@dataclass
class IdentityWarp:
    """The training-free swap renderer in a generator's place: where it runs and the identity's
    texture."""

    device: torch.device
    texture: IdentityTexture


def meshes_with_target_eyes(meshes: torch.Tensor, target_on_identity: torch.Tensor) -> torch.Tensor:
    """Swap meshes [T,468,3] whose lower face is `meshes` (the audio's) and whose upper face
    (eyelids, brows) is `target_on_identity` (the target's tracked motion on the identity's
    template), blended across the lower face's top band as the warp's own region is."""
    lower = torch.from_numpy(region_vertex_weights("mouth"))[None, :, None]
    return target_on_identity + lower * (torch.as_tensor(meshes, dtype=torch.float32) - target_on_identity)


def _skin_pixels(warped: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """[H,W] pixels of `region` that are skin in both crops: the darkest DARK_SHARE of each left out."""
    keep = region.clone()
    for image in (warped, target):
        luminance = image.mean(0)
        inside = luminance[region]
        if len(inside) > 16:
            keep &= luminance > torch.quantile(inside, DARK_SHARE)
    return keep


def colour_transfer(warped: torch.Tensor, target: torch.Tensor,
                    region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gain [3], bias [3]) in −1..1 units that give the warped identity [3,S,S] the target
    crop's skin colour (per-channel mean) and contrast (luminance spread) inside `region` [S,S]
    (both crops show the same face geometry there, so the same pixels are skin in both).

    Why statistics and not gradient-domain (Poisson) blending: Poisson takes the boundary from
    the target, so a dark hairline, beard or the target's brows at A''s edge diffuse across the
    identity's face, and at 1080p it is a large solve per frame; an affine colour map in the
    skin matches tone and overall lighting, commutes with resampling (so the native-resolution
    paste applies it exactly) and the feathered edge of A' hides what is left. A local version
    (the skin's mean over a 10-20 px σ) was tried and mottled faces lit in two colours."""
    skin = _skin_pixels(warped, target, region)
    if int(skin.sum()) < 16:
        return torch.ones(3), torch.zeros(3)
    source, wanted = warped[:, skin], target[:, skin]
    # One contrast gain for all channels (the luminance spread's): a gain per channel would
    # recolour the identity's lips, eyes and makeup along with the skin.
    gain = (wanted.mean(0).std() / source.mean(0).std().clamp(min=1e-3)).clamp(1 / MAX_GAIN, MAX_GAIN).expand(3)
    return gain, wanted.mean(1) - gain * source.mean(1)


def _warp_targets(tracked: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """New meshes to hand traced_warp so that, after it blends them towards the tracked ones by
    region_vertex_weights("face") (right for a face warped onto itself), they land on `new`:
    in a swap the tracked mesh is the identity's, in another crop, and a blend towards it would
    put the top of the face in the wrong place. Vertices with no weight stay where the warp
    puts them (above the region: outside A')."""
    weights = torch.from_numpy(region_vertex_weights("face")).to(new)[None, :, None]
    return torch.where(weights > 0, tracked + (new - tracked) / weights.clamp(min=1e-6), new)


def transfer_identity(renderer: IdentityWarp, crops: torch.Tensor, track: FaceTrack, meshes,
                      batch_size: int = WARP_BATCH_SIZE, on_batch: Callable[[int, int], None] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, NativeSources]:
    """The identity's face on aligned target crops [T,3,256,256] (−1..1) with their track and
    the new canonical meshes [T,468,3]: (crops, masks A' [T,256,256], the warp's source maps
    into the identity's pictures for paste_back's native resolution). Frames without a face
    pass through (mask 0). Runs in batches on renderer.device, calling on_batch(done, total)."""
    if not (len(crops) == len(track) == len(meshes)):
        raise ResyncerInputError(f"the swap got {len(crops)} crops, a {len(track)}-frame track and {len(meshes)} "
                                 "meshes; they must be the same frames")
    if batch_size < 1:
        raise ResyncerInputError(f"warp batch size must be at least 1, got {batch_size}")
    texture, device = renderer.texture, renderer.device
    memory = MouthMemory.from_frames(texture.crops, texture.meshes).with_generic_mouth()
    new = posed_mesh_in_crop(torch.as_tensor(meshes, dtype=torch.float32), track.pose, track.crop_affine)
    views = texture.nearest_views(track.pose.rotation)
    masks = full_face_mask(new)[:, 0] * torch.from_numpy(np.asarray(track.valid, dtype=np.float32)).view(-1, 1, 1)
    outputs, sources, plain, gains, biases = [], [], [], [], []
    for start in range(0, len(crops), batch_size):
        part = slice(start, start + batch_size)
        tracked = texture.meshes[views[part]].to(device)
        traced = traced_warp(texture.crops[views[part]].to(device), tracked,
                             _warp_targets(tracked, new[part].to(device)), memory, "face")
        warped = traced.warped.to("cpu", torch.float32)
        for index, image in enumerate(warped):
            gain, bias = colour_transfer(image, crops[start + index].to(torch.float32), masks[start + index] > 0)
            outputs.append(image * gain.view(3, 1, 1) + bias.view(3, 1, 1))
            gains.append(gain)
            biases.append(bias)
        sources.append(traced.sources.to("cpu", torch.float32))
        plain.append(traced.plain.to("cpu", torch.float32))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(crops)), len(crops))
    if not outputs:
        return crops.clone(), torch.zeros(0, CROP_SIZE, CROP_SIZE), NativeSources.of_no_crops(CROP_SIZE)
    swapped = torch.where(masks[:, None] > 0, torch.stack(outputs).clamp(-1, 1), crops)
    pictures = SourceImages(texture.pictures, texture.crop_affine, views.numpy(), torch.stack(gains),
                            torch.stack(biases))
    return swapped, masks, NativeSources(torch.cat(sources), torch.cat(plain), pictures)
