"""Writes the README's demo figure: the input and each output, cut to the face, at four moments
of the speech chosen from its phone alignment — a pause, a P/B/M closure, a mid vowel and an
open vowel (the middle frame of the longest such phone) — and prints their re-tracked apertures.

    resyncer lipsync --video demo/portrait.png --audio demo/speech.wav -o out/demo_lipsync.mp4
    python tools/demo_figure.py demo/portrait.png out/demo_lipsync.mp4 --audio demo/speech.wav \
        -o docs/demo_lipsync_frames.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.face.lips import aperture_iod
from resyncer_core.metrics.visible_sync import BILABIALS, OPEN_VOWELS, SILENCES
from resyncer_core.stages.frame_source import FrameSource
from resyncer_core.video import probe_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from visible_sync import phones_for  # noqa: E402  (benchmarks/ is a folder of scripts)

FACE_MARGIN = 0.15  # of the face box's size, around it
MID_VOWELS = frozenset({"EH", "IH", "EY", "ER", "UH"})
MOMENTS = (("pause", SILENCES), ("P/B/M", BILABIALS), ("mid vowel", MID_VOWELS), ("open vowel", OPEN_VOWELS))


def moment_frames(phones, fps: float, frame_count: int) -> list[int]:
    """The middle frame of the longest phone of each MOMENTS class."""
    picks = []
    for _, members in MOMENTS:
        spans = [(end - start, start, end) for phone, start, end in phones if phone.rstrip("012").upper() in members]
        _, start, end = max(spans)
        picks.append(min(frame_count - 1, int(0.5 * (start + end) * fps)))
    return picks


def face_box(landmarks: np.ndarray, frame_size: tuple[int, int]) -> tuple[slice, slice]:
    (x0, y0), (x1, y1) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    margin = FACE_MARGIN * max(x1 - x0, y1 - y0)
    height, width = frame_size
    return (slice(max(0, int(y0 - margin)), min(height, int(y1 + margin))),
            slice(max(0, int(x0 - margin)), min(width, int(x1 + margin))))


def frames_at(path: Path, indices: list[int]) -> np.ndarray:
    count = probe_video(path).frame_count
    with FrameSource(path) as source:  # a still is one frame, held
        return np.stack([source.read(min(i, count - 1), min(i, count - 1) + 1)[0] for i in indices])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="the input video or still (top row)")
    parser.add_argument("outputs", type=Path, nargs="+", help="lip-synced outputs (one row each)")
    parser.add_argument("--audio", type=Path, required=True, help="the speech they were made with")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/demo_lipsync_frames.png"))
    args = parser.parse_args()

    info = probe_video(args.outputs[0])
    picks = moment_frames(phones_for(args.audio, None), info.fps, info.frame_count)
    tracker = FaceTracker("cpu")
    rows, report = [], []
    first = frames_at(args.input, picks)
    box = face_box(tracker.detect(first[0]).landmarks, first.shape[1:3])
    for path in [args.input, *args.outputs]:
        frames = frames_at(path, picks)
        apertures = [aperture_iod(tracker.detect(frame).landmarks[None])[0] for frame in frames]
        report.append(f"{path.name}: " + ", ".join(f"{name} {a:.3f}" for (name, _), a in zip(MOMENTS, apertures)))
        rows.append(np.concatenate([frame[box] for frame in frames], 1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.output, optimize=True)
    print(f"wrote {args.output}: frames {picks} ({', '.join(name for name, _ in MOMENTS)}); re-tracked aperture in IOD:")
    print("\n".join(report))


if __name__ == "__main__":
    main()
