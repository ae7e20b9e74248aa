"""`resyncer train stage2 | swap` and `resyncer eval` on a tiny preprocessed dataset (two
synthetic speakers): the losses fall on a fixed tiny set, the generators load into
`resyncer lipsync --generator`, a resumed stage-2 run equals an uninterrupted one, and eval
prints its table. Runs are a handful of steps: the tiny generator is still 256², and each
step on one CPU core takes about a second."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from _pipeline_media import speech_wav, talking_clip, tiny_models, two_speaker_dataset
from resyncer_core.cli import main
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.stages.face_identity import trained_faces

# Batch 1 and an EMA that follows the weights closely: a few steps must show learning.
FAST = ["--batch-size", "1", "--log-every", "1", "--validation-clips", "0", "--lr", "2e-3", "--ema-decay", "0.5"]


@pytest.fixture(scope="module")
def image_data(tmp_path_factory):
    return two_speaker_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def stage2_run(image_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("stage2") / "run"
    assert main(["train", "stage2", "--data", str(image_data), "-o", str(run), "--steps", "6", *FAST,
                 "--sample-every", "3", "--checkpoint-every", "3"]) == 0
    return run


def records(run_dir, kind="train"):
    return [r for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_stage2_loss_falls_and_writes_generator_discriminator_and_samples(stage2_run):
    l1 = [record["l1"] for record in records(stage2_run)]
    assert len(l1) == 6
    assert np.mean(l1[-2:]) < 0.7 * np.mean(l1[:2])
    assert all({"perceptual", "g_adversarial", "d_loss"} <= set(record) for record in records(stage2_run))
    generator, _ = load_checkpoint(stage2_run / "generator.safetensors", kind="generator")
    load_checkpoint(stage2_run / "discriminator.safetensors", kind="discriminator")
    # The exported generator is the EMA, not the raw weights of the last step.
    raw = load_file(str(sorted((stage2_run / "checkpoints").iterdir())[-1] / "weights.safetensors"))
    ema = {name[len("generator_ema/"):]: value for name, value in raw.items() if name.startswith("generator_ema/")}
    name = next(iter(ema))
    assert torch.equal(generator.state_dict()[name], ema[name])
    # Two speakers (both the astronaut): the file records both faces for `--renderer auto`.
    assert trained_faces(stage2_run / "generator.safetensors").shape == (2, 128)
    grid = np.asarray(Image.open(stage2_run / "samples" / "step-00000006.png"))
    assert grid.shape == (4 * 256, 4 * 256, 3)  # rows: samples; columns: overlay, reference, output, target


def test_stage2_generator_drives_lipsync(stage2_run, tmp_path_factory, tmp_path):
    video = talking_clip(tmp_path_factory, 0.8, seed=0)
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(video), "--audio", str(speech_wav(tmp_path / "a.wav", 0.8)),
                 "-o", str(output), "--models", str(tiny_models(tmp_path_factory)),
                 "--generator", str(stage2_run / "generator.safetensors")]) == 0
    assert output.stat().st_size > 0


def test_stage2_resume_equals_an_uninterrupted_run(image_data, stage2_run, tmp_path):
    """Steps 1–3, stop, resume to 6 == the fixture's 6 uninterrupted steps (same seed): generator,
    discriminator, EMA and both optimisers' states."""
    run = tmp_path / "run"
    common = ["train", "stage2", "--data", str(image_data), "-o", str(run), *FAST, "--sample-every", "3",
              "--checkpoint-every", "3"]
    assert main([*common, "--steps", "3"]) == 0
    assert main([*common, "--steps", "6", "--resume"]) == 0
    for name in ("weights.safetensors", "optimizer.safetensors"):
        resumed = load_file(str(run / "checkpoints" / "step-00000006" / name))
        straight = load_file(str(stage2_run / "checkpoints" / "step-00000006" / name))
        assert resumed.keys() == straight.keys()
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    # The sample grid of step 6 was drawn by the same generator in both runs.
    assert np.array_equal(np.asarray(Image.open(run / "samples" / "step-00000006.png")),
                          np.asarray(Image.open(stage2_run / "samples" / "step-00000006.png")))


def test_swap_training_lowers_its_loss_and_keeps_a_lipsync_generator(image_data, stage2_run, tmp_path):
    run = tmp_path / "swap"
    assert main(["train", "swap", "--data", str(image_data), "-o", str(run), "--init",
                 str(stage2_run / "generator.safetensors"), "--steps", "4", *FAST, "--sample-every", "4",
                 "--checkpoint-every", "4", "--perceptual-weight", "0"]) == 0
    logged = records(run)
    assert all({"identity", "feature_matching", "l1"} <= set(record) for record in logged)
    losses = [record["loss"] for record in logged]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    generator, config = load_checkpoint(run / "generator.safetensors", kind="generator")
    assert config == load_checkpoint(stage2_run / "generator.safetensors", kind="generator")[1]
    assert (run / "samples" / "step-00000004.png").is_file()


def test_swap_needs_two_speakers(image_data, stage2_run, tmp_path, capsys):
    single = tmp_path / "single"
    single.mkdir()
    index = (image_data / "index.jsonl").read_text().splitlines()[:1]
    (single / "index.jsonl").write_text("\n".join(index) + "\n")
    (single / "clips").symlink_to(image_data / "clips")
    code = main(["train", "swap", "--data", str(single), "-o", str(tmp_path / "run"), "--init",
                 str(stage2_run / "generator.safetensors"), "--steps", "1", *FAST])
    assert code == 2
    assert "two speakers" in capsys.readouterr().err


def test_stage2_switches_to_predicted_meshes_and_eval_prints_the_table(image_data, stage2_run, tmp_path, capsys):
    """Stage 1 trained for two steps on the same clips; stage 2 continued from the fixture's
    generator with the Style-SyncFormer's meshes from step 2 on, told to hide the reference's
    lower face (recorded in its file); then eval of both models: every metric of the table is
    there (LSE needs SyncNet weights, which the test has not got)."""
    stage1 = tmp_path / "stage1"
    assert main(["train", "stage1", "--data", str(image_data), "-o", str(stage1), "--steps", "2", "--window", "12",
                 "--style-frames", "8", "--batch-size", "2", "--validation-clips", "0"]) == 0
    continued = tmp_path / "stage2"
    assert main(["train", "stage2", "--data", str(image_data), "-o", str(continued), "--steps", "2", *FAST,
                 "--init", str(stage2_run / "generator.safetensors"), "--syncformer",
                 str(stage1 / "syncformer.safetensors"), "--predicted-meshes-from", "2", "--style-frames", "8",
                 "--sample-every", "100", "--hide-reference-lower-face", "--lower-face-weight", "5"]) == 0
    assert "predicted meshes of 2 clips ready, used from step 2" in capsys.readouterr().out
    assert load_checkpoint(continued / "generator.safetensors", kind="generator")[1].hide_reference_lower_face
    assert not load_checkpoint(stage2_run / "generator.safetensors", kind="generator")[1].hide_reference_lower_face
    output = tmp_path / "eval.json"
    assert main(["eval", "--data", str(image_data), "--syncformer", str(stage1 / "syncformer.safetensors"),
                 "--generator", str(stage2_run / "generator.safetensors"), "--frames", "6", "--json", str(output)]) == 0
    table = capsys.readouterr().out
    summary = json.loads(output.read_text())
    for name in ("lve", "psnr", "ssim", "lmd", "identity_similarity", "aperture_correlation", "aperture_best_lag"):
        assert name in table and name in summary
    assert summary["clips"] == 1 and 0 < summary["psnr"] < 100 and summary["lve"] > 0
    assert "lse_d" not in summary


def test_eval_compares_the_generator_with_the_warp_and_the_static_mouth(image_data, stage2_run, tmp_path, capsys):
    """--compare-renderers scores the three renderers on the same pasted lower face: pasting
    the real upper face back can only bring the generator closer to the target."""
    output = tmp_path / "renderers.json"
    assert main(["eval", "--data", str(image_data), "--generator", str(stage2_run / "generator.safetensors"),
                 "--frames", "6", "--compare-renderers", "--json", str(output)]) == 0
    table = capsys.readouterr().out
    summary = json.loads(output.read_text())
    for metric in ("lower_psnr", "lower_ssim", "lower_lmd"):
        for renderer in ("generator", "warp", "static"):
            assert f"{metric}.{renderer}" in summary and f"{metric}.{renderer}" in table
    assert summary["lower_psnr.generator"] >= summary["psnr"] - 1e-3
    assert all(0 < summary[f"lower_psnr.{name}"] < 100 for name in ("warp", "static"))


def test_eval_compare_renderers_needs_a_generator(image_data, tmp_path, capsys):
    assert main(["eval", "--data", str(image_data), "--syncformer", str(tmp_path / "s.safetensors"),
                 "--compare-renderers"]) == 2
    assert "--compare-renderers" in capsys.readouterr().err
