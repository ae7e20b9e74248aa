"""Whisper tiny.en encoder speed: seconds of audio encoded per second of wall time.

    python benchmarks/bench_whisper.py [--device cpu|cuda] [--seconds 10 60] [--repeats 3]

The audio is the synthetic voice (resyncer_core.synth.synthetic_speech) at 25 fps. Every window
costs one full 30 s Whisper pass (shorter audio is padded, as Whisper was trained), so clips up
to 29 s cost about the same; longer ones take one pass per 20 s after the first.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_ms_per_frame

from resyncer_core.audio import WhisperAudioEncoder
from resyncer_core.synth.speech import synthetic_speech

FPS = 25


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    encoder = WhisperAudioEncoder.from_file(device=args.device)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"{'audio s':>8} {'wall s':>8} {'audio s per s':>14}")
    for seconds in args.seconds:
        audio = synthetic_speech(seconds, seed=0)
        frames = round(seconds * FPS)
        ms_per_frame = best_ms_per_frame(lambda: encoder.encode(audio, FPS), frames, args.repeats, args.device)
        wall = ms_per_frame * frames / 1000.0
        print(f"{seconds:8.1f} {wall:8.2f} {seconds / wall:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
