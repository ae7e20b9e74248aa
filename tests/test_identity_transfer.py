"""The training-free face swap (stages.identity_transfer): the output looks like the identity,
nothing outside A' changes, `auto` says what it does in one line, and Face Swap Inject uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.stages.face_identity import face_descriptor_network
from resyncer_core.stages.functions import aligned_crops, identity_from_track, paste_back
from resyncer_core.stages.identity_transfer import (IdentityWarp, identity_texture, identity_views,
                                                    meshes_with_target_eyes, transfer_identity)
from resyncer_core.stages.warping import choose_renderer
from resyncer_core.weights import shipped_weights

FACES = Path(__file__).parent / "data" / "face"


def _image(name: str) -> np.ndarray:
    return np.array(Image.open(FACES / name).convert("RGB"))


@pytest.fixture(scope="module")
def swapped():
    """The astronaut photo (target) with face-api's sample1 face (identity) swapped in."""
    tracker = FaceTracker("cpu")
    target, identity = _image("astronaut.png"), _image("identity_still1.png")
    target_track, identity_track = tracker.track(target[None]), tracker.track(identity[None])
    crops = aligned_crops(target[None], target_track)
    meshes = torch.from_numpy(identity_track.template[None] + target_track.delta()).float()
    renderer = IdentityWarp(torch.device("cpu"), identity_texture(identity[None], identity_track))
    swapped_crops, masks, native = transfer_identity(renderer, crops, target_track, meshes)
    output, regions = paste_back(target[None], swapped_crops, target_track.crop_affine, masks, native=native)
    return {"target": target, "identity": identity, "output": output[0], "regions": regions, "tracker": tracker,
            "target_track": target_track, "identity_track": identity_track, "meshes": meshes, "crops": crops,
            "swapped_crops": swapped_crops}


def test_the_output_is_nearer_the_identity_than_the_target(swapped):
    tracker = swapped["tracker"]
    network = face_descriptor_network()

    def descriptor(image):
        return F.normalize(network(aligned_crops(image[None], tracker.track(image[None]))), dim=1)[0]

    with torch.no_grad():
        output, identity, target = (descriptor(swapped[k]) for k in ("output", "identity", "target"))
    assert float(output @ identity) > float(output @ target)


def test_nothing_outside_the_pasted_face_changes(swapped):
    target, output = swapped["target"], swapped["output"]
    (region,) = swapped["regions"]
    inside = np.zeros(target.shape[:2], bool)
    ys, xs = region.window.slices()
    inside[ys, xs] = region.weights.numpy() > 0
    assert (output[~inside] == target[~inside]).all()
    assert (output[inside] != target[inside]).any(axis=-1).mean() > 0.5  # and the face itself did change
    face = region.window
    assert face.size[0] < 0.8 * target.shape[0]  # the face, not the frame


def test_auto_on_swap_says_the_identity_is_transferred_in_one_line():
    lines = []
    assert choose_renderer("auto", shipped_weights("generator.safetensors"), lines.append, swap=True) == "warp"
    assert len(lines) == 1 and "\n" not in lines[0] and "identity transferred by the mesh warp" in lines[0]
    generator = shipped_weights("generator.safetensors")
    assert choose_renderer("generator", generator, lines.append, swap=True) == "generator"


def test_eyes_follow_the_target_and_the_mouth_the_audio():
    from resyncer_core.face import topology

    target_motion, audio = torch.zeros(1, 468, 3), torch.ones(1, 468, 3)
    meshes = meshes_with_target_eyes(audio, target_motion)
    eye, mouth = topology.RIGHT_EYE_CORNERS[0], topology.CHIN
    assert float(meshes[0, eye].abs().max()) == 0 and float(meshes[0, mouth].min()) == 1


def test_a_video_identity_keeps_the_frontal_view_and_one_per_head_turn(swapped):
    from dataclasses import replace

    from resyncer_core.stages.functions import select_frames

    track = select_frames(swapped["identity_track"], [0, 0, 0])
    assert list(identity_views(track)) == [0]  # the same pose three times: one view
    yaws = np.radians([3.0, 0.5, 14.0, 13.0, -20.0, 26.0])
    turns = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in yaws])
    track = select_frames(swapped["identity_track"], [0] * len(yaws))
    track = replace(track, pose=replace(track.pose, rotation=turns.astype(np.float32)))
    # The most frontal (0.5°), the best of the 12° bin (13°), of the −24° bin (−20°) and the 24° bin (26°).
    assert list(identity_views(track)) == [1, 3, 4, 5]


def test_face_swap_inject_node_transfers_the_identity(swapped, monkeypatch, tmp_path):
    from comfy_stubs.harness import install_comfy_stubs, load_pack_as_comfyui

    install_comfy_stubs(monkeypatch, tmp_path)
    pack = load_pack_as_comfyui()
    identity = identity_from_track(swapped["identity_track"], swapped["identity"][None], 0)
    identity.texture = identity_texture(swapped["identity"][None], swapped["identity_track"])
    # Only the file's training record is read: it was not trained for swap.
    handle = pack.nodes.common.LoadedModel(None, "cpu", str(shipped_weights("generator.safetensors")), "generator")
    images = (swapped["crops"].permute(0, 2, 3, 1) + 1) / 2
    result = pack.nodes.face_swap.ReSyncerFaceSwapInject().swap(
        handle, identity, images, images, 8, face_track=swapped["target_track"], meshes=swapped["meshes"])
    (info,) = result["ui"]["resyncer"]
    assert info["renderer"] == "mesh warp" and "identity transferred by the mesh warp" in info["warning"]
    expected = (swapped["swapped_crops"].permute(0, 2, 3, 1) + 1) / 2
    assert torch.allclose(result["result"][0], expected, atol=1e-5)
