"""Training survives `kill -9`: a stage-1 and a stage-2 run, SIGKILLed at random moments (with a
checkpoint every step; every other kill waits for a checkpoint write to start) and resumed each
time, start
every resume from the newest complete checkpoint, and end with the weights of an uninterrupted
run (the tolerances of the resume tests in test_train_stage1 / test_train_images). The default
run kills each stage a few times; the 20-kill version is marked slow."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from _pipeline_media import two_speaker_dataset
from resyncer_core.synth.mesh_corpus import write_mesh_corpus
from resyncer_core.train.training_state import CHECKPOINTS_FOLDER, latest_training_state


@dataclass(frozen=True)
class KilledStage:
    options: list[str]        # `resyncer train <stage>` options besides --data, -o, --steps and --resume
    # Steps the run is given per kill: enough that even on an idle machine it is still training
    # when a kill comes (3 per kill let a fast run finish first).
    steps_per_kill: int
    longest_wait_s: float     # a kill comes this long at most after the run saved its first new step
    tolerance: dict = field(default_factory=dict)


STAGES = {
    "stage1": KilledStage(["--window", "16", "--style-frames", "12", "--batch-size", "4", "--log-every", "1",
                           "--validate-every", "0", "--ema-decay", "0.9", "--checkpoint-every", "1"],
                          steps_per_kill=25, longest_wait_s=0.05, tolerance=dict(rtol=0, atol=1e-6)),
    "stage2": KilledStage(["--batch-size", "1", "--log-every", "1", "--validation-clips", "0", "--lr", "2e-3",
                           "--ema-decay", "0.5", "--sample-every", "1000", "--checkpoint-every", "1"],
                          steps_per_kill=8, longest_wait_s=1.5, tolerance=dict(rtol=1e-5, atol=1e-6)),
}
RESUMED = re.compile(r"resumed from \S+ at step (\d+)")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return {"stage1": write_mesh_corpus(tmp_path_factory.mktemp("kill") / "mesh_data", clips=3, frames=48),
            "stage2": two_speaker_dataset(tmp_path_factory)}


def _train(stage: str, data: Path, run: Path, steps: int, *extra: str) -> subprocess.Popen:
    # Unbuffered, so the "resumed from" line of a process killed soon after is not lost.
    return subprocess.Popen([sys.executable, "-m", "resyncer_core.cli", "train", stage, "--data", str(data), "-o",
                             str(run), "--steps", str(steps), *STAGES[stage].options, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _newest_step(run: Path) -> int:
    latest = latest_training_state(run)
    return 0 if latest is None else int(latest.name.removeprefix("step-"))


def _checkpoint_folders(run: Path) -> set[str]:
    """Names in the run's checkpoints folder: complete step-N folders and partial ones being
    written (or left by a killed save)."""
    folder = run / CHECKPOINTS_FOLDER
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def _saved_after(run: Path, step: int, before: set[str]) -> bool:
    """Whether this process has started or finished a checkpoint of a step after `step`."""
    return any(int(re.search(r"step-(\d+)", name).group(1)) > step
               for name in _checkpoint_folders(run) - before if "step-" in name)


def _writing_checkpoint(run: Path, before: set[str]) -> bool:
    """Whether a checkpoint write is under way now (a partial folder not there at the start)."""
    return any(name.endswith(".partial") for name in _checkpoint_folders(run) - before)


def _resumed_step(output: str) -> int:
    found = RESUMED.search(output)
    assert found or "no checkpoint" in output, output
    return int(found.group(1)) if found else 0


def kill_and_resume(stage: str, data: Path, tmp_path: Path, kills: int, seed: int) -> dict:
    """Runs `stage` to completion with `kills` SIGKILLs at random moments, resuming each time,
    and compares the end with an uninterrupted run. Returns what happened."""
    rng = random.Random(seed)
    spec, run, steps = STAGES[stage], tmp_path / "killed", STAGES[stage].steps_per_kill * kills
    inside_writes, resumed_from = 0, []
    for kill in range(kills):
        expected, before = _newest_step(run), _checkpoint_folders(run)
        process = _train(stage, data, run, steps, "--resume")
        while not _saved_after(run, expected, before) and process.poll() is None:
            time.sleep(0.002)
        if kill % 2:  # every other kill lands inside a checkpoint write, the next one seen
            while not _writing_checkpoint(run, before) and process.poll() is None:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0, spec.longest_wait_s))
        assert process.poll() is None, f"the run ended before its kill:\n{process.communicate()[0]}"
        process.kill()
        inside_writes += _writing_checkpoint(run, before)
        resumed_from.append((expected, _resumed_step(process.communicate()[0])))
    expected = _newest_step(run)
    finish = _train(stage, data, run, steps, "--resume")
    output = finish.communicate()[0]
    assert finish.returncode == 0, output
    resumed_from.append((expected, _resumed_step(output)))
    straight = _train(stage, data, tmp_path / "straight", steps)
    assert straight.wait() == 0, straight.communicate()[0]

    # Every resume started from the newest complete checkpoint there was.
    assert all(started == newest for newest, started in resumed_from), resumed_from
    last = f"step-{steps:08d}"
    for name in ("weights.safetensors", "optimizer.safetensors"):
        killed = load_file(str(run / CHECKPOINTS_FOLDER / last / name))
        uninterrupted = load_file(str(tmp_path / "straight" / CHECKPOINTS_FOLDER / last / name))
        assert killed.keys() == uninterrupted.keys()
        for key, value in uninterrupted.items():
            torch.testing.assert_close(killed[key], value, msg=key, **spec.tolerance)
    leftovers = [path.name for path in run.rglob("*") if path.name.endswith(".partial")]
    assert leftovers == [], leftovers  # the resumed saves cleared what the killed ones left
    return {"kills": kills, "inside_checkpoint_writes": inside_writes, "resumes": resumed_from}


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_a_run_killed_twice_resumes_from_its_last_checkpoint_to_the_same_weights(stage, datasets, tmp_path):
    report = kill_and_resume(stage, datasets[stage], tmp_path, 2, seed=2)
    assert report["inside_checkpoint_writes"] >= 1, report


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_a_run_killed_20_times_resumes_from_its_last_checkpoint_to_the_same_weights(stage, datasets, tmp_path):
    report = kill_and_resume(stage, datasets[stage], tmp_path, 20, seed=20)
    print(f"{stage}: {report}")
