"""Writes docs/mesh_warp_frames.png: the mesh warp re-driving the real-photo clip's mouth, input
(top) vs output (bottom) at the driver's closed, half-open and open frames, and prints how well
the re-tracked output follows the driver and how far the lower face's colour moves.

    python tools/warp_figure.py [--output docs/mesh_warp_frames.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.render.mesh_warp import lip_gap
from resyncer_core.stages.functions import aligned_crops, paste_back
from resyncer_core.stages.warping import MeshWarp, warp_crops
from resyncer_core.synth import synthetic_talking_clip
from resyncer_core.synth.mouth import jaw_meshes
from resyncer_core.synth.talking_clip import SPEAKING_STYLE

FRAMES = 50
SIZE = (480, 480)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/mesh_warp_frames.png"))
    args = parser.parse_args()

    frames, _ = synthetic_talking_clip(FRAMES, size=SIZE, seed=0, motion="gentle")
    tracker = FaceTracker("cpu")
    track = tracker.track(frames, 25)
    # Jaw openings from closed to the synthetic speaker's widest "aa" and back, twice.
    openings = (SPEAKING_STYLE.amplitude * (0.5 - 0.5 * np.cos(np.linspace(0, 4 * np.pi, FRAMES)))).astype(np.float32)
    meshes = jaw_meshes(track.template, openings)
    warped, masks = warp_crops(MeshWarp(torch.device("cpu")), aligned_crops(frames, track), track, meshes)
    output, regions = paste_back(frames, warped, track.crop_affine, masks)

    wanted = lip_gap(torch.from_numpy(meshes)).numpy()
    seen = lip_gap(torch.from_numpy(tracker.track(output, 25).canonical)).numpy()
    shifts = []
    for before, after, region in zip(frames, output, regions):
        ys, xs = region.window.slices()
        inside = (region.weights > 0.5).numpy()
        shifts.append(np.abs(after[ys, xs][inside].mean(0) - before[ys, xs][inside].astype(float).mean(0)).max())
    print(f"lip gap of the re-tracked output vs the driving mesh: correlation {np.corrcoef(wanted, seen)[0, 1]:.3f}")
    print(f"lower-face mean colour shift: max {max(shifts):.2f} levels, median {np.median(shifts):.2f}")

    picks = [int(np.argmin(openings[:15])), int(np.argmin(np.abs(openings[:15] - openings.max() / 2))), int(np.argmax(openings[:15]))]
    box = (slice(SIZE[0] * 3 // 10, SIZE[0] * 3 // 4), slice(SIZE[1] * 3 // 10, SIZE[1] * 7 // 10))
    rows = [np.concatenate([images[i][box] for i in picks], 1) for images in (frames, output)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.output, optimize=True)
    print(f"wrote {args.output}: frames {picks} (driver opening {', '.join(f'{openings[i]:.2f}' for i in picks)}), "
          "input top, warped bottom")


if __name__ == "__main__":
    main()
