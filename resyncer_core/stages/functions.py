"""The pipeline stages as plain functions, tensors in and out.

ComfyUI nodes call these one by one; the streaming engine (engine.py) calls the same functions
chunk by chunk. Conventions (DESIGN §3):

    frames   [T,H,W,3] uint8 0..255 (numpy or torch) or float 0..1 (ComfyUI IMAGE); outputs keep
             the input's type and dtype
    crops    torch float32 [T,3,256,256] in -1..1 (aligned crops, overlays, generator output)
    masks    torch float32 [T,256,256] in 0..1 (ComfyUI MASK layout, crop space)
    meshes   torch float32 [T,468,3] canonical meshes M = M̄ + ΔM (pose-free)
    features torch float32 [T,audio_dim], one vector per video frame

Every function works on whatever device its model or tensors are on; results come back on the
CPU as float32 except where a docstring says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..audio.timing import exact_fps
from ..errors import ResyncerInputError
from ..face import topology
from ..face.alignment import CROP_SIZE, warp_from_crop, warp_to_crop
from ..face.masks import face_swap_mask, feathered_mask, lip_sync_mask
from ..face.track import FaceTrack, posed_mesh_in_crop
from ..models.precision import autocast_for, check_precision
from ..models.syncformer import blend_windows, window_starts
from ..render import get_renderer, mesh_overlay
from .native_warp import NativeSources, resample_native
from .regions import FrameWindow, affine_in_window, nonzero_box, window_of_crop_box

if TYPE_CHECKING:  # identity_transfer builds on these functions
    from .identity_transfer import IdentityTexture

STYLE_FRAMES = 90          # (paper) T_S, the style reference length
# Measured (benchmarks/speed_report.py, small preset, CPU, tuned allocator): batch 8 costs about
# the CPU time per frame of batch 1 (71 vs 75 ms; before the allocator tuning it was 34 % slower),
# and GPUs gain from the larger batches.
GENERATOR_BATCH_SIZE = 8
DEFAULT_FEATHER_PX = 8     # crop pixels of erosion and of blur radius at the blend mask's edge
MASK_MODES = ("mouth", "face")
# A window this small cannot be the face of a valid track; warp the whole frame instead.
_MIN_WINDOW_SIDE = 8

BatchCallback = Callable[[int, int], None]


# ----------------------------------------------------------------------------- frames and tracks

def _frames_tensor(frames) -> torch.Tensor:
    tensor = torch.as_tensor(frames)
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ResyncerInputError(f"frames must be [T, H, W, 3] RGB, got shape {list(tensor.shape)}; pass a clip of RGB images")
    if tensor.dtype != torch.uint8 and not tensor.is_floating_point():
        raise ResyncerInputError(f"frames must be uint8 (0..255) or float (0..1), got {tensor.dtype}")
    return tensor


def _pixel_scale(frames: torch.Tensor) -> float:
    """Pixel value of full white: 255 for uint8 frames, 1 for float (ComfyUI) frames."""
    return 255.0 if frames.dtype == torch.uint8 else 1.0


def select_frames(track: FaceTrack, indices) -> FaceTrack:
    """The frames `indices` (any order, repeats allowed) of a track; the template stays the
    whole clip's. Ping-pong output and per-chunk work index tracks this way."""
    indices = np.asarray(indices, dtype=np.int64)
    return FaceTrack(landmarks=track.landmarks[indices], valid=track.valid[indices], pose=track.pose[indices],
                     canonical=track.canonical[indices], template=track.template,
                     crop_affine=track.crop_affine[indices], fps=track.fps, frame_size=track.frame_size)


def _check_track_length(track: FaceTrack, count: int, what: str) -> None:
    if len(track) != count:
        raise ResyncerInputError(f"{what} has {count} frames but the face track has {len(track)}; "
                                 "pass the track of exactly these frames")


def aligned_crops(frames, track: FaceTrack) -> torch.Tensor:
    """The aligned 256² face crops [T,3,256,256] in -1..1 of frames [T,H,W,3] (track.crop_affine).

    Each crop is warped from the frame window it covers, not the whole frame, which gives the
    same pixels at a fraction of the cost for a face that fills a small part of a 720p frame."""
    frames = _frames_tensor(frames)
    _check_track_length(track, len(frames), "frames")
    frame_size = tuple(frames.shape[1:3])
    crops = []
    for frame, affine in zip(frames, track.crop_affine):
        window = window_of_crop_box(affine, (0, 0, CROP_SIZE, CROP_SIZE), frame_size)
        if min(window.size) < _MIN_WINDOW_SIDE:
            window = FrameWindow(0, 0, frame_size[1], frame_size[0])
        ys, xs = window.slices()
        region = frame[ys, xs].permute(2, 0, 1)[None].to(torch.float32)
        crops.append(warp_to_crop(region, affine_in_window(affine, window)[None], CROP_SIZE))
    # Clamped: the bicubic warp overshoots a little at sharp edges, and crops are -1..1.
    return (torch.cat(crops) * (2.0 / _pixel_scale(frames)) - 1.0).clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------------- audio, meshes

def compute_audio_features(encoder, waveform_16k, fps: float, frame_count: int) -> torch.Tensor:
    """Audio features [frame_count, audio_dim], one per video frame at `fps`, of a mono 16 kHz
    waveform [S] (numpy or torch). Audio past the last frame is ignored; frames past the end
    of the audio see silence."""
    return encoder.encode(waveform_16k, fps, frame_count).to("cpu", torch.float32)


def _mouth_motion(delta: np.ndarray) -> np.ndarray:
    """Per-frame movement [T] of the lower-face vertices from the previous frame (0 for frame 0)."""
    mouth = delta[:, topology.lower_face_vertices()]
    steps = np.linalg.norm(np.diff(mouth, axis=0), axis=-1).sum(-1)
    return np.concatenate([[0.0], steps])


def choose_style_window(track: FaceTrack, length: int = STYLE_FRAMES) -> int:
    """First frame of the `length`-frame style reference window: among the windows with the
    most tracked frames, the one whose mouth moves most (a talking stretch shows the speaking
    style; a silent one shows none). Clips shorter than `length` start at 0 and use all frames."""
    return style_window_start(track.delta(), track.valid, length)


def style_window_start(delta: np.ndarray, valid: np.ndarray, length: int = STYLE_FRAMES) -> int:
    """choose_style_window for displacements ΔM [T,468,3] and tracked flags [T] of any frame rate."""
    count = len(valid)
    if count <= length:
        return 0
    valid_flags = np.asarray(valid, dtype=bool)
    valid = valid_flags.astype(np.int64)
    # Motion into a frame counts only when the frame and its predecessor are both tracked:
    # an untracked frame's ΔM is 0, and the jump to or from it is not speech.
    both_valid = np.concatenate([[False], valid_flags[1:] & valid_flags[:-1]])
    motion = np.where(both_valid, _mouth_motion(delta), 0.0)
    window = np.ones(length)
    valid_counts = np.convolve(valid, window, mode="valid")
    motions = np.convolve(motion, window, mode="valid")
    best = np.flatnonzero(valid_counts == valid_counts.max())
    return int(best[np.argmax(motions[best])])


def style_reference_from_track(track: FaceTrack, start: int | None = None, length: int = STYLE_FRAMES) -> torch.Tensor:
    """ΔM_ref [L,468,3]: `length` (T_S = 90, paper) consecutive displacements from the track's
    own template, from frame `start` (default choose_style_window). A shorter clip gives all
    its frames. Untracked frames contribute ΔM = 0 (the template)."""
    if len(track) == 0:
        raise ResyncerInputError("the style track has no frames; track a clip with at least one frame")
    if length < 1:
        raise ResyncerInputError(f"style reference length must be at least 1 frame, got {length}")
    start = choose_style_window(track, length) if start is None else int(start)
    if not 0 <= start < len(track):
        raise ResyncerInputError(f"style start frame {start} is outside the track's {len(track)} frames; pick 0..{len(track) - 1}")
    delta = track.delta()[start:start + length]
    return torch.from_numpy(np.ascontiguousarray(delta, dtype=np.float32))


def frames_at_rate(count: int, from_fps: float, to_fps: float) -> int:
    """Frames at `to_fps` that cover `count` frames at `from_fps`: ceil(count·to/from), exactly."""
    return math.ceil(Fraction(int(count)) * exact_fps(to_fps) / exact_fps(from_fps))


def resample_frames(values, from_fps: float, to_fps: float, count: int) -> torch.Tensor:
    """A per-frame sequence [T,...] sampled at frame times k/from_fps, linearly interpolated at
    the `count` frame times k/to_fps (held at the ends). Same rate and length: returned as is."""
    values = torch.as_tensor(values)
    if exact_fps(from_fps) == exact_fps(to_fps) and count == len(values):
        return values
    if len(values) == 0:
        raise ResyncerInputError("cannot resample an empty frame sequence; give at least one frame")
    step = float(exact_fps(from_fps) / exact_fps(to_fps))
    positions = (torch.arange(count, dtype=torch.float64) * step).clamp(max=len(values) - 1)
    lower = positions.floor().long()
    upper = (lower + 1).clamp(max=len(values) - 1)
    weight = (positions - lower).to(values.dtype if values.is_floating_point() else torch.float32)
    weight = weight.view(-1, *[1] * (values.dim() - 1))
    return values[lower] * (1 - weight) + values[upper] * weight


def style_reference_at_rate(track: FaceTrack, fps: float, length: int = STYLE_FRAMES) -> tuple[torch.Tensor, int]:
    """(ΔM_ref [length,468,3], its first frame) of a track brought to `fps` (the Style-SyncFormer's
    rate): the track's displacements are resampled first, then the window is chosen at `fps`,
    so the reference is the same whatever rate the clip was filmed at."""
    count = frames_at_rate(len(track), track.fps, fps)
    delta = resample_frames(torch.from_numpy(np.ascontiguousarray(track.delta(), dtype=np.float32)), track.fps, fps, count)
    # A frame counts as tracked when both source frames it is interpolated from are.
    valid = resample_frames(torch.from_numpy(track.valid.astype(np.float32)), track.fps, fps, count) > 0.999
    start = style_window_start(delta.numpy(), valid.numpy(), length)
    return delta[start:start + length].contiguous(), start


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_meshes(syncformer, features: torch.Tensor, style_reference: torch.Tensor, template,
                   style_audio: torch.Tensor | None = None,
                   on_window: BatchCallback | None = None, *, features_fps: float | None = None,
                   style_fps: float | None = None, fps: float | None = None,
                   frame_count: int | None = None) -> torch.Tensor:
    """Style-SyncFormer: canonical meshes [frame_count,468,3] = template + ΔM̂ for audio features
    [T,A], the style reference ΔM_ref [T_S,468,3] (another person's for style transfer) and the
    template M̄ [468,3] the mouth is drawn on (another person's for face swap). style_audio
    [T_S,A] (the reference's audio features) is needed by audio-aware models only.

    Frame rates: the model runs at its own rate, config.period (25 fps, paper), whatever the
    video's. features_fps and style_fps are the rates of the features and of the style
    reference (and style_audio); fps and frame_count those of the meshes to return. Each
    defaults to the model's rate (fps to features_fps; frame_count to the frames the features
    span). Inputs at another rate are resampled to the model's, and ΔM̂ to the output frame times.

    Runs the model's own 100-frame windows with 20-frame cross-fades (paper) one window at a
    time, calling on_window(done, total) after each, so callers can report progress and stop."""
    if features.ndim != 2 or style_reference.ndim != 3:
        raise ResyncerInputError(f"predict_meshes needs features [T, A] and style_reference [T_S, 468, 3], got "
                                 f"{list(features.shape)} and {list(style_reference.shape)}")
    config = syncformer.config
    model_fps = float(config.period)
    features_fps = features_fps or model_fps
    style_fps = style_fps or model_fps
    fps = fps or features_fps
    frame_count = frames_at_rate(len(features), features_fps, fps) if frame_count is None else int(frame_count)
    features = resample_frames(features, features_fps, model_fps, frames_at_rate(len(features), features_fps, model_fps))
    style_count = frames_at_rate(len(style_reference), style_fps, model_fps)
    style_reference = resample_frames(style_reference, style_fps, model_fps, style_count)
    if style_audio is not None:
        style_audio = resample_frames(style_audio, style_fps, model_fps, style_count)
    device = _model_device(syncformer)
    audio = features[None].to(device, torch.float32)
    style = style_reference[None].to(device, torch.float32)
    reference_audio = None if style_audio is None else style_audio[None].to(device, torch.float32)
    length = audio.shape[1]
    starts = window_starts(length, config.infer_window, config.infer_overlap)
    windows = []
    for done, start in enumerate(starts, start=1):
        # One window per call reproduces generate() exactly: the style is per sequence (or per
        # frame from that frame's audio alone), so cutting the audio at window starts changes nothing.
        segment = audio[:, start:start + config.infer_window]
        windows.append(syncformer.generate(segment, style, reference_audio))
        if on_window is not None:
            on_window(done, len(starts))
    delta = resample_frames(blend_windows(windows, starts, length)[0].to("cpu", torch.float32), model_fps, fps,
                            frame_count)
    return delta + torch.as_tensor(template, dtype=torch.float32)


def meshes_on_template(driver_track: FaceTrack, template) -> torch.Tensor:
    """Canonical meshes [T,468,3]: the driver's displacements ΔM' added to `template` [468,3].
    Frames where the driver has no face keep the template (ΔM' = 0)."""
    meshes = np.asarray(template, dtype=np.float32)[None] + driver_track.delta()
    return torch.from_numpy(np.ascontiguousarray(meshes, dtype=np.float32))


def meshes_from_driver(driver_track: FaceTrack, target_track: FaceTrack) -> torch.Tensor:
    """Video-driven meshes [T_driver,468,3]: the driver's displacements ΔM' moved onto the
    target's template (paper §3.2)."""
    return meshes_on_template(driver_track, target_track.template)


# ------------------------------------------------------------------------------------- overlay

def _region_mask_function(mask_mode: str):
    if mask_mode not in MASK_MODES:
        raise ResyncerInputError(f"mask mode {mask_mode!r} is unknown; use 'mouth' (lip-sync, A) or 'face' (face swap, A')")
    return lip_sync_mask if mask_mode == "mouth" else face_swap_mask


def overlay_on_crops(crops: torch.Tensor, pose, crop_affine, template, meshes, mask_mode: str = "mouth",
                     renderer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """MeshOverlay on aligned crops [T,3,256,256] (-1..1): the canonical meshes [T,468,3] drawn
    white with each frame's pose (Pose of [T] arrays) and crop transform [T,2,3], over the mask
    built from the expression-free template ([468,3], or one per frame [T,468,3]: training
    batches mix people). Returns (overlays I^AM, masks A [T,256,256]); see overlay_crops."""
    region_mask = _region_mask_function(mask_mode)
    meshes = torch.as_tensor(meshes, dtype=torch.float32)
    posed_new = posed_mesh_in_crop(meshes, pose, crop_affine)
    masks = region_mask(posed_mesh_in_crop(torch.as_tensor(template, dtype=torch.float32), pose, crop_affine))
    renderer = renderer if renderer is not None else get_renderer()
    triangles = torch.from_numpy(np.array(topology.triangles()))
    rendered = renderer.render(posed_new, triangles, CROP_SIZE).image.to(crops.device)
    return mesh_overlay(crops, rendered, masks), masks[:, 0]


def overlay_crops(frames, track: FaceTrack, meshes, mask_mode: str = "mouth",
                  renderer=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MeshOverlay (paper §3.2–3.3) for frames [T,H,W,3] with their track and the canonical
    meshes [T,468,3] to draw. Returns (crops, overlays, masks):
        crops    the aligned crops I, [T,3,256,256] in -1..1 (the production reference frames)
        overlays I^AM = (1 − A)·I + A·M^p, the white mesh posed with each frame's pose
        masks    A [T,256,256]: lower face ("mouth") or whole face ("face", swap's A')
    The mask comes from the track's expression-free template posed with each frame's pose
    (face.masks.lip_sync_mask / face_swap_mask), not from the tracked or the new mesh: it is
    the same at training (tracked meshes) and inference (predicted ones) and its outline
    carries nothing about the true mouth, while reaching as far as a jaw opens."""
    _region_mask_function(mask_mode)  # a bad mode fails before the crops are warped
    crops = aligned_crops(frames, track)
    meshes = torch.as_tensor(meshes, dtype=torch.float32)
    _check_track_length(track, len(meshes), "meshes")
    overlays, masks = overlay_on_crops(crops, track.pose, track.crop_affine, track.template, meshes, mask_mode, renderer)
    return crops, overlays, masks


# ------------------------------------------------------------------------------------- generator

def _crop_mask(masks: torch.Tensor | None) -> torch.Tensor | None:
    """[T,1,S,S] from a MASK [T,S,S] (or already [T,1,S,S])."""
    if masks is None:
        return None
    return masks[:, None] if masks.ndim == 3 else masks


@torch.no_grad()
def _run_batched(run: Callable[..., torch.Tensor], inputs: list[torch.Tensor | None], device: torch.device,
                 batch_size: int, on_batch: BatchCallback | None, precision: str = "fp32") -> torch.Tensor:
    if batch_size < 1:
        raise ResyncerInputError(f"generator batch size must be at least 1, got {batch_size}")
    check_precision(precision)
    count = len(inputs[0])
    outputs = []
    for start in range(0, count, batch_size):
        batch = [None if tensor is None else tensor[start:start + batch_size].to(device, torch.float32) for tensor in inputs]
        with autocast_for(precision, device):
            generated = run(*batch)
        outputs.append(generated.clamp(-1, 1).to("cpu", torch.float32))
        if on_batch is not None:
            on_batch(min(start + batch_size, count), count)
    if not outputs:
        return torch.zeros(0, 3, CROP_SIZE, CROP_SIZE)
    return torch.cat(outputs)


def generate_crops(generator, overlays: torch.Tensor, references: torch.Tensor,
                   batch_size: int = GENERATOR_BATCH_SIZE, mask: torch.Tensor | None = None,
                   on_batch: BatchCallback | None = None, precision: str = "fp32") -> torch.Tensor:
    """Lip-sync generation G(E([I^AM, I_ref])) → crops [T,3,256,256] in -1..1, in batches of
    `batch_size`, calling on_batch(done, total) after each (raise from it to stop). For
    production the reference is the target crop itself (paper A.1). `mask` (A, [T,S,S]) is
    required by generators built with mask_low_level_features or hide_reference_lower_face
    and ignored by the others. `precision` ("fp32", "bf16",
    "fp16", models/precision.py) is the autocast the generator runs under; crops come back
    float32 either way."""
    if overlays.shape != references.shape:
        raise ResyncerInputError(f"overlays {list(overlays.shape)} and references {list(references.shape)} must match")
    return _run_batched(lambda overlay, reference, m: generator(overlay, reference, mask=m),
                        [overlays, references, _crop_mask(mask)], _model_device(generator), batch_size, on_batch,
                        precision)


def swap_crops(generator, overlays: torch.Tensor, identity_frames: torch.Tensor, references: torch.Tensor,
               batch_size: int = GENERATOR_BATCH_SIZE, mask: torch.Tensor | None = None,
               on_batch: BatchCallback | None = None, precision: str = "fp32") -> torch.Tensor:
    """Face swap (paper §3.3): W from E([I^{A'M'}, I']), feature maps from E([I^{A'M'}, I_ref]).
    identity_frames is one crop [1,3,256,256] for every frame or one per frame [T,3,256,256];
    overlays are built with mask_mode="face" on the identity's template. `precision` as in
    generate_crops."""
    if identity_frames.ndim != 4 or len(identity_frames) not in (1, len(overlays)):
        raise ResyncerInputError(f"identity frames must be [1 or {len(overlays)}, 3, 256, 256], got {list(identity_frames.shape)}")
    identity_frames = identity_frames.expand(len(overlays), -1, -1, -1)
    return _run_batched(lambda overlay, identity, reference, m: generator.swap(overlay, identity, reference, mask=m),
                        [overlays, identity_frames, references, _crop_mask(mask)], _model_device(generator),
                        batch_size, on_batch, precision)


# ------------------------------------------------------------------------------------- blending

@dataclass
class PastedRegion:
    """Where one crop went: the frame window and the blend weights [h,w] used there (0 means
    the input pixel was kept exactly)."""

    window: FrameWindow
    weights: torch.Tensor


def paste_back(frames, crops: torch.Tensor, crop_affine, masks: torch.Tensor, feather: int = DEFAULT_FEATHER_PX,
               valid=None, native: NativeSources | None = None) -> tuple[np.ndarray | torch.Tensor, list[PastedRegion | None]]:
    """`blend_crops` that also returns, per frame, the window and weights it pasted with (None
    for frames left as they were). Frames where `valid` is False are not touched. With
    `native` (a mesh warp's source maps of these crops), the warp is redone in the frame's own
    pixels wherever it only moved them (stages.native_warp), so a face larger than the crop
    keeps its detail."""
    frames_in = _frames_tensor(frames)
    if not (len(frames_in) == len(crops) == len(masks) == len(crop_affine)):
        raise ResyncerInputError(f"blend needs as many crops ({len(crops)}), masks ({len(masks)}) and crop transforms "
                                 f"({len(crop_affine)}) as frames ({len(frames_in)})")
    if feather < 0:
        raise ResyncerInputError(f"feather must be 0 or more crop pixels, got {feather}")
    scale = _pixel_scale(frames_in)
    output = frames_in.clone()
    frame_size = tuple(output.shape[1:3])
    # Eroding by the blur radius keeps every soft weight inside the mask: pixels outside A
    # get weight 0 and stay bit-identical to the input.
    weights = feathered_mask(_crop_mask(masks).to(torch.float32).cpu(), feather, feather)[:, 0]
    pixels = (crops.to("cpu", torch.float32) + 1.0) * (scale / 2.0)
    valid = np.ones(len(output), bool) if valid is None else np.asarray(valid, bool)
    regions: list[PastedRegion | None] = []
    for index in range(len(output)):
        box = nonzero_box(weights[index] > 0) if valid[index] else None
        window = None if box is None else window_of_crop_box(crop_affine[index], box, frame_size)
        if window is None or window.empty:
            regions.append(None)
            continue
        local = affine_in_window(crop_affine[index], window)[None]
        pasted = warp_from_crop(pixels[index:index + 1], local, window.size)[0].permute(1, 2, 0)
        if native is not None:
            pasted = resample_native(frames_in[index], pasted, native, index, crop_affine[index], window, local[0])
        # Bilinear for the weights: bicubic ringing would spread them past the mask's edge.
        weight = warp_from_crop(weights[index][None, None], local, window.size, mode="bilinear")[0, 0].clamp(0, 1)
        ys, xs = window.slices()
        original = output[index, ys, xs]
        mixed = original.to(torch.float32) * (1 - weight[..., None]) + pasted * weight[..., None]
        mixed = mixed.round().clamp(0, 255).to(torch.uint8) if output.dtype == torch.uint8 else mixed.clamp(0, 1).to(output.dtype)
        output[index, ys, xs] = torch.where((weight > 0)[..., None], mixed, original)
        regions.append(PastedRegion(window, weight))
    return (output.numpy() if isinstance(frames, np.ndarray) else output), regions


def blend_crops(frames, crops: torch.Tensor, track: FaceTrack, masks: torch.Tensor,
                feather: int = DEFAULT_FEATHER_PX):
    """Feathered paste-back of generated crops [T,3,256,256] into frames [T,H,W,3] through the
    inverse crop affine. Weights are the crop mask [T,256,256] eroded by `feather` crop pixels
    and blurred by as much, so outside the mask the output equals the input bit for bit;
    frames the track marks as without a face pass through unchanged. Returns frames of the
    input's type and dtype (blended in 0..255 integer steps for uint8)."""
    _check_track_length(track, len(crops), "crops")
    return paste_back(frames, crops, track.crop_affine, masks, feather, valid=track.valid)[0]


# ------------------------------------------------------------------------------------- identity

@dataclass
class FaceIdentity:
    """A swap identity: I' (its aligned crop, [1,3,256,256] in -1..1), its template M̄' [468,3]
    and, for the training-free swap, its texture (stages.identity_transfer)."""

    frame: torch.Tensor
    template: np.ndarray
    texture: IdentityTexture | None = None


def choose_identity_frame(track: FaceTrack) -> int:
    """The identity's most frontal tracked frame (smallest head rotation): the crop that shows
    the face's appearance with the least self-occlusion."""
    valid = np.flatnonzero(track.valid)
    if len(valid) == 0:
        raise ResyncerInputError("no face was found in the identity image or video; give one with a clearly visible face")
    rotation = np.asarray(track.pose.rotation)[valid]
    angles = np.arccos(np.clip((np.trace(rotation, axis1=1, axis2=2) - 1) / 2, -1, 1))
    return int(valid[np.argmin(angles)])


def identity_from_track(track: FaceTrack, frame, index: int) -> FaceIdentity:
    """FaceIdentity from an identity track and its frame `index` (frame: [1,H,W,3] or [H,W,3])."""
    frame = torch.as_tensor(frame)
    frame = frame[None] if frame.ndim == 3 else frame
    return FaceIdentity(frame=aligned_crops(frame, select_frames(track, [index])), template=track.template.copy())


def identity_from_frames(tracker, frames, fps: float = 25.0) -> FaceIdentity:
    """FaceIdentity of the person in frames [T,H,W,3] (one image as T = 1): the template is
    the neutral template of the tracked frames (face.template), I' the most frontal frame's crop."""
    frames = _frames_tensor(frames)
    track = tracker.track(frames, fps)
    index = choose_identity_frame(track)
    return identity_from_track(track, frames[index:index + 1], index)
