"""Writes the README's demo figure: rows of the same three frames (the first output's most
closed, half open and most open mouth, by its re-tracked lip gap) from each video, cut to the
face, and prints the lip gaps.

    resyncer lipsync --video demo/target.mp4 --audio demo/speech.wav -o out/demo_lipsync.mp4
    resyncer lipsync --video demo/target.mp4 --audio demo/speech.wav -o out/demo_warp.mp4 --renderer warp
    python tools/demo_figure.py demo/target.mp4 out/demo_lipsync.mp4 out/demo_warp.mp4 -o docs/demo_lipsync_frames.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.render.mesh_warp import lip_gap
from resyncer_core.stages.warping import tracked_in_crop
from resyncer_core.video import read_frames

FACE_MARGIN = 0.15  # of the face box's size, around it


def face_box(track) -> tuple[slice, slice]:
    """One box around the tracked face over all frames (landmark extent plus a margin)."""
    points = track.landmarks[track.valid][..., :2].reshape(-1, 2)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    margin = FACE_MARGIN * max(x1 - x0, y1 - y0)
    height, width = track.frame_size
    return (slice(max(0, int(y0 - margin)), min(height, int(y1 + margin))),
            slice(max(0, int(x0 - margin)), min(width, int(x1 + margin))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="the input video (top row)")
    parser.add_argument("outputs", type=Path, nargs="+", help="output videos (one row each, frames picked on the first)")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/demo_lipsync_frames.png"))
    args = parser.parse_args()

    tracker = FaceTracker("cpu")
    videos = [read_frames(path) for path in [args.input, *args.outputs]]
    count = min(len(video) for video in videos)
    track = tracker.track(videos[1][:count], 25)
    gaps = lip_gap(tracked_in_crop(track)).numpy()
    gaps[~track.valid] = np.nan
    order = np.argsort(np.nan_to_num(gaps, nan=np.nanmedian(gaps)))
    picks = [int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    box = face_box(tracker.track(videos[0][:count], 25))
    rows = [np.concatenate([video[i][box] for i in picks], 1) for video in videos]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.output, optimize=True)
    print(f"wrote {args.output}: frames {picks}, re-tracked lip gap of {args.outputs[0].name} "
          f"{', '.join(f'{gaps[i]:.1f}' for i in picks)} crop px; rows: {', '.join(p.name for p in [args.input, *args.outputs])}")


if __name__ == "__main__":
    main()
