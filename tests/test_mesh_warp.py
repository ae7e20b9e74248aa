"""The training-free mesh-warp renderer: geometry, mouth filling, the lip-sync it makes on the real
photo (re-tracked), colour fidelity, untouched pixels, and its place in the pipeline, CLI and nodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resyncer_core.face import FaceTracker
from resyncer_core.render.mesh_warp import MouthMemory, lip_gap, warp_faces
from resyncer_core.stages.functions import aligned_crops, paste_back
from resyncer_core.stages.warping import MeshWarp, choose_renderer, memory_frames, warp_crops
from resyncer_core.synth import synthetic_talking_clip
from resyncer_core.synth.mouth import jaw_meshes, photo_face
from resyncer_core.synth.portrait import load_portrait
from resyncer_core.synth.talking_clip import SPEAKING_STYLE

CLIP_FRAMES = 30
CLIP_SIZE = (320, 320)


def driving_openings(count: int) -> np.ndarray:
    """Jaw openings from closed to the synthetic speaker's widest "aa" and back, twice: a
    pattern unlike the target clip's own speech."""
    return (SPEAKING_STYLE.amplitude * (0.5 - 0.5 * np.cos(np.linspace(0, 4 * np.pi, count)))).astype(np.float32)


@pytest.fixture(scope="module")
def lipsynced():
    """The real-photo clip (the astronaut, talking and moving), its mouth re-driven by exact
    jaw meshes through the warp and blended back: input, output, pasted regions, driver meshes,
    the tracker, the input's track and ground truth."""
    frames, info = synthetic_talking_clip(CLIP_FRAMES, size=CLIP_SIZE, seed=0, motion="gentle")
    tracker = FaceTracker("cpu")
    track = tracker.track(frames, 25)
    meshes = jaw_meshes(track.template, driving_openings(CLIP_FRAMES))
    crops = aligned_crops(frames, track)
    warped, masks = warp_crops(MeshWarp(torch.device("cpu")), crops, track, meshes)
    output, regions = paste_back(frames, warped, track.crop_affine, masks)
    return frames, output, regions, meshes, tracker, track, info


def test_retracked_output_lip_gap_follows_the_driving_mesh(lipsynced):
    _, output, _, meshes, tracker, *_ = lipsynced
    retracked = tracker.track(output, 25)
    assert retracked.valid.all()
    wanted = lip_gap(torch.from_numpy(meshes)).numpy()
    seen = lip_gap(torch.from_numpy(retracked.canonical)).numpy()
    assert np.corrcoef(wanted, seen)[0, 1] >= 0.8


def test_lower_face_keeps_its_colours_on_the_real_photo(lipsynced):
    frames, output, regions, *_ = lipsynced
    for before, after, region in zip(frames, output, regions):
        ys, xs = region.window.slices()
        inside = (region.weights > 0.5).numpy()
        mean_before = before[ys, xs][inside].astype(float).mean(0)
        mean_after = after[ys, xs][inside].astype(float).mean(0)
        assert np.abs(mean_after - mean_before).max() <= 6.0, (mean_before, mean_after)


def test_pixels_outside_the_pasted_mask_are_bit_identical(lipsynced):
    frames, output, regions, *_ = lipsynced
    for before, after, region in zip(frames, output, regions):
        untouched = np.ones(before.shape[:2], bool)
        ys, xs = region.window.slices()
        untouched[ys, xs] = (region.weights == 0).numpy()
        assert np.array_equal(before[untouched], after[untouched])
        assert not np.array_equal(before, after)


def test_unchanged_mesh_gives_back_the_image():
    face = photo_face()
    image = torch.from_numpy(load_portrait().copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    tracked = torch.from_numpy(face.landmarks)[None]
    warped, changed = warp_faces(image, tracked, tracked.clone(), MouthMemory(image[:0], tracked[:0]))
    assert (warped - image).abs().max() < 1e-3  # a tenth of a level: resampled at the same places
    assert torch.equal(warped[changed.expand_as(warped) == 0], image[changed.expand_as(image) == 0])
    rows = changed[0, 0].any(1).nonzero()[:, 0]
    assert rows.min() > face.landmarks[6, 1]  # nothing above the nose bridge is touched


def test_open_mouth_without_an_open_frame_is_a_dark_cavity():
    face = photo_face()
    image = torch.full((1, 3, 288, 288), 0.5)
    tracked = torch.from_numpy(face.landmarks)[None]
    closed = tracked.clone()
    closed[:, [95, 88, 178, 87, 14, 317, 402, 318, 324]] = closed[:, [191, 80, 81, 82, 13, 312, 311, 310, 415]]
    opened = torch.from_numpy(_posed(face, jaw_meshes(face.canonical, np.array([1.0]))))
    warped, _ = warp_faces(image, closed, opened, MouthMemory(image[:0], tracked[:0]))
    mouth_centre = opened[0, [13, 14], :2].mean(0).long()
    red, green, blue = warped[0, :, mouth_centre[1], mouth_centre[0]]
    assert max(red, green, blue) < -0.2 and red > green  # a dark red cavity, not the grey image


def _posed(face, meshes: np.ndarray) -> np.ndarray:
    from resyncer_core.face.canonical import from_canonical

    return from_canonical(torch.from_numpy(meshes), face.pose).numpy()


def test_memory_keeps_the_widest_and_closest_mouths():
    meshes = torch.zeros(20, 468, 2)
    meshes[:, 14, 1] = torch.arange(20.0)  # lip gap = frame index
    track_like = MouthMemory.from_frames(torch.zeros(20, 3, 4, 4), meshes, size=5)
    gaps = lip_gap(track_like.meshes)
    assert len(track_like) == 5 and gaps.max() == 19 and gaps.min() == 0
    assert lip_gap(track_like.meshes[track_like.choose(torch.tensor([18.0]))]).item() == 19


def test_memory_frames_are_spread_over_the_clips_openings(lipsynced):
    *_, track, info = lipsynced
    chosen = memory_frames(track, size=4)
    assert len(chosen) == 4
    assert info.mouth_opening[chosen].min() < 0.02 and info.mouth_opening[chosen].max() > 0.8 * info.mouth_opening.max()


def _write_random_generator(path, random: bool, metadata: dict[str, str] | None = None):
    from resyncer_core.models.checkpoint import INITIALISATION_KEY, save_checkpoint
    from resyncer_core.models.presets import preset_config
    from resyncer_core.models.registry import model_kind

    config = preset_config("tiny", "generator")
    model = model_kind("generator").load_classes()[0](config)
    extra = {**({INITIALISATION_KEY: "random"} if random else {}), **(metadata or {})}
    save_checkpoint(model, config, "generator", path, extra_metadata=extra)
    return path


def test_auto_renderer_replaces_an_untrained_generator_and_says_so(tmp_path):
    lines = []
    untrained = _write_random_generator(tmp_path / "random.safetensors", random=True)
    trained = _write_random_generator(tmp_path / "trained.safetensors", random=False)
    assert choose_renderer("auto", untrained, lines.append) == "warp"
    assert len(lines) == 1 and "random initialisation" in lines[0] and "\n" not in lines[0]
    assert choose_renderer("auto", trained, lines.append) == "generator"
    assert choose_renderer("auto", tmp_path / "missing.safetensors", lines.append) == "generator"  # loader says so
    assert choose_renderer("generator", untrained, lines.append) == "generator" and len(lines) == 1
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a checkpoint")
    assert choose_renderer("auto", corrupt, lines.append) == "generator"  # its loader names the problem


def test_auto_renderer_reports_a_file_the_loader_would_refuse_instead_of_warping(tmp_path):
    """A Style-SyncFormer file in the generator's place, or an "untrained" generator whose
    tensors do not match its config, is the user's mistake: one line naming it, never a
    silent switch to the mesh warp (issue 24)."""
    from safetensors.torch import load_file, save_file

    from resyncer_core.errors import CheckpointError
    from resyncer_core.models.checkpoint import INITIALISATION_KEY, read_checkpoint_metadata, save_checkpoint
    from resyncer_core.models.presets import preset_config
    from resyncer_core.models.registry import model_kind

    config = preset_config("tiny", "syncformer")
    syncformer = save_checkpoint(model_kind("syncformer").load_classes()[0](config), config, "syncformer",
                                 tmp_path / "generator.safetensors", {INITIALISATION_KEY: "random"})  # as models init marks it
    with pytest.raises(CheckpointError, match="holds a syncformer model, not a generator"):
        choose_renderer("auto", syncformer, print)
    untrained = _write_random_generator(tmp_path / "random.safetensors", random=True)
    tensors = load_file(untrained)
    name = next(iter(tensors))
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 1)
    save_file(tensors, tmp_path / "reshaped.safetensors", metadata=read_checkpoint_metadata(untrained))
    with pytest.raises(CheckpointError, match=f"tensor '{name}' has shape"):
        choose_renderer("auto", tmp_path / "reshaped.safetensors", print)
    assert read_checkpoint_metadata(tmp_path / "reshaped.safetensors")[INITIALISATION_KEY] == "random"


def test_auto_renderer_swaps_only_with_a_swap_trained_generator(tmp_path):
    """For a face swap, a generator whose training record is a stage-2 run's (no identity
    weight) is replaced by the warp with one line; a swap run's, or a file with no record, is
    used."""
    import json

    from resyncer_core.models.checkpoint import TRAINING_CONFIG_KEY

    stage2 = _write_random_generator(tmp_path / "stage2.safetensors", False,
                                     {TRAINING_CONFIG_KEY: json.dumps({"lower_face_weight": 5.0})})
    swap = _write_random_generator(tmp_path / "swap.safetensors", False,
                                   {TRAINING_CONFIG_KEY: json.dumps({"identity_weight": 1.0})})
    unrecorded = _write_random_generator(tmp_path / "plain.safetensors", False)
    lines = []
    assert choose_renderer("auto", stage2, lines.append) == "generator" and not lines  # lip-sync: fine
    assert choose_renderer("auto", stage2, lines.append, swap=True) == "warp"
    assert len(lines) == 1 and "not trained for face swap" in lines[0]
    assert choose_renderer("auto", swap, lines.append, swap=True) == "generator"
    assert choose_renderer("auto", unrecorded, lines.append, swap=True) == "generator" and len(lines) == 1


def test_auto_renderer_keeps_a_face_specific_generator_to_its_faces(lipsynced, tmp_path):
    """A generator that records the few faces it was trained on renders a video of one of them;
    for another face (here a descriptor at cosine 0.9, as close as different people get) auto
    takes the warp and says why in one line; crops without a face change nothing."""
    from resyncer_core.stages.face_identity import face_descriptor_network, mean_face_descriptor, trained_faces_metadata
    from resyncer_core.stages.functions import select_frames

    frames, *_, track, _ = lipsynced
    crops = aligned_crops(frames[:4], select_frames(track, np.arange(4)))
    own = mean_face_descriptor(face_descriptor_network(), crops)
    across = np.random.default_rng(0).standard_normal(own.shape).astype(np.float32)
    across -= (across @ own) * own
    other = 0.9 * own + np.sqrt(1 - 0.81) * across / np.linalg.norm(across)
    same_face = _write_random_generator(tmp_path / "same.safetensors", False, trained_faces_metadata([other, own]))
    other_face = _write_random_generator(tmp_path / "other.safetensors", False, trained_faces_metadata([other]))
    lines = []
    assert choose_renderer("auto", same_face, lines.append, lambda: crops) == "generator" and not lines
    assert choose_renderer("auto", other_face, lines.append, lambda: crops) == "warp"
    assert len(lines) == 1 and "trained on 1 face(s) only" in lines[0] and "0.90 < 0.97" in lines[0]
    assert choose_renderer("auto", other_face, lines.append, lambda: crops[:0]) == "generator"
    assert choose_renderer("generator", other_face, lines.append, lambda: crops) == "generator" and len(lines) == 1


def test_cli_drive_with_the_warp_needs_no_models_and_times_its_stages(tmp_path_factory, tmp_path, capsys):
    from _pipeline_media import talking_clip

    from resyncer_core.cli import main

    target, driver = talking_clip(tmp_path_factory, 0.6, seed=0), talking_clip(tmp_path_factory, 0.6, seed=1)
    output = tmp_path / "out.mp4"
    assert main(["drive", "--video", str(target), "--driver", str(driver), "-o", str(output), "--renderer", "warp",
                 "--models", str(tmp_path / "no_such_folder")]) == 0
    summary = capsys.readouterr().out
    assert output.exists() and "warp " in summary and "generator" not in summary  # only the renderer that ran


def test_mesh_warp_node_matches_the_generator_nodes_crops_socket(lipsynced):
    from resyncer_core.stages.functions import select_frames

    from nodes.common import uint8_to_image
    from nodes.mesh_warp import ReSyncerMeshWarp

    frames, *_, clip_track, _ = lipsynced
    track = select_frames(clip_track, np.arange(4))
    crops = (aligned_crops(frames[:4], track) + 1) / 2
    meshes = jaw_meshes(track.template, np.array([0.0, 0.3, 0.6, 1.0]))
    images, mask = ReSyncerMeshWarp().warp(crops.permute(0, 2, 3, 1), track, meshes, "mouth", 2, "cpu")
    assert images.shape == (4, 256, 256, 3) and mask.shape == (4, 256, 256)
    assert torch.equal(images[mask == 0], crops.permute(0, 2, 3, 1)[mask == 0])
    assert not torch.equal(images, uint8_to_image(np.zeros((4, 256, 256, 3), np.uint8)))


def test_generator_node_with_an_untrained_checkpoint_uses_the_warp(lipsynced, tmp_path, caplog):
    from resyncer_core.models.checkpoint import load_checkpoint
    from resyncer_core.stages.functions import select_frames

    from nodes.common import LoadedModel
    from nodes.generator import ReSyncerGenerator
    from nodes.mesh_warp import ReSyncerMeshWarp

    frames, *_, clip_track, _ = lipsynced
    track = select_frames(clip_track, np.arange(2))
    crops = ((aligned_crops(frames[:2], track) + 1) / 2).permute(0, 2, 3, 1)
    meshes = jaw_meshes(track.template, np.array([0.0, 1.0]))
    path = _write_random_generator(tmp_path / "generator.safetensors", random=True)
    handle = LoadedModel(load_checkpoint(path, kind="generator")[0], "cpu", str(path), "generator")
    with caplog.at_level("WARNING", logger="resyncer.nodes"):
        returned = ReSyncerGenerator().generate(handle, crops, crops, 2, face_track=track, meshes=meshes)
    warped, _ = ReSyncerMeshWarp().warp(crops, track, meshes, "mouth", 2, "cpu")
    (generated,) = returned["result"]
    assert torch.equal(generated, warped)
    assert len(caplog.records) == 1 and "random initialisation" in caplog.records[0].getMessage()
    # The node says so on itself too (web/resyncer.js shows the warning under the node).
    (info,) = returned["ui"]["resyncer"]
    assert info == {"renderer": "mesh warp", "warning": caplog.records[0].getMessage().removeprefix("ReSyncer: ")}
