"""The whole face-geometry chain on a real photo: tracker → FaceTrack → crop → render → overlay."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.face.alignment import crop_points, warp_to_crop
from resyncer_core.face.masks import full_face_mask, landmark_hull_mask, lower_face_mask
from resyncer_core.face.topology import triangles
from resyncer_core.render import get_renderer, mesh_overlay

ASTRONAUT = Path(__file__).parent / "data" / "face" / "astronaut.png"


@pytest.fixture(scope="module")
def astronaut_track():
    image = np.array(Image.open(ASTRONAUT).convert("RGB"))
    track = FaceTracker().track(image[None], fps=25, smoothing=0)
    assert track.valid.all()
    return image, track


def test_rendered_tracked_mesh_covers_the_real_face(astronaut_track):
    """Mesh coverage vs the hull of the tracked landmarks in the crop: IoU ≥ 0.9 (issue 3)."""
    _, track = astronaut_track
    vertices = track.mesh_in_crop()
    coverage = get_renderer("torch").render(vertices, torch.tensor(triangles()), 256).coverage > 0
    landmarks_in_crop = crop_points(torch.tensor(track.landmarks), torch.tensor(track.crop_affine))
    hull = landmark_hull_mask(landmarks_in_crop, 256) > 0
    iou = float((coverage & hull).sum() / (coverage | hull).sum())
    assert iou >= 0.9, iou


def test_overlay_paints_white_mesh_only_inside_the_lower_face_mask(astronaut_track):
    image, track = astronaut_track
    frames = torch.as_tensor(image)[None].permute(0, 3, 1, 2).float() / 127.5 - 1
    crops = warp_to_crop(frames, torch.as_tensor(track.crop_affine))
    vertices = track.mesh_in_crop()
    rendered = get_renderer("torch").render(vertices, torch.tensor(triangles()), 256)
    mask = lower_face_mask(vertices)
    overlay = mesh_overlay(crops, rendered.image, mask)
    outside = mask == 0
    assert torch.equal(overlay.masked_select(outside), crops.masked_select(outside))
    assert bool((mask <= full_face_mask(vertices)).all())
    inside = (mask == 1).expand_as(overlay)
    assert inside.any() and torch.equal(overlay[inside], rendered.image[inside])
    assert float((rendered.coverage * mask).sum()) > 0.5 * float(mask.sum())  # the mesh fills most of A
