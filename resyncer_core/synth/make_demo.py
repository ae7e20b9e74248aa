"""Regenerates the bundled demo video: `python -m resyncer_core.synth.make_demo demo/`.

target.mp4 is a silent 4 s synthetic talking head (seed 0): the photo's mouth driven by the
viseme rig through the mesh warp. The demo's speech.wav is a real LibriVox recording (see
demo/README.md), not generated here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ResyncerInputError
from .clip_file import write_synthetic_clip

DEMO_SECONDS = 4.0
DEMO_FPS = 25
DEMO_SIZE = (512, 512)
TARGET_SEED = 0


def make_demo(folder: str | Path) -> Path:
    """Writes target.mp4 into `folder`; returns its path."""
    return write_synthetic_clip(Path(folder) / "target.mp4", DEMO_SECONDS, DEMO_FPS, DEMO_SIZE,
                                with_audio=False, seed=TARGET_SEED, preset="veryslow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resyncer_core.synth.make_demo", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("demo"), help="where to write the video (default: demo)")
    args = parser.parse_args(argv)
    try:
        path = make_demo(args.folder)
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    except ResyncerInputError as error:
        print(f"make_demo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
