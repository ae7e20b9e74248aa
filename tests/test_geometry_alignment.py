from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from resyncer_core.face import topology
from resyncer_core.face.alignment import (
    CROP_SIZE,
    crop_affine_from_landmarks,
    crop_points,
    invert_affine,
    warp_from_crop,
    warp_to_crop,
)
from resyncer_core.face.canonical import from_canonical
from test_geometry_fixtures import FACE_DATA, POSE_SWEEP, band_limited_texture, crop_vertices_for, pose_of, reference_landmarks, template


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def similarity(angle_degrees: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    c, s = math.cos(math.radians(angle_degrees)), math.sin(math.radians(angle_degrees))
    return torch.tensor([[[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]]])


def test_frontal_face_is_centred_with_room_for_chin_forehead_and_cheeks():
    points = crop_vertices_for([(0, 0, 0)])[0]
    eyes = points[list(topology.RIGHT_EYE_CORNERS + topology.LEFT_EYE_CORNERS)]
    assert float(eyes[:, 1].max() - eyes[:, 1].min()) < 1.0  # eye line horizontal
    assert float(points[:, 0].mean()) == pytest.approx(CROP_SIZE / 2, abs=1.0)
    assert 16 < float(points[:, 1].min())  # top of the forehead inside
    assert float(points[topology.CHIN, 1]) < CROP_SIZE - 20  # room for the jaw to drop
    assert 24 < float(points[:, 0].min()) and float(points[:, 0].max()) < CROP_SIZE - 24


@pytest.mark.parametrize("angles", POSE_SWEEP)
def test_the_whole_mesh_stays_inside_the_crop_for_turned_heads(angles):
    points = crop_vertices_for([angles])[0, :, :2]
    assert float(points.min()) > 0 and float(points.max()) < CROP_SIZE


def test_crop_is_equivariant_to_a_similarity_of_the_frame():
    """Rotating, scaling and moving the whole frame leaves the face's crop coordinates unchanged."""
    landmarks = from_canonical(template(), pose_of([(20, -10, 5)]))
    moved_by = similarity(33.0, 1.7, (40.0, -25.0))
    moved = torch.cat([crop_points(landmarks[..., :2], moved_by), landmarks[..., 2:]], -1)
    original_in_crop = crop_points(landmarks[..., :2], crop_affine_from_landmarks(landmarks))
    moved_in_crop = crop_points(moved[..., :2], crop_affine_from_landmarks(moved))
    torch.testing.assert_close(moved_in_crop, original_in_crop, rtol=0, atol=1e-3)


def test_invert_affine_and_depth_scaling():
    affine = crop_affine_from_landmarks(from_canonical(template(), pose_of(POSE_SWEEP)))
    points = torch.rand(len(affine), 50, 3) * 500
    there = crop_points(points, affine)
    back = crop_points(there, invert_affine(affine))
    torch.testing.assert_close(back, points, rtol=0, atol=1e-3)


def test_a_frame_point_lands_where_crop_points_says():
    """Pixel convention check: a small bright blob is centred where crop_points maps its centre."""
    height, width, centre = 300, 400, (231.3, 144.7)
    y, x = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    frame = torch.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * 3.0**2))[None, None]
    affine = similarity(17.0, 1.3, (-90.0, -100.0))  # maps the blob to about (143, 168)
    crop = warp_to_crop(frame, affine, 256)[0, 0]
    cy, cx = torch.meshgrid(torch.arange(256) + 0.5, torch.arange(256) + 0.5, indexing="ij")
    centroid = torch.stack([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    expected = crop_points(torch.tensor([[centre]]), affine)[0, 0]
    torch.testing.assert_close(centroid, expected, rtol=0, atol=0.02)


def face_box(landmarks: torch.Tensor) -> tuple[slice, slice]:
    (x0, y0), (x1, y1) = landmarks[0, :, :2].amin(0).floor().long().tolist(), landmarks[0, :, :2].amax(0).ceil().long().tolist()
    return slice(y0, y1), slice(x0, x1)


@pytest.mark.parametrize("channels_last", [True, False])
def test_crop_then_paste_back_reproduces_the_face_box(channels_last):
    """Frame → crop → frame keeps ≥ 40 dB inside the face box on a textured image whose finest
    waves have a 7 px period. Every resampling low-pass filters, so the PSNR falls with sharper
    content; bicubic warps keep the real astronaut photo below at about 55 dB (bilinear: 39 dB).
    The test pins the geometry and the pixel convention, not a lossless resampler."""
    height, width = 360, 480
    frame = torch.tensor(band_limited_texture(height, width))[None]
    # Face about 190 px tall in the frame, turned and rolled: the crop is a ~1.04× resampling.
    landmarks = from_canonical(template(), pose_of([(15, 5, 12)], scale=11.0, centre=(250.0, 170.0, 0.0)))
    affine = crop_affine_from_landmarks(landmarks)
    frames = frame if channels_last else frame.permute(0, 3, 1, 2)

    crop = warp_to_crop(frames, affine)
    back = warp_from_crop(crop, affine, (height, width))
    assert crop.shape == ((1, CROP_SIZE, CROP_SIZE, 3) if channels_last else (1, 3, CROP_SIZE, CROP_SIZE))
    assert back.shape == frames.shape
    rows, columns = face_box(landmarks)
    if channels_last:
        assert psnr(back[:, rows, columns], frames[:, rows, columns]) >= 40.0
    else:
        assert psnr(back[..., rows, columns], frames[..., rows, columns]) >= 40.0


def test_crop_then_paste_back_of_a_real_photo():
    """The astronaut photo with its real MediaPipe landmarks (crop ≈ 1.66× upsampling)."""
    landmarks = torch.tensor(reference_landmarks("astronaut"))[None]
    photo = torch.tensor(np.asarray(Image.open(FACE_DATA / "astronaut.png").convert("RGB")), dtype=torch.float32)[None] / 255
    affine = crop_affine_from_landmarks(landmarks)
    back = warp_from_crop(warp_to_crop(photo, affine), affine, photo.shape[1:3])
    rows, columns = face_box(landmarks)
    assert psnr(back[:, rows, columns], photo[:, rows, columns]) >= 40.0


def test_paste_back_is_zero_outside_the_crop_and_crops_replicate_the_border():
    frame = torch.ones(1, 3, 100, 100)
    affine = similarity(0.0, 4.0, (-100.0, -100.0))  # a crop of the frame's 25..89 square at 4×
    pasted = warp_from_crop(torch.ones(1, 3, 256, 256), affine, (100, 100))
    assert float(pasted[..., :20, :].max()) == 0.0 and float(pasted[..., 30:80, 30:80].min()) == 1.0
    far_out = similarity(0.0, 1.0, (200.0, 200.0))  # the crop lies entirely outside the frame
    replicated = warp_to_crop(frame, far_out)
    torch.testing.assert_close(replicated, torch.ones_like(replicated))  # bicubic weights sum to 1 up to float rounding


def test_warps_keep_the_device_and_accept_numpy_affines():
    frame = torch.rand(2, 64, 64, 3)
    affine = np.tile(similarity(5.0, 2.0, (-10.0, -10.0)).numpy(), (2, 1, 1))
    crop = warp_to_crop(frame, torch.as_tensor(affine), 64)
    assert crop.device == frame.device and crop.dtype == frame.dtype


def test_warps_accept_the_numpy_affines_a_face_track_stores():
    """FaceTrack.crop_affine is numpy: both warps take it as it is (the test above passes a tensor)."""
    frame = torch.rand(2, 64, 64, 3)
    affine = np.tile(similarity(5.0, 2.0, (-10.0, -10.0)).numpy(), (2, 1, 1))
    crop = warp_to_crop(frame, affine, 64)
    torch.testing.assert_close(crop, warp_to_crop(frame, torch.as_tensor(affine), 64))
    back = warp_from_crop(crop, affine, (64, 64))
    torch.testing.assert_close(back, warp_from_crop(crop, torch.as_tensor(affine), (64, 64)))
