from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resyncer_core.face import topology
from resyncer_core.face.alignment import CROP_SIZE
from resyncer_core.face.masks import (
    dilate,
    erode,
    feathered_mask,
    JAW_DROP_PER_CROP_SIDE,
    extend_downward,
    face_swap_mask,
    full_face_mask,
    landmark_hull_mask,
    lip_sync_mask,
    lower_face_mask,
)
from test_geometry_fixtures import POSE_SWEEP, crop_vertices_for


def value_at(mask: torch.Tensor, point: torch.Tensor) -> float:
    column, row = (int(v) for v in point[:2].floor().tolist())
    return float(mask[0, row, column])


def test_masks_are_nonempty_nested_and_inside_the_crop_for_a_range_of_poses():
    vertices = crop_vertices_for(POSE_SWEEP)
    lower, full = lower_face_mask(vertices), full_face_mask(vertices)
    assert lower.shape == full.shape == (len(POSE_SWEEP), 1, CROP_SIZE, CROP_SIZE)
    assert set(torch.unique(full).tolist()) == {0.0, 1.0}
    assert (lower <= full).all()  # A ⊂ A', pixel by pixel
    areas = lower.mean((1, 2, 3))
    assert (areas > 0.08).all() and (full.mean((1, 2, 3)) > 1.5 * areas).all()
    border = torch.ones(CROP_SIZE, CROP_SIZE, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert not full[:, 0, border].any()  # the crop has room around the whole face


@pytest.mark.parametrize("index", range(len(POSE_SWEEP)))
def test_lower_mask_holds_mouth_and_chin_but_not_the_eyes(index):
    vertices = crop_vertices_for([POSE_SWEEP[index]])
    lower, full = lower_face_mask(vertices)[0], full_face_mask(vertices)[0]
    for landmark in (*topology.MOUTH_CORNERS, 13, 14, topology.CHIN):  # 13, 14: lip centres
        assert value_at(lower, vertices[0, landmark]) == 1.0
    for landmark in (*topology.RIGHT_EYE_CORNERS, *topology.LEFT_EYE_CORNERS):
        assert value_at(lower, vertices[0, landmark]) == 0.0
        assert value_at(full, vertices[0, landmark]) == 1.0


def test_dilation_default_scales_with_the_crop_and_can_be_turned_off():
    vertices = crop_vertices_for([(0, 0, 0)])
    tight = lower_face_mask(vertices, dilate_px=0)
    default = lower_face_mask(vertices)
    assert (tight <= default).all() and default.sum() > tight.sum()
    half = lower_face_mask(vertices / 2, size=CROP_SIZE // 2)
    assert float(half.mean()) == pytest.approx(float(default.mean()), rel=0.05)


def test_dilate_and_erode_match_max_pooling():
    mask = (torch.rand(2, 1, 40, 50, generator=torch.Generator().manual_seed(0)) > 0.95).float()
    for radius in (1, 4):
        reference = F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius)
        assert torch.equal(dilate(mask, radius), reference)
        assert torch.equal(erode(1 - mask, radius), 1 - reference)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dilate_and_erode_are_exact_in_half_precision(dtype):
    """The running sums exceed what float16 / bfloat16 count exactly (2048 / 256)."""
    mask = torch.zeros(1, 1, 512, 512)
    mask[..., 100:400, 100:400] = 1.0
    mask[..., 450:460, 20:500] = 1.0
    for radius in (3, 8):
        reference = F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius)
        dilated, eroded = dilate(mask.to(dtype), radius), erode((1 - mask).to(dtype), radius)
        assert dilated.dtype == eroded.dtype == dtype
        assert torch.equal(dilated.float(), reference) and torch.equal(eroded.float(), 1 - reference)


def test_feathered_mask_is_soft_at_the_edge_and_stays_inside_the_mask():
    mask = lower_face_mask(crop_vertices_for([(0, 0, 0)]))
    soft = feathered_mask(mask, erode_px=6, blur_px=6)
    assert float(soft.min()) >= 0.0 and float(soft.max()) <= 1.0
    assert float(soft[mask == 0].max()) < 1e-3  # erosion keeps the blur inside A
    assert float(erode(mask, 12).sum()) > 0 and float(soft[erode(mask, 12) == 1].min()) > 0.999
    assert ((soft > 0.05) & (soft < 0.95)).any()


def test_landmark_hull_mask_fills_the_convex_hull():
    square = torch.tensor([[[10.0, 10.0], [50.0, 10.0], [50.0, 30.0], [10.0, 30.0], [30.0, 20.0], [20.0, 25.0]]])
    mask = landmark_hull_mask(square, size=64)
    assert int(mask.sum()) == 40 * 20  # pixel centres 10.5..49.5 × 10.5..29.5
    assert mask[0, 0, 15, 15] == 1 and mask[0, 0, 5, 5] == 0


def test_extend_downward_sweeps_only_down():
    mask = torch.zeros(1, 1, 10, 5)
    mask[0, 0, 3, 2] = 1
    swept = extend_downward(mask, 4)
    assert swept[0, 0, :, 2].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert swept.sum() == 5


def test_lip_sync_mask_holds_an_opened_jaw_and_nests_in_the_swap_mask():
    """A from the neutral template covers where the chin goes when the jaw drops by the
    reach it is built for, and A ⊂ A' for every pose."""
    vertices = crop_vertices_for(POSE_SWEEP)
    lip, swap = lip_sync_mask(vertices), face_swap_mask(vertices)
    assert (lip <= swap).all()
    assert (lip >= lower_face_mask(vertices)).all()
    drop = round(CROP_SIZE * JAW_DROP_PER_CROP_SIDE)
    for index in range(len(POSE_SWEEP)):
        chin = vertices[index, topology.CHIN].clone()
        chin[1] += drop
        assert value_at(lip[index], chin) == 1.0
        for landmark in (*topology.RIGHT_EYE_CORNERS, *topology.LEFT_EYE_CORNERS):
            assert value_at(lip[index], vertices[index, landmark]) == 0.0
