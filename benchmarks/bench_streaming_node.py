"""Peak memory of the "ReSyncer Lip-sync (streaming)" node against clip length: it should stay
flat (the frame-by-frame nodes hold every frame as float32 IMAGE, ~37 GB for 60 s of 1080p).

    python benchmarks/bench_streaming_node.py [--seconds 10 60] [--size 1080x1920] [--preset tiny]
                                              [--work DIR] [--json FILE]

For each length, a synthetic talking clip of that size with its own voice (resyncer_core.synth)
is lip-synced to that voice by the node, run through the pack's graph executor as ComfyUI would
run it (Load Generator / Style-SyncFormer / Wav2Vec2 → streaming node → Save Video). Every run
is its own subprocess, so its peak resident memory (VmHWM) is its own; inputs and models are
made beforehand. Figures only, no asserts: the speed depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
FPS = 25


def clip_path(work: Path, seconds: float, size: tuple[int, int]) -> Path:
    return work / f"clip_{seconds:g}s_{size[0]}p.mp4"


def prepare(work: Path, preset: str, seconds: list[float], size: tuple[int, int]) -> None:
    from resyncer_core.models.presets import init_models
    from resyncer_core.synth import write_synthetic_clip

    if not (work / preset / "generator.safetensors").exists():
        init_models(preset, work / preset, seed=0)
    for length in seconds:
        if not clip_path(work, length, size).exists():
            write_synthetic_clip(clip_path(work, length, size), length, FPS, size, seed=0, preset="ultrafast")


def run_child(args) -> None:
    """One measured run; prints its figures as JSON on the last line of stdout."""
    from resyncer_core.graph import context
    from resyncer_core.graph.executor import GraphExecutor
    from resyncer_core.graph.pack import load_pack

    clip = clip_path(args.work, args.child_seconds, args.size)
    prompt = {
        "1": {"class_type": "ReSyncerLoadGenerator", "inputs": {"model": "generator.safetensors", "device": "cpu"}},
        "2": {"class_type": "ReSyncerLoadSyncFormer", "inputs": {"model": "syncformer.safetensors", "device": "cpu"}},
        "3": {"class_type": "ReSyncerLoadWav2Vec2", "inputs": {"model": "wav2vec2", "device": "cpu"}},
        "4": {"class_type": "ReSyncerLipSyncStreaming",
              "inputs": {"generator": ["1", 0], "syncformer": ["2", 0], "audio_encoder": ["3", 0], "mode": "audio",
                         "long_audio": "trim", "short_audio": "trim", "batch_size": 8, "chunk_frames": 8,
                         "crf": 23, "video_file": str(clip), "audio_file": str(clip)}},
        "5": {"class_type": "ReSyncerSaveVideo", "inputs": {"video": ["4", 0], "fps": 25.0, "crf": 23,
                                                            "filename_prefix": f"bench_{args.child_seconds:g}s"}},
    }
    registry = load_pack(REPO).NODE_CLASS_MAPPINGS
    start = time.perf_counter()
    with context.scoped(models_dir=args.work / args.preset, output_dir=args.work / "out", temp_dir=args.work / "temp",
                        device="cpu"):
        result = GraphExecutor(registry).execute(prompt)
    wall = time.perf_counter() - start
    frames = result.ui["4"]["resyncer"][0]["frames"]
    print(json.dumps({"seconds": args.child_seconds, "size": list(args.size), "frames": frames, "wall_s": wall,
                      "fps": frames / wall, "peak_rss_mb": peak_rss_mb()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10.0, 60.0])
    parser.add_argument("--size", type=lambda t: tuple(int(v) for v in t.split("x")), default=(1080, 1920),
                        help="clip size HEIGHTxWIDTH (default 1080x1920)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "paper"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "resyncer_bench_streaming",
                        help="folder for models, inputs and outputs (kept between runs)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--child-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_seconds:
        run_child(args)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args.work, args.preset, args.seconds, args.size)
    print(f"streaming node, {args.size[0]}p, {args.preset} models, cpu")
    print(f"{'clip':>6} {'frames':>6} {'wall s':>8} {'fps':>6} {'peak MB':>8}")
    runs = []
    for seconds in args.seconds:
        command = [sys.executable, __file__, "--child-seconds", str(seconds), "--work", str(args.work),
                   "--preset", args.preset, "--size", "x".join(map(str, args.size))]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"run {seconds:g}s failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        run = runs[-1]
        print(f"{seconds:>5g}s {run['frames']:>6} {run['wall_s']:>8.1f} {run['fps']:>6.2f} {run['peak_rss_mb']:>8.0f}",
              flush=True)
    if len(runs) > 1:
        peaks = [run["peak_rss_mb"] for run in runs]
        print(f"peak RSS spread: {100 * (max(peaks) - min(peaks)) / min(peaks):.1f} % between the shortest and longest clip")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
