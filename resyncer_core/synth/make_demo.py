"""Regenerates the bundled demo assets: `python -m resyncer_core.synth.make_demo demo/`.

target.mp4 is a silent 4 s synthetic talking head (seed 0); speech.wav is 4 s of synthetic
voice from a different seed (1), so lip-syncing the video to it visibly changes the mouth.
"""

from __future__ import annotations

import argparse
import sys
import wave
from pathlib import Path

import numpy as np

from ..errors import ResyncerInputError
from ..video.partial_file import partial_file
from .clip_file import SPEECH_SAMPLE_RATE, write_synthetic_clip
from .speech import synthetic_speech

DEMO_SECONDS = 4.0
DEMO_FPS = 25
DEMO_SIZE = (512, 512)
TARGET_SEED, SPEECH_SEED = 0, 1


def make_demo(folder: str | Path) -> tuple[Path, Path]:
    """Writes target.mp4 and speech.wav into `folder`; returns their paths."""
    folder = Path(folder)
    target = write_synthetic_clip(folder / "target.mp4", DEMO_SECONDS, DEMO_FPS, DEMO_SIZE,
                                  with_audio=False, seed=TARGET_SEED, preset="veryslow")
    speech = write_wav(folder / "speech.wav", synthetic_speech(DEMO_SECONDS, SPEECH_SAMPLE_RATE, SPEECH_SEED), SPEECH_SAMPLE_RATE)
    return target, speech


def write_wav(path: Path, waveform: np.ndarray, sample_rate: int) -> Path:
    """Mono 16-bit PCM WAV, written atomically."""
    samples = np.rint(np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")
    with partial_file(path) as temp_path, wave.open(str(temp_path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(samples.tobytes())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resyncer_core.synth.make_demo", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("demo"), help="where to write the assets (default: demo)")
    args = parser.parse_args(argv)
    try:
        for path in make_demo(args.folder):
            print(f"{path} ({path.stat().st_size // 1024} KiB)")
    except ResyncerInputError as error:
        print(f"make_demo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
