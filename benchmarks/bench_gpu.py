"""GPU benchmark in one call: generator throughput and end-to-end lip-sync frames/s with the
per-stage split, for a lent device.

    python benchmarks/bench_gpu.py                      # CUDA, paper preset, 1080p, bf16
    python benchmarks/bench_gpu.py --dry-run            # CPU, tiny preset, small clip: checks it starts

Steps (inputs are made first and not timed; random-initialised models, speed does not depend
on the weights):
1. generator alone: frames/s at each --batches size for fp32 and --precision, eager and (with
   --compile) torch.compile; on CUDA "reduce-overhead" mode, which replays CUDA graphs.
2. end to end: `lipsync_video` on a --seconds synthetic talking-head clip at --height (1080p
   by default) with the fastest generator setting of step 1, the nvdiffrast rasteriser when
   installed ("auto"); frames/s and the share of wall time per stage (decode, track, audio,
   syncformer, render, generator, blend, encode; "other" is loading and setup), each stage's
   own frames/s (frames over its seconds: what it would sustain alone), and peak memory: the
   process's resident set and, on CUDA, the device's peak allocated and reserved bytes during
   the end-to-end run.
Target (issue 13): ≥ 200 frames/s end to end on an H100/H200 with the paper preset.
Figures go to stdout and, with --json, to a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

FPS = 25
ASPECT = 16 / 9


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare_inputs(work: Path, preset: str, seconds: float, height: int) -> tuple[Path, Path, Path]:
    from resyncer_core.models.presets import init_models
    from resyncer_core.synth import synthetic_speech, write_synthetic_clip
    from resyncer_core.synth.clip_file import write_wav

    models = work / f"models_{preset}"
    if not (models / "generator.safetensors").exists():
        init_models(preset, models, seed=0)
    width = 2 * round(height * ASPECT / 2)
    video = work / f"clip_{seconds:g}s_{height}p.mp4"
    if not video.exists():
        write_synthetic_clip(video, seconds, FPS, (height, width), with_audio=False, seed=0, preset="veryfast")
    audio = work / f"speech_{seconds:g}s.wav"
    if not audio.exists():
        write_wav(audio, synthetic_speech(seconds, 16000, seed=1), 16000)
    return models, video, audio


def peak_memory_gib(device: torch.device) -> dict[str, float]:
    """Peak resident set of this process and, on CUDA, the device's peak allocated and reserved
    memory since the last torch.cuda.reset_peak_memory_stats, in GiB."""
    gib = 1024 ** 3
    peaks = {"host_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / gib}  # Linux: KiB
    if device.type == "cuda":
        peaks["device_allocated"] = torch.cuda.max_memory_allocated(device) / gib
        peaks["device_reserved"] = torch.cuda.max_memory_reserved(device) / gib
    return peaks


def generator_throughput(generator, device: torch.device, batch: int, precision: str, repeats: int) -> float:
    """Frames/s of generator calls on a fixed batch, after two warm-up calls (compilation,
    CUDA graph capture)."""
    from resyncer_core.models.precision import autocast_for

    size = 256
    crops = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    with torch.inference_mode(), autocast_for(precision, device):
        for _ in range(2):
            generator(crops, crops)
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            generator(crops, crops)
        _synchronize(device)
    return batch * repeats / (time.perf_counter() - start)


def _variants(generator, precision: str, compile_generator: bool, device: torch.device):
    """(label, module, precision) of the generator settings to compare."""
    yield "eager fp32", generator, "fp32"
    if precision != "fp32":
        yield f"eager {precision}", generator, precision
    if compile_generator:
        mode = "reduce-overhead" if device.type == "cuda" else "default"
        yield f"compiled {precision} ({mode})", torch.compile(generator, mode=mode), precision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="paper", choices=["tiny", "small", "paper"])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 64], help="generator batch sizes to time")
    parser.add_argument("--repeats", type=int, default=10, help="timed generator calls per setting")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time torch.compile (CUDA graphs on CUDA)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the end-to-end clip")
    parser.add_argument("--height", type=int, default=1080, help="clip height (16:9)")
    parser.add_argument("--chunk-size", type=int, default=64, help="frames decoded, blended and encoded together")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "resyncer_bench_gpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, tiny preset, 1 s at 144p, batch 2, no compile: proves the script runs")
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.preset, args.batches, args.repeats = "cpu", "tiny", [2], 1
        args.compile, args.seconds, args.height, args.chunk_size = False, 1.0, 144, 8

    from resyncer_core.allocator import tune_memory_allocator
    from resyncer_core.cli_options import quiet_model_loading
    from resyncer_core.pipeline import RenderOptions, lipsync_video, load_pipeline_models
    from resyncer_core.render.nvdiffrast_rasterizer import nvdiffrast_available
    from resyncer_core.stages.progress import STAGES

    tune_memory_allocator()
    quiet_model_loading()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    args.work.mkdir(parents=True, exist_ok=True)
    models_dir, video, audio = prepare_inputs(args.work, args.preset, args.seconds, args.height)
    models = load_pipeline_models(models_dir, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, preset {args.preset}, nvdiffrast "
          f"{'yes' if nvdiffrast_available() else 'no'}")

    figures: dict = {"device": name, "preset": args.preset, "generator": [], "end_to_end": None}
    best = (0.0, "eager fp32", models.generator, "fp32", args.batches[0])
    for label, module, precision in _variants(models.generator, args.precision, args.compile, device):
        for batch in args.batches:
            fps = generator_throughput(module, device, batch, precision, args.repeats)
            figures["generator"].append({"setting": label, "batch": batch, "frames_per_s": fps})
            print(f"generator {label:32} batch {batch:3}: {fps:9.1f} frames/s", flush=True)
            if fps > best[0]:
                best = (fps, label, module, precision, batch)

    _, label, module, precision, batch = best
    options = RenderOptions(batch_size=batch, chunk_size=max(args.chunk_size, batch), precision=precision,
                            x264_preset="veryfast")
    output = args.work / f"out_{args.preset}_{args.height}p.mp4"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = lipsync_video(video, audio, output, dataclasses.replace(models, generator=module), options=options)
    wall = time.perf_counter() - start
    shares = {stage: result.stage_seconds.get(stage, 0.0) / wall for stage in STAGES}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    stage_fps = {stage: result.frames_written / seconds for stage in STAGES
                 if (seconds := result.stage_seconds.get(stage, 0.0)) > 0}
    memory = peak_memory_gib(device)
    figures["end_to_end"] = {"setting": label, "batch": batch, "frames": result.frames_written, "wall_s": wall,
                             "frames_per_s": result.frames_written / wall, "stage_share": shares,
                             "stage_frames_per_s": stage_fps, "peak_memory_gib": memory}
    print(f"end to end ({label}, batch {batch}, {args.height}p, {result.frames_written} frames): "
          f"{result.frames_written / wall:.1f} frames/s")
    print("stage share of wall time: " + ", ".join(f"{stage} {100 * share:.1f}%" for stage, share in shares.items()))
    print("stage frames/s alone: " + ", ".join(f"{stage} {fps:.1f}" for stage, fps in stage_fps.items()))
    print("peak memory: " + ", ".join(f"{name} {value:.2f} GiB" for name, value in memory.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
