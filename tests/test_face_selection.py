"""Several faces in view: the face rule (largest, center, index N) picks one, the tracker
follows it from frame to frame, the CLI edits that one and says so, and --face changes it."""

from __future__ import annotations

import numpy as np
import pytest

from _pipeline_media import speech_wav, tiny_models, two_face_clip
from resyncer_core.cli import main
from resyncer_core.errors import ResyncerInputError
from resyncer_core.face.detector import FaceDetection
from resyncer_core.face.selection import FaceChoice, FaceSelector
from resyncer_core.video import read_frames

FRAME = (240, 400)  # (height, width)


def _detection(x0: float, y0: float, size: float, score: float = 0.9) -> FaceDetection:
    return FaceDetection(np.array([x0, y0, x0 + size, y0 + size], np.float32), np.zeros((6, 2), np.float32), score)


LEFT_BIG, MIDDLE_SMALL, RIGHT_MEDIUM = _detection(10, 60, 90), _detection(180, 100, 40), _detection(300, 80, 60)
FACES = [RIGHT_MEDIUM, LEFT_BIG, MIDDLE_SMALL]  # detector order is by score, not position


@pytest.mark.parametrize("text, expected", [
    ("largest", LEFT_BIG), ("center", MIDDLE_SMALL), ("index 0", LEFT_BIG), ("index 1", MIDDLE_SMALL),
    ("index:2", RIGHT_MEDIUM), ("2", RIGHT_MEDIUM), ("index 3", None)])
def test_the_rule_picks_among_fresh_detections(text, expected):
    assert FaceSelector(FaceChoice.parse(text)).pick(FACES, FRAME) is expected


@pytest.mark.parametrize("text", ["tallest", "index", "index -1", "index one", ""])
def test_unknown_rules_are_one_line_errors(text):
    with pytest.raises(ResyncerInputError, match="face"):
        FaceChoice.parse(text)


def test_a_lost_face_is_picked_up_again_near_where_it_was_not_by_the_rule():
    selector = FaceSelector(FaceChoice("largest"))
    counts = []
    selector.on_count = counts.append
    # Following the medium face on the right: it was last seen there, 60 px wide.
    selector.follow(np.array([[300.0, 80.0], [360.0, 140.0]]))
    assert selector.pick(FACES, FRAME) is RIGHT_MEDIUM
    # Nothing near the last position: the rule decides afresh.
    assert selector.pick([LEFT_BIG, MIDDLE_SMALL], FRAME) is LEFT_BIG
    assert counts == [3, 2]


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_faces")
    return tiny_models(tmp_path_factory), two_face_clip(folder / "two.mp4", 10), speech_wav(folder / "s.wav", 0.4)


def _edited_side(source, output) -> str:
    """Which half of the frame the output changed: the untrained generator paints noise over
    the mouth, far beyond the re-encoding's few levels of difference elsewhere."""
    change = np.abs(read_frames(output).astype(np.int16) - read_frames(source).astype(np.int16)).max(axis=3)
    changed = (change > 40).sum(axis=(0, 1))  # per column
    left, right = int(changed[:200].sum()), int(changed[200:].sum())
    assert max(left, right) > 10 * min(left, right), (left, right)
    return "left" if left > right else "right"


@pytest.mark.parametrize("face, side, described", [
    (None, "left", "the largest face"), (["--face", "index", "1"], "right", "face 1 from the left"),
    (["--face", "index", "0"], "left", "face 0 from the left")], ids=["default-largest", "index-1", "index-0"])
def test_the_cli_edits_the_face_the_rule_picks_and_reports_it(two_faces, tmp_path, capsys, face, side, described):
    models, clip, speech = two_faces
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output), "--models", str(models),
                 "--x264-preset", "ultrafast", "--crf", "10", *(face or [])]) == 0
    assert f"up to 2 faces in view: edited {described}" in capsys.readouterr().out
    assert _edited_side(clip, output) == side


@pytest.mark.parametrize("face, face_index, centre_x", [("largest", 0, 100), ("index", 1, 300)])
def test_track_face_node_follows_the_face_its_inputs_choose(two_faces, tmp_path, face, face_index, centre_x):
    import torch
    from comfy_stubs.harness import load_pack_as_comfyui

    from resyncer_core.graph import context

    node = load_pack_as_comfyui().NODE_CLASS_MAPPINGS["ReSyncerTrackFace"]()
    images = torch.from_numpy(read_frames(two_faces[1], stop=4)).float() / 255
    with context.scoped(temp_dir=tmp_path):  # the preview sheet
        returned = node.track(images, 25.0, face=face, face_index=face_index, device="cpu")
    track, info = returned["result"][0], returned["ui"]["resyncer"][0]
    assert track.valid.all()
    assert abs(track.landmarks[..., 0].mean() - centre_x) < 30
    assert info["faces_in_view"] == 2
