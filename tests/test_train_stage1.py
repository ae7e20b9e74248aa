"""`resyncer train stage1`: the loss falls on a tiny fixed set, the checkpoint drives `resyncer
lipsync`, a resumed run equals an uninterrupted one, and a 2-process torchrun run equals one
process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from _pipeline_media import speech_wav, talking_clip, tiny_models
from resyncer_core.cli import main
from resyncer_core.errors import ResyncerInputError
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.models.presets import AUDIO_ENCODER_KEY
from resyncer_core.train.dataset import feature_cache_key, load_features, read_index
from resyncer_core.video import probe_video
from resyncer_core.synth.mesh_corpus import write_mesh_corpus

# Short windows keep every run to a second or two on one CPU core.
FAST = ["--window", "16", "--style-frames", "12", "--batch-size", "4", "--log-every", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mesh_corpus(tmp_path_factory.mktemp("stage1") / "data", clips=3, frames=48)


def train(data_dir, run_dir, steps, *extra) -> int:
    return main(["train", "stage1", "--data", str(data_dir), "-o", str(run_dir), "--steps", str(steps), *FAST, *extra])


def log_records(run_dir, kind):
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == kind]


def test_loss_falls_and_the_checkpoint_records_its_audio_encoder(tmp_path, data_dir, capsys):
    run_dir = tmp_path / "run"
    assert train(data_dir, run_dir, 60, "--validate-every", "30", "--checkpoint-every", "30",
                 "--validation-clips", "0") == 0
    losses = [record["loss"] for record in log_records(run_dir, "train")]
    assert len(losses) == 60
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    model, config = load_checkpoint(run_dir / "syncformer.safetensors", kind="syncformer")
    assert config.audio_dim == 1280 and config.train_window == 16 and config.style_frames == 12
    with safe_open(str(run_dir / "syncformer.safetensors"), framework="pt") as handle:
        assert handle.metadata()[AUDIO_ENCODER_KEY] == "mel"
    # Features were cached into the dataset once, from the clips' own audio.
    clip = read_index(data_dir)[0]
    assert load_features(clip, "mel").shape == (48, 1280)
    assert feature_cache_key("mel") == "mel"
    assert "stage1: step 60" in capsys.readouterr().out


def test_validation_reports_lip_vertex_error(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    assert train(data_dir, run_dir, 4, "--validate-every", "2") == 0
    validations = log_records(run_dir, "validation")
    assert [record["step"] for record in validations] == [2, 4]
    assert all(record["lve"] > 0 for record in validations)


def test_resume_continues_exactly(tmp_path, data_dir):
    options = ["--checkpoint-every", "3", "--validate-every", "0", "--ema-decay", "0.9"]
    assert train(data_dir, tmp_path / "whole", 6, *options) == 0
    assert train(data_dir, tmp_path / "parts", 3, *options) == 0
    assert train(data_dir, tmp_path / "parts", 6, *options, "--resume") == 0
    whole = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000006" / "weights.safetensors"))
    parts = load_file(str(tmp_path / "parts" / "checkpoints" / "step-00000006" / "weights.safetensors"))
    assert whole.keys() == parts.keys() and any(name.startswith("syncformer_ema/") for name in whole)
    for name in whole:
        torch.testing.assert_close(parts[name], whole[name], rtol=0, atol=1e-6, msg=name)
    assert [r["step"] for r in log_records(tmp_path / "parts", "train")] == [1, 2, 3, 4, 5, 6]


def test_resume_without_checkpoint_starts_fresh(tmp_path, data_dir, capsys):
    assert train(data_dir, tmp_path / "run", 1, "--resume") == 0
    assert "no checkpoint" in capsys.readouterr().out


def test_bad_dataset_is_one_line(tmp_path, capsys):
    assert train(tmp_path / "missing", tmp_path / "run", 1) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "resyncer preprocess" in error


def test_trained_syncformer_drives_lipsync(tmp_path, tmp_path_factory, data_dir, capsys):
    run_dir = tmp_path / "run"
    assert train(data_dir, run_dir, 2) == 0
    video = talking_clip(tmp_path_factory, 1.2)
    speech = speech_wav(tmp_path / "speech.wav", 0.6)
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(video), "--audio", str(speech), "-o", str(output),
                 "--models", str(tiny_models(tmp_path_factory)), "--syncformer", str(run_dir / "syncformer.safetensors"),
                 "--x264-preset", "ultrafast"]) == 0
    assert probe_video(output).frame_count == 15


def _torchrun() -> list[str] | None:
    resyncer = shutil.which("resyncer")
    if resyncer is None or shutil.which("torchrun") is None:
        return None
    return ["torchrun", "--standalone", "--nproc_per_node", "2", resyncer]


def _predictions(path, data_dir) -> torch.Tensor:
    """Teacher-forced output of a checkpoint on fixed inputs: what the weights compute (some
    weights, e.g. attention keys over a single allowed key, have no gradient and drift by
    rounding under Adam; the function does not)."""
    model, _ = load_checkpoint(path, kind="syncformer")
    clip = read_index(data_dir)[0]
    features = torch.from_numpy(load_features(clip, "mel")[:16])[None]
    delta = torch.randn(1, 16, 468, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        return model(features, delta, delta[:, :12])


@pytest.mark.skipif(_torchrun() is None, reason="torchrun / resyncer console scripts are not on PATH")
def test_two_process_torchrun_equals_one_process(tmp_path, data_dir):
    options = ["--dropout", "0", "--validate-every", "0", "--checkpoint-every", "3"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = _torchrun() + ["train", "stage1", "--data", str(data_dir), "-o", str(tmp_path / "ddp"),
                             "--steps", "3", *FAST, *options]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert train(data_dir, tmp_path / "single", 3, *options) == 0
    ranks = log_records(tmp_path / "ddp", "ranks")
    assert ranks == [{**ranks[0], "world_size": 2, "weight_spread": 0.0}]
    ddp_losses = [r["loss"] for r in log_records(tmp_path / "ddp", "train")]
    single_losses = [r["loss"] for r in log_records(tmp_path / "single", "train")]
    np.testing.assert_allclose(ddp_losses, single_losses, rtol=1e-5)
    torch.testing.assert_close(_predictions(tmp_path / "ddp" / "syncformer.safetensors", data_dir),
                               _predictions(tmp_path / "single" / "syncformer.safetensors", data_dir),
                               rtol=1e-3, atol=1e-4)


def test_gradient_accumulation_equals_the_whole_batch(tmp_path, data_dir):
    options = ["--dropout", "0", "--validate-every", "0"]
    assert train(data_dir, tmp_path / "whole", 3, *options) == 0
    assert train(data_dir, tmp_path / "accumulated", 3, *options, "--grad-accum", "2") == 0
    np.testing.assert_allclose([r["loss"] for r in log_records(tmp_path / "accumulated", "train")],
                               [r["loss"] for r in log_records(tmp_path / "whole", "train")], rtol=1e-5)
    torch.testing.assert_close(_predictions(tmp_path / "accumulated" / "syncformer.safetensors", data_dir),
                               _predictions(tmp_path / "whole" / "syncformer.safetensors", data_dir),
                               rtol=1e-3, atol=1e-4)


def test_uneven_batch_split_is_one_line(tmp_path, data_dir, capsys):
    assert train(data_dir, tmp_path / "run", 1, "--grad-accum", "3") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--grad-accum" in error


@pytest.mark.slow
@pytest.mark.skipif(_torchrun() is None, reason="torchrun / resyncer console scripts are not on PATH")
def test_two_process_torchrun_with_accumulation_and_resume_equals_one_process(tmp_path, data_dir):
    """The longer variant: 2 ranks × 2 micro-batches, stopped and resumed, against one process."""
    options = ["--dropout", "0", "--validate-every", "5", "--checkpoint-every", "5", "--grad-accum", "2"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for steps, resume in ((5, []), (10, ["--resume"])):
        command = _torchrun() + ["train", "stage1", "--data", str(data_dir), "-o", str(tmp_path / "ddp"),
                                 "--steps", str(steps), *FAST, *options, *resume]
        finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
        assert finished.returncode == 0, finished.stderr[-2000:]
    assert train(data_dir, tmp_path / "single", 10, *options) == 0
    assert all(record["weight_spread"] == 0.0 for record in log_records(tmp_path / "ddp", "ranks"))
    np.testing.assert_allclose([r["loss"] for r in log_records(tmp_path / "ddp", "train")],
                               [r["loss"] for r in log_records(tmp_path / "single", "train")], rtol=1e-4)
    torch.testing.assert_close(_predictions(tmp_path / "ddp" / "syncformer.safetensors", data_dir),
                               _predictions(tmp_path / "single" / "syncformer.safetensors", data_dir),
                               rtol=1e-3, atol=1e-4)


def test_wav2vec2_folder_is_recorded_by_its_absolute_path(tmp_path, tmp_path_factory, data_dir, monkeypatch):
    models = tiny_models(tmp_path_factory)
    monkeypatch.chdir(models.parent)
    run_dir = tmp_path / "run"
    assert train(data_dir, run_dir, 1, "--audio-encoder", f"{models.name}/wav2vec2") == 0
    with safe_open(str(run_dir / "syncformer.safetensors"), framework="pt") as handle:
        assert handle.metadata()[AUDIO_ENCODER_KEY] == str((models / "wav2vec2").resolve())
    _, config = load_checkpoint(run_dir / "syncformer.safetensors", kind="syncformer")
    assert config.audio_dim == 32  # the tiny Wav2Vec2's hidden size


def test_target_windows_are_fully_tracked(tmp_path):
    from resyncer_core.synth.mesh_corpus import speaking_meshes
    from resyncer_core.synth.speech_plan import SpeechPlan
    from resyncer_core.train.dataset import ClipArrays, write_clip
    from resyncer_core.train.distributed import DistributedContext
    from resyncer_core.train.loop import LoopConfig
    from resyncer_core.train.stage1 import Stage1Config, build_stage1

    canonical, template = speaking_meshes(SpeechPlan.generate(2.0, 0), 50)
    valid = np.ones(50, bool)
    valid[10:30] = False  # lost tracking: only frames 30..49 hold a 16-frame tracked window
    canonical[~valid] = template + 100.0  # marks the untracked frames (real ones hold the template)
    write_clip(tmp_path, "lost-face", ClipArrays(canonical=canonical, template=template, valid=valid),
               np.zeros(32000, np.float32), speaker="a", features={"mel": np.zeros((50, 8), np.float32)})
    config = Stage1Config(data=str(tmp_path), window=16, style_frames=12, validation_clips=0,
                          loop=LoopConfig(steps=1, batch_size=4))
    stage = build_stage1(config, DistributedContext(), log=lambda message: None)
    assert stage._window_starts[0].tolist() == list(range(30, 35))
    for position in range(20):
        _, target, _, _ = stage.sample(1, position)
        assert np.abs(target).max() < 50  # no untracked frame in the target


def test_amplitude_range_scales_target_and_style_together(tmp_path):
    """--amplitude-range: a sample's target and style ΔM get the same factor, from the range."""
    from resyncer_core.train.stage1 import Stage1, Stage1Config

    config = Stage1Config(data="", amplitude_range=(0.5, 2.0))
    stage = Stage1.__new__(Stage1)
    stage.config = config
    factors = [float(stage._amplitude(np.random.default_rng(seed))) for seed in range(200)]
    assert 0.5 <= min(factors) < 0.6 and 1.8 < max(factors) <= 2.0
    with pytest.raises(ResyncerInputError, match="amplitude range"):
        Stage1Config(data="", amplitude_range=(2.0, 1.0))
