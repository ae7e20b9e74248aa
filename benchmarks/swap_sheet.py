"""The training-free face swap on three head poses, as a PNG sheet (rows: poses; columns:
target, identity, output), each picture scaled to SIDE pixels high.

    python benchmarks/swap_sheet.py --identity FACE -o docs/swap_identity_sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resyncer_core.face import FaceTracker

from swap_identity import read_image, swap_still

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "face"
POSES = ("rotated_minus20.png", "astronaut.png", "rotated_plus20.png")
SIDE = 256


def _fit(image: np.ndarray) -> np.ndarray:
    return np.array(Image.fromarray(image).resize((SIDE, SIDE), Image.LANCZOS))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identity", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tracker = FaceTracker("cpu")
    identity = read_image(args.identity)
    rows = []
    for pose in POSES:
        target = read_image(FACES / pose)
        rows.append(np.concatenate([_fit(target), _fit(identity), _fit(swap_still(tracker, target, identity))], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
