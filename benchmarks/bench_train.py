"""Training speed: optimiser steps per second (it/s) per stage and preset on this machine.

    python benchmarks/bench_train.py [--stages stage1] [--presets tiny small paper] [--steps 10]
                                     [--warmup 2] [--batch-size 8] [--device cpu] [--threads N] [--json FILE]

Each stage is built on a procedural corpus (stage 1: resyncer_core.synth.mesh_corpus, synthetic
speech with jaw-following meshes, mel features cached beforehand; stage 2 and swap: two 2 s
synthetic talking clips run through `resyncer preprocess`, the swap generator being the preset's
random one) and `stage.train_step` is timed directly, after `--warmup` untimed steps, so the
figure is the loop's own speed with the paper's window sizes (100-frame windows, T_S = 90 for
stage 1) and 256² crops, not data preparation (stage 2/swap steps include drawing the overlays).
Stages plug in through STAGE_BENCHMARKS: a function (preset, args, work_dir) → a stage object
with train_step(step, micro_batches) (resyncer_core.train.loop protocol).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def stage1_benchmark(preset: str, args, work: Path):
    from resyncer_core.synth.mesh_corpus import write_mesh_corpus
    from resyncer_core.train.distributed import setup_distributed
    from resyncer_core.train.loop import LoopConfig
    from resyncer_core.train.stage1 import Stage1Config, build_stage1

    data = work / "stage1_data"
    if not (data / "index.jsonl").exists():
        write_mesh_corpus(data, clips=4, frames=250, seed=0)
    config = Stage1Config(data=str(data), preset=preset, validation_clips=0,
                          loop=LoopConfig(steps=args.steps + args.warmup, batch_size=args.batch_size))
    return build_stage1(config, setup_distributed(args.device), log=lambda message: None)


def _image_dataset(work: Path) -> Path:
    """Two synthetic speakers (2 s clips) preprocessed with crop videos, made once per run."""
    from resyncer_core.synth import write_synthetic_clip
    from resyncer_core.train.preprocess import PreprocessConfig, preprocess_folder

    data = work / "image_data"
    if not (data / "index.jsonl").exists():
        for speaker, seed in (("alice", 0), ("bob", 3)):
            (work / "videos" / speaker).mkdir(parents=True, exist_ok=True)
            write_synthetic_clip(work / "videos" / speaker / "clip.mp4", 2.0, 25, (360, 480), seed=seed,
                                 preset="ultrafast")
        preprocess_folder(work / "videos", data, PreprocessConfig(min_frames=25))
    return data


def stage2_benchmark(preset: str, args, work: Path):
    from resyncer_core.train.distributed import setup_distributed
    from resyncer_core.train.loop import LoopConfig
    from resyncer_core.train.stage2 import Stage2Config, build_stage2

    config = Stage2Config(data=str(_image_dataset(work)), preset=preset, validation_clips=0,
                          loop=LoopConfig(steps=args.steps + args.warmup, batch_size=args.batch_size))
    return build_stage2(config, setup_distributed(args.device), log=lambda message: None)


def swap_benchmark(preset: str, args, work: Path):
    """Swap training from the preset's random generator and discriminator (speed only)."""
    from resyncer_core.models.presets import init_models
    from resyncer_core.train.distributed import setup_distributed
    from resyncer_core.train.loop import LoopConfig
    from resyncer_core.train.swap import SwapConfig, build_swap

    models = work / f"models_{preset}"
    if not (models / "generator.safetensors").exists():
        init_models(preset, models)
    config = SwapConfig(data=str(_image_dataset(work)), init_generator=str(models / "generator.safetensors"),
                        validation_clips=0, loop=LoopConfig(steps=args.steps + args.warmup, batch_size=args.batch_size))
    return build_swap(config, setup_distributed(args.device), log=lambda message: None)


# stage name → builder of a stage object (train/loop.py protocol).
STAGE_BENCHMARKS = {"stage1": stage1_benchmark, "stage2": stage2_benchmark, "swap": swap_benchmark}


def time_stage(stage, steps: int, warmup: int, batch_size: int, device: str) -> float:
    """it/s of `steps` optimiser steps after `warmup` untimed ones (one micro-batch per step)."""
    positions = [np.arange(batch_size)]
    for step in range(1, warmup + 1):
        stage.train_step(step, positions)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(warmup + 1, warmup + steps + 1):
        stage.train_step(step, positions)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=list(STAGE_BENCHMARKS), choices=list(STAGE_BENCHMARKS))
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as work:
        for stage_name in args.stages:
            for preset in args.presets:
                stage = STAGE_BENCHMARKS[stage_name](preset, args, Path(work))
                speed = time_stage(stage, args.steps, args.warmup, args.batch_size, args.device)
                rows.append({"stage": stage_name, "preset": preset, "batch_size": args.batch_size,
                             "it_per_s": round(speed, 3), "samples_per_s": round(speed * args.batch_size, 2),
                             "device": args.device, "threads": torch.get_num_threads()})
                print(f"{stage_name:8} {preset:6} batch {args.batch_size:3}: {speed:8.3f} it/s "
                      f"({speed * args.batch_size:.1f} samples/s) on {args.device}, {torch.get_num_threads()} threads",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
