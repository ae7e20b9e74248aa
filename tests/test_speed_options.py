"""Speed options (issue 13): the allocator tuning, generator precision, and the benchmark
scripts start."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.models.generator import GeneratorConfig, ReSyncGenerator
from resyncer_core.models.precision import autocast_for
from resyncer_core.pipeline.commands import _add_render_arguments
from resyncer_core.pipeline.engine import RenderOptions
from resyncer_core.stages.functions import generate_crops

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> str:
    environment = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "RESYNCER_SYSTEM_ALLOCATOR")}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=environment).stdout.strip()


TUNE = "from resyncer_core.allocator import tune_memory_allocator as t; print(t()); print(t())"


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_allocator_is_tuned_once_on_glibc_and_can_be_opted_out():
    assert _python(TUNE).splitlines() == ["tuned", "tuned"]
    assert "RESYNCER_SYSTEM_ALLOCATOR" in _python(TUNE, RESYNCER_SYSTEM_ALLOCATOR="1").splitlines()[0]


def test_tuned_allocator_reuses_large_blocks_without_page_faults():
    """The point of the tuning: once a network has run, running it again takes its large
    activations from memory the process already has (glibc's defaults mmap and unmap every
    block above its threshold, so each call faults all of them in again)."""
    code = ("import resource, sys, torch\n"
            "from resyncer_core.allocator import tune_memory_allocator\n"
            "state = tune_memory_allocator() if sys.argv[1] == 'tuned' else 'system'\n"
            "weight = torch.randn(16, 16, 3, 3)\n"
            "def run():\n"
            "    x = torch.ones(1, 16, 512, 512)\n"
            "    for _ in range(4): x = torch.nn.functional.conv2d(x, weight, padding=1).relu()\n"
            "run(); run()\n"
            "def faults():\n"
            "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "    run()\n"
            "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
            # The fewest of three runs: the heap may still grow in a later run (seen once, a local
            # CI run faulted one activation in); the storm is every run faulting them all in again.
            "print(state, min(faults() for _ in range(3)))\n")
    environment = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "RESYNCER_SYSTEM_ALLOCATOR")}
    faults = {}
    for mode in ("system", "tuned"):
        result = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True,
                                env={**environment, "OMP_NUM_THREADS": "1"})
        state, count = result.stdout.split()
        faults[state] = int(count)
    if "tuned" not in faults:
        pytest.skip("allocator not tunable here")
    pages = 16 * 512 * 512 * 4 // 4096  # one activation: 4096 pages
    assert faults["system"] > pages  # the storm this guards against (if glibc ever stops it, drop the tuning)
    assert faults["tuned"] < pages // 10


def test_precision_is_checked_and_bf16_crops_stay_float32_and_close():
    torch.manual_seed(0)
    generator = ReSyncGenerator(GeneratorConfig(size=256, narrow=1 / 64, style_dim=16, n_mlp=1)).eval()
    crops = torch.rand(2, 3, 256, 256) * 2 - 1
    exact = generate_crops(generator, crops, crops, batch_size=2)
    fast = generate_crops(generator, crops, crops, batch_size=2, precision="bf16")
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert (fast - exact).abs().mean() < 0.05
    with pytest.raises(ResyncerInputError, match="precision"):
        generate_crops(generator, crops, crops, precision="int8")
    with pytest.raises(ResyncerInputError, match="precision"):
        RenderOptions(precision="fp64")
    with autocast_for("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_cli_render_commands_take_precision():
    import argparse

    parser = argparse.ArgumentParser()
    _add_render_arguments(parser)
    assert parser.parse_args(["--precision", "bf16"]).precision == "bf16"
    assert parser.parse_args([]).precision == "fp32"


class _RecordingWriter:
    def __init__(self, fail_on: int | None = None):
        self.written: list[int] = []
        self.fail_on = fail_on

    def write(self, frames) -> None:
        if int(frames[0]) == self.fail_on:
            raise ValueError("encoder broke")
        self.written.append(int(frames[0]))


def test_encoder_thread_writes_chunks_in_order_and_hands_errors_to_the_caller():
    import numpy as np

    from resyncer_core.pipeline.engine import _EncoderThread

    writer = _RecordingWriter()
    with _EncoderThread(writer) as encoder:
        for index in range(6):
            encoder.write(np.full(3, index))
    assert writer.written == list(range(6))

    failing = _RecordingWriter(fail_on=2)
    with pytest.raises(ValueError, match="encoder broke"):
        with _EncoderThread(failing) as encoder:
            for index in range(6):
                encoder.write(np.full(3, index))
    assert failing.written == [0, 1]

    # An error in the main thread stops the encoder without writing what was still queued.
    abandoned = _RecordingWriter()
    with pytest.raises(KeyboardInterrupt):
        with _EncoderThread(abandoned) as encoder:
            encoder.write(np.full(3, 0))
            raise KeyboardInterrupt
    assert abandoned.written in ([], [0])


def test_gpu_benchmark_dry_run_starts_and_reports(tmp_path):
    """benchmarks/bench_gpu.py is meant for a lent GPU; --dry-run runs every step on the CPU
    with the tiny preset, so a session with a device knows it starts."""
    import json

    figures = tmp_path / "figures.json"
    completed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--dry-run",
                                "--work", str(tmp_path / "work"), "--json", str(figures)],
                               capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "end to end" in completed.stdout
    result = json.loads(figures.read_text())
    assert result["end_to_end"]["frames"] == 25 and result["end_to_end"]["frames_per_s"] > 0
    assert {entry["setting"] for entry in result["generator"]} == {"eager fp32", "eager bf16"}
    # Per-stage frames/s for the stages that ran, and the process's peak memory (no CUDA keys on the CPU).
    assert {"decode", "track", "generator", "blend"} <= set(result["end_to_end"]["stage_frames_per_s"])
    assert all(fps > 0 for fps in result["end_to_end"]["stage_frames_per_s"].values())
    assert set(result["end_to_end"]["peak_memory_gib"]) == {"host_rss"}
    assert 0.1 < result["end_to_end"]["peak_memory_gib"]["host_rss"] < 64
    assert "stage frames/s alone" in completed.stdout and "peak memory" in completed.stdout
