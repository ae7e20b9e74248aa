"""The PyTorch port of MediaPipe's face detector and face-mesh network against MediaPipe itself.

References come from tests/data/face/mediapipe_reference.npz, written by
tools/compare_mediapipe.py with mediapipe 0.10.21 (see tests/data/face/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.face.detector import (BlazeFaceShortRange, FaceDetector, ssd_anchor_centers,
                                         weighted_non_max_suppression)
from resyncer_core.face.landmark_model import FaceLandmarkModel
from resyncer_core.face.roi_warp import SquareRois, crop_square_rois

DATA = Path(__file__).parent / "data" / "face"
WEIGHTS = Path(__file__).parent.parent / "resyncer_core" / "face" / "weights"
STORED_IMAGES = ["astronaut", "rotated_plus20", "rotated_minus20", "half_scale"]
DERIVED_IMAGES = ["mirrored", "darker", "wide", "tall"]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(DATA / "mediapipe_reference.npz") as archive:
        return dict(archive)


def load_image(name: str) -> np.ndarray:
    """A fixture image; the derived variants are rebuilt exactly as compare_mediapipe.py makes them."""
    if name in STORED_IMAGES:
        return np.asarray(Image.open(DATA / f"{name}.png").convert("RGB"))
    astronaut = load_image("astronaut")
    return {
        "mirrored": lambda: np.ascontiguousarray(astronaut[:, ::-1]),
        "darker": lambda: np.round(astronaut * 0.6).astype(np.uint8),
        "wide": lambda: np.ascontiguousarray(astronaut[30:230]),
        "tall": lambda: np.ascontiguousarray(astronaut[:, 61:261]),
    }[name]()


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (landmarks 33 and 263), in pixels."""
    return float(np.linalg.norm(landmarks[33, :2] - landmarks[263, :2]))


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker("cpu")


def test_shipped_weights_are_small_float16_with_their_source(tracker):
    from safetensors import safe_open

    for name, source in (("face_detection_short_range", "face_detection_short_range.tflite"),
                         ("face_landmark", "face_landmark.tflite")):
        path = WEIGHTS / f"{name}.safetensors"
        assert path.stat().st_size < 1_500_000
        with safe_open(str(path), "pt") as weights:
            assert weights.metadata()["source"] == source
            assert len(weights.metadata()["source_sha256"]) == 64
            assert all(weights.get_slice(key).get_dtype() == "F16" for key in weights.keys())
    assert (WEIGHTS / "LICENSE").read_text().startswith(" " * 33 + "Apache License")
    assert "MediaPipe" in (WEIGHTS / "NOTICE").read_text()


def test_detector_network_reproduces_tflite_outputs(reference):
    network = FaceDetector("cpu").network
    image = torch.from_numpy(reference["raw/detector_input"]).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        regressions, logits = network(image / 127.5 - 1.0)
    np.testing.assert_allclose(regressions[0].numpy(), reference["raw/detector_regressors"], atol=2e-3)
    np.testing.assert_allclose(logits[0].numpy(), reference["raw/detector_logits"], atol=2e-3)


def test_landmark_network_reproduces_tflite_outputs(reference):
    network = FaceLandmarkModel("cpu").network
    image = torch.from_numpy(reference["raw/landmark_input"]).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        landmarks, presence_logits = network(image / 255.0)
    np.testing.assert_allclose(landmarks[0].reshape(-1).numpy(), reference["raw/landmarks"], atol=2e-3)
    np.testing.assert_allclose(presence_logits.numpy(), reference["raw/presence_logit"], atol=2e-3)


def test_ssd_anchors_follow_mediapipe_layout():
    anchors = ssd_anchor_centers()
    assert anchors.shape == (896, 2)
    # Stride 8: 16×16 cells, two anchors each, row-major; then stride 16: 8×8 cells, six each.
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[512 + 6], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])
    assert BlazeFaceShortRange()(torch.zeros(2, 3, 128, 128))[0].shape == (2, 896, 16)


def test_weighted_nms_blends_overlapping_boxes_and_keeps_the_best_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keypoints = np.arange(3 * 6 * 2, dtype=np.float32).reshape(3, 6, 2)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    merged = weighted_non_max_suppression(boxes, keypoints, scores, iou_threshold=0.3)
    assert [score for _, _, score in merged] == pytest.approx([0.9, 0.7])
    np.testing.assert_allclose(merged[0][0], (boxes[0] * 0.6 + boxes[1] * 0.9) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(merged[0][1], (keypoints[0] * 0.6 + keypoints[1] * 0.9) / 1.5, rtol=1e-6)
    np.testing.assert_array_equal(merged[1][0], boxes[2])


def test_crop_replicates_or_zeroes_outside_the_frame():
    frame = torch.arange(16, dtype=torch.uint8).reshape(1, 4, 4, 1) * 10
    # A 4×4 ROI covering the frame exactly reads pixel centres 0..3: the identity.
    identity = SquareRois(torch.tensor([[2.0, 2.0]]), torch.tensor([4.0]), torch.tensor([0.0]))
    np.testing.assert_array_equal(crop_square_rois(frame, identity, 4, "zero")[0, 0], frame[0, :, :, 0].float())
    # Shifted one pixel left: the first column lies outside the frame.
    shifted = SquareRois(torch.tensor([[1.0, 2.0]]), torch.tensor([4.0]), torch.tensor([0.0]))
    zero = crop_square_rois(frame, shifted, 4, "zero")[0, 0]
    replicate = crop_square_rois(frame, shifted, 4, "replicate")[0, 0]
    np.testing.assert_array_equal(zero[:, 0], torch.zeros(4))
    np.testing.assert_array_equal(replicate[:, 0], frame[0, :, 0, 0].float())
    np.testing.assert_array_equal(zero[:, 1:], frame[0, :, :3, 0].float())


@pytest.mark.parametrize("name", STORED_IMAGES + DERIVED_IMAGES)
def test_detect_agrees_with_mediapipe(tracker, reference, name):
    """FaceMesh (static images) landmarks and FaceDetection boxes, per fixture image.

    Achieved on this fixture set: mean 2D landmark error ≤ 0.002 % of the inter-ocular distance,
    boxes and keypoints within 0.001 px, scores within 1e-6 (the crops reproduce OpenCV's
    fixed-point resampling exactly). The bounds leave room for other CPUs' float rounding.
    """
    observation = tracker.detect(load_image(name))
    assert observation is not None
    expected = reference[f"{name}/landmarks"]
    scale = inter_ocular(expected)
    assert observation.landmarks.shape == (468, 3) and observation.landmarks.dtype == np.float32
    error_2d = np.linalg.norm(observation.landmarks[:, :2] - expected[:, :2], axis=1).mean() / scale
    error_z = np.abs(observation.landmarks[:, 2] - expected[:, 2]).mean() / scale
    assert error_2d < 0.001  # brief: < 1 % of the inter-ocular distance
    assert error_z < 0.001
    np.testing.assert_allclose(observation.box, reference[f"{name}/box"], atol=0.25)
    np.testing.assert_allclose(observation.keypoints, reference[f"{name}/keypoints"], atol=0.25)
    assert observation.detection_score == pytest.approx(float(reference[f"{name}/score"]), abs=1e-3)
    assert observation.score > 0.9


@pytest.mark.skipif(not os.environ.get("RESYNCER_MEDIAPIPE_WHEEL"),
                    reason="set RESYNCER_MEDIAPIPE_WHEEL to the mediapipe 0.10.21 wheel to check the converter")
def test_converter_reproduces_the_shipped_weights(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
    import convert_mediapipe

    assert convert_mediapipe.main([os.environ["RESYNCER_MEDIAPIPE_WHEEL"], "--out", str(tmp_path)]) == 0
    for name in ("face_detection_short_range", "face_landmark"):
        shipped = (WEIGHTS / f"{name}.safetensors").read_bytes()
        assert (tmp_path / f"{name}.safetensors").read_bytes() == shipped


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_detect_matches_cpu(tracker):
    image = load_image("rotated_plus20")
    on_cpu = tracker.detect(image)
    on_cuda = FaceTracker("cuda").detect(image)
    np.testing.assert_allclose(on_cuda.landmarks, on_cpu.landmarks, atol=0.05)
    np.testing.assert_allclose(on_cuda.box, on_cpu.box, atol=0.05)
