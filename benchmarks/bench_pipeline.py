"""End-to-end lip-sync speed: frames/s, share of wall time per stage, and peak memory.

    python benchmarks/bench_pipeline.py [--presets tiny small] [--seconds 10 60] [--device cpu]
                                        [--threads N] [--work DIR] [--json FILE]

For every preset × clip length: a 720p synthetic talking-head clip (resyncer_core.synth) is
lip-synced to synthetic speech of the same length with random-initialised models of that
preset (`resyncer models init`; speed does not depend on the weights). Each run happens in its
own subprocess, so its peak resident memory (VmHWM) is its own and not the largest of all
runs before it; inputs and models are made beforehand and not timed. Stages are those the
engine times (decode, track, audio, syncformer, render, generator, blend, encode); "other"
is wall time outside them (model loading, probing, setup). The paper preset is slow on a
CPU: ask for it explicitly with --presets paper.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (720, 1280)
FPS = 25


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare_inputs(work: Path, presets: list[str], seconds: list[float]) -> None:
    from resyncer_core.models.presets import init_models
    from resyncer_core.synth import synthetic_speech, write_synthetic_clip
    from resyncer_core.synth.clip_file import write_wav

    for preset in presets:
        if not (work / preset / "generator.safetensors").exists():
            init_models(preset, work / preset, seed=0)
    for length in seconds:
        video, audio = input_paths(work, length)
        if not video.exists():
            write_synthetic_clip(video, length, FPS, SIZE, with_audio=False, seed=0)
        if not audio.exists():
            write_wav(audio, synthetic_speech(length, 16000, seed=1), 16000)


def input_paths(work: Path, seconds: float) -> tuple[Path, Path]:
    return work / f"clip_{seconds:g}s_720p.mp4", work / f"speech_{seconds:g}s.wav"


def run_child(args) -> None:
    """One measured run; prints its figures as JSON on the last line of stdout."""
    import torch

    from resyncer_core.pipeline import RenderOptions, lipsync_video, load_pipeline_models

    if args.threads:
        torch.set_num_threads(args.threads)
    video, audio = input_paths(args.work, args.child_seconds)
    start = time.perf_counter()
    models = load_pipeline_models(args.work / args.child_preset, args.device)
    result = lipsync_video(video, audio, args.work / f"out_{args.child_preset}_{args.child_seconds:g}s.mp4", models,
                           options=RenderOptions(batch_size=args.batch_size))
    wall = time.perf_counter() - start
    print(json.dumps({"preset": args.child_preset, "seconds": args.child_seconds, "frames": result.frames_written,
                      "wall_s": wall, "stage_s": result.stage_seconds, "peak_rss_mb": peak_rss_mb(),
                      "torch_threads": torch.get_num_threads()}))


def measure(args, preset: str, seconds: float) -> dict:
    command = [sys.executable, __file__, "--child-preset", preset, "--child-seconds", str(seconds),
               "--work", str(args.work), "--device", args.device, "--batch-size", str(args.batch_size)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        raise SystemExit(f"run {preset} {seconds:g}s failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(run: dict) -> str:
    from resyncer_core.stages.progress import STAGES

    wall = run["wall_s"]
    shares = {stage: run["stage_s"].get(stage, 0.0) / wall for stage in STAGES}
    shares["other"] = max(0.0, 1 - sum(shares.values()))
    columns = " ".join(f"{100 * share:5.1f}" for share in shares.values())
    return (f"{run['preset']:>6} {run['seconds']:>5g}s {run['frames']:>6} {wall:>8.1f} "
            f"{run['frames'] / wall:>7.2f} {run['peak_rss_mb']:>8.0f}  {columns}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "paper"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10.0, 60.0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=8, help="generator batch size")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "resyncer_bench_pipeline",
                        help="folder for models, inputs and outputs (kept between runs)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--child-preset", help=argparse.SUPPRESS)
    parser.add_argument("--child-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_preset:
        run_child(args)
        return 0

    from resyncer_core.stages.progress import STAGES

    args.work.mkdir(parents=True, exist_ok=True)
    prepare_inputs(args.work, args.presets, args.seconds)
    print(f"720p lip-sync, device {args.device}, generator batch {args.batch_size}; stage columns are % of wall time")
    print(f"{'preset':>6} {'clip':>6} {'frames':>6} {'wall s':>8} {'fps':>7} {'peak MB':>8}  "
          + " ".join(f"{stage[:5]:>5}" for stage in (*STAGES, "other")))
    runs = []
    for preset in args.presets:
        for seconds in args.seconds:
            runs.append(measure(args, preset, seconds))
            print(report(runs[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
