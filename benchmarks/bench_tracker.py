"""Face tracker speed: detector and landmark network, ms per frame, batched and one at a time.

    python benchmarks/bench_tracker.py [--device cpu|cuda] [--batch 16] [--repeats 5]

Frames are the astronaut fixture (tests/data/face/astronaut.png) scaled onto 256×256 and
1280×720 canvases, so the timings include the real pre/post-processing (letterbox or ROI crop
from the full frame, anchor decoding, NMS, landmark projection). "track" is FaceTracker's clip
tracking (detection on the first frame, then ROI propagation), the per-frame cost of a video.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import best_ms_per_frame

from resyncer_core.face.detector import FaceDetector
from resyncer_core.face.landmark_model import FaceLandmarkModel, roi_from_detection
from resyncer_core.face.tracker import FaceTracker

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "face" / "astronaut.png"


def make_frames(width: int, height: int, count: int) -> np.ndarray:
    face = Image.open(FIXTURE).convert("RGB")
    side = min(width, height)
    canvas = np.full((height, width, 3), 90, np.uint8)
    left, top = (width - side) // 2, (height - side) // 2
    canvas[top:top + side, left:left + side] = np.asarray(face.resize((side, side), Image.BILINEAR))
    return np.repeat(canvas[None], count, axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    detector, landmark_model = FaceDetector(device), FaceLandmarkModel(device)
    tracker = FaceTracker(device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, best of {args.repeats}")
    print(f"{'frame':>10} {'stage':>10} {'batched':>10} {'batch 1':>10}  (ms/frame)")
    for width, height in ((256, 256), (1280, 720)):
        frames = torch.from_numpy(make_frames(width, height, args.batch)).to(device)
        detection = detector.detect(frames[:1])[0][0]
        boxes = torch.from_numpy(np.repeat(detection.box[None], args.batch, 0)).to(device)
        keypoints = torch.from_numpy(np.repeat(detection.keypoints[None], args.batch, 0)).to(device)
        rois = roi_from_detection(boxes, keypoints)
        rows = {
            "detector": (lambda: detector.detect(frames), lambda: [detector.detect(frames[i:i + 1])
                                                                    for i in range(args.batch)]),
            "landmarks": (lambda: landmark_model.predict(frames, rois),
                          lambda: [landmark_model.predict(frames[i:i + 1], rois.select(slice(i, i + 1)))
                                   for i in range(args.batch)]),
        }
        for stage, (batched, single) in rows.items():
            batched_ms = best_ms_per_frame(batched, args.batch, args.repeats, device)
            single_ms = best_ms_per_frame(single, args.batch, args.repeats, device)
            print(f"{width}x{height:<6} {stage:>10} {batched_ms:10.2f} {single_ms:10.2f}")
        clip = frames.cpu().numpy()
        track_ms = best_ms_per_frame(lambda: tracker.track_landmarks(clip), args.batch, args.repeats, device)
        print(f"{width}x{height:<6} {'track':>10} {track_ms:10.2f} {'':>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
