"""The synthetic talking-head corpus: reproducible, streamable, and its mouth really moves."""

from __future__ import annotations

import numpy as np
import pytest

from resyncer_core.errors import ResyncerInputError
from resyncer_core.synth import SpeechPlan, iter_synthetic_talking_clip, synthetic_talking_clip, write_synthetic_clip
from resyncer_core.synth.portrait import load_portrait
from resyncer_core.video import probe_video, read_frames

SIZE = (72, 128)


def test_clip_has_requested_size_and_frame_count():
    frames, info = synthetic_talking_clip(7, fps=25, size=SIZE, seed=3)
    assert frames.shape == (7, *SIZE, 3) and frames.dtype == np.uint8
    assert info.frame_count == 7 and info.size == SIZE and info.fps == 25
    assert info.keypoints.shape == (7, 5, 2) and info.face_box.shape == (7, 4) and info.head_pose.shape == (7, 4)


def test_clip_is_deterministic_for_a_seed_and_differs_across_seeds():
    first, first_info = synthetic_talking_clip(6, size=SIZE, seed=5)
    again, again_info = synthetic_talking_clip(6, size=SIZE, seed=5)
    other, _ = synthetic_talking_clip(6, size=SIZE, seed=6)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_info.keypoints, again_info.keypoints)
    assert not np.array_equal(first, other)


def test_streamed_chunks_equal_the_one_shot_clip():
    whole, _ = synthetic_talking_clip(11, size=SIZE, seed=1, motion="lively")
    chunks = list(iter_synthetic_talking_clip(11, size=SIZE, seed=1, motion="lively", chunk_size=4))
    assert [len(chunk) for chunk in chunks] == [4, 4, 3]
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_mouth_follows_the_speech_envelope_of_the_same_seed():
    """The rig shapes the mouth from the plan's phones, so the mouth opens when the voice is loud
    (not in proportion: an "ee" or "oo" is loud with a small opening)."""
    fps, frame_count = 25, 50
    _, info = synthetic_talking_clip(frame_count, fps=fps, size=SIZE, seed=2)
    plan = SpeechPlan.generate(frame_count / fps, seed=2)
    assert np.corrcoef(info.mouth_opening, plan.envelope(np.arange(frame_count) / fps))[0, 1] > 0.4
    assert info.mouth_opening.max() > 0.4 and info.mouth_opening.min() < 0.02


def test_clip_ground_truth_meshes_are_the_ones_shown():
    """Re-tracking a frame finds the mesh the ground truth says was drawn."""
    from resyncer_core.face import FaceTracker

    frames, info = synthetic_talking_clip(20, size=(360, 640), seed=0, motion="gentle")
    index = int(np.argmax(info.mouth_opening))
    found = FaceTracker("cpu").detect(frames[index])
    error = np.linalg.norm(found.landmarks[:, :2] - info.landmarks[index, :, :2], axis=-1)
    face_height = np.ptp(info.landmarks[index, :, 1])
    assert np.median(error) < 0.03 * face_height


def test_opening_the_mouth_changes_the_lower_face_and_nothing_far_from_it():
    frames, info = synthetic_talking_clip(40, size=(256, 256), seed=0, motion="still")
    open_index, closed_index = int(np.argmax(info.mouth_opening)), int(np.argmin(info.mouth_opening))
    difference = np.abs(frames[open_index].astype(int) - frames[closed_index]).sum(axis=-1)
    x0, y0, x1, y1 = info.face_box[closed_index].astype(int)
    mouth_x, mouth_y = info.keypoints[closed_index, 3].astype(int)
    assert difference[mouth_y - 5:mouth_y + 10, mouth_x - 10:mouth_x + 10].mean() > 30
    assert difference[:y0 + (y1 - y0) // 3].max() == 0  # hair, forehead and eyes untouched
    assert info.keypoints[open_index, 4, 1] > info.keypoints[closed_index, 4, 1]  # the chin drops


def test_head_moves_smoothly_with_gentle_motion():
    _, info = synthetic_talking_clip(25, size=SIZE, seed=0, motion="gentle")
    steps = np.abs(np.diff(info.head_pose, axis=0))
    assert steps[:, 0].max() < 1.0  # degrees per frame
    assert np.ptp(info.head_pose[:, 0]) > 0.1  # but it does move


def test_bundled_face_photo_loads():
    photo = load_portrait()
    assert photo.shape == (288, 288, 3) and photo.dtype == np.uint8


@pytest.mark.parametrize("kwargs", [{"frame_count": 0}, {"size": (8, 8)}, {"motion": "wild"}, {"fps": -1}])
def test_bad_clip_arguments_raise_one_line(kwargs):
    arguments = {"frame_count": 3, "size": SIZE, **kwargs}
    with pytest.raises(ResyncerInputError) as excinfo:
        synthetic_talking_clip(**arguments)
    assert "\n" not in str(excinfo.value)


def test_written_clip_has_matching_video_and_audio(tmp_path):
    path = write_synthetic_clip(tmp_path / "clip.mp4", seconds=1.0, fps=25, size=(64, 96), seed=4)
    info = probe_video(path)
    assert info.frame_count == 25 and info.fps == 25 and (info.height, info.width) == (64, 96) and info.has_audio
    frames, _ = synthetic_talking_clip(25, fps=25, size=(64, 96), seed=4)
    mse = np.mean((read_frames(path).astype(float) - frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30


@pytest.mark.slow
def test_ten_second_720p_clip_streams_to_a_file(tmp_path):
    path = write_synthetic_clip(tmp_path / "720p.mp4", seconds=10.0, fps=25, size=(720, 1280))
    info = probe_video(path)
    assert info.frame_count == 250 and (info.height, info.width) == (720, 1280)


def test_face_tracker_finds_the_face_and_sees_the_mouth_open():
    """The point of using a real photo: the real detector and landmark network find the face
    where the ground truth says, and their lip landmarks part when the mouth opens."""
    from resyncer_core.face import FaceTracker

    frames, info = synthetic_talking_clip(30, size=(360, 640), seed=0, motion="gentle")
    closed_index, open_index = int(np.argmin(info.mouth_opening)), int(np.argmax(info.mouth_opening))
    closed, opened = FaceTracker("cpu").detect_many([frames[closed_index], frames[open_index]])
    assert closed is not None and opened is not None
    x0, y0, x1, y1 = info.face_box[closed_index]
    nose = closed.landmarks[1, :2]  # MediaPipe mesh vertex 1: the nose tip
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1

    def lip_gap(observation):  # vertices 13 and 14: inner upper and lower lip, mid-line
        return np.linalg.norm(observation.landmarks[13, :2] - observation.landmarks[14, :2])

    assert lip_gap(opened) > lip_gap(closed) + 3
