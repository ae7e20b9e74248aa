"""Does a face swap swap? (DESIGN §10, identity; issue 21.)

    python benchmarks/swap_identity.py --target TARGET --identity FACE [--output OUT.mp4]
                                       [--frames 8] [--save-still OUT.png] [--face RULE] [--json F]

With --output (what `resyncer swap --video TARGET --identity FACE` wrote), samples --frames
frames spread over it; with a still TARGET (an image) and no --output, swaps the still in
process with the training-free swap (stages.identity_transfer, at the image's resolution) and
measures that, writing it to --save-still. Per sampled frame, with the shipped face descriptor
(the one stages.face_identity uses): cosine(output, identity) and cosine(output, target), each
on aligned crops of re-tracked faces. Also: PSNR of the pixels outside the face box (the target's
tracked landmarks' box, widened by FACE_BOX_MARGIN of its size) against the target, and the
lower-face sharpness (variance of the Laplacian, nose to chin) of the output over that of the
identity photo resized so its inter-ocular distance is the output's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.face.lips import OUTER_EYE_CORNERS
from resyncer_core.metrics.visible_sync import laplacian_variance, lower_face_box
from resyncer_core.stages.face_identity import evenly_spaced, face_descriptor_network
from resyncer_core.stages.frame_source import FrameSource
from resyncer_core.stages.functions import aligned_crops, paste_back, select_frames
from resyncer_core.stages.identity_transfer import IdentityWarp, identity_texture, transfer_identity
from resyncer_core.video import probe_video

FACE_BOX_MARGIN = 0.15


def read_image(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except OSError:
        return None


def swap_still(tracker: FaceTracker, target: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """The training-free swap of one still [H,W,3] uint8 at its own resolution (no audio: the
    target's own expression)."""
    target_track = tracker.track(target[None])
    identity_track = tracker.track(identity[None])
    crops = aligned_crops(target[None], target_track)
    meshes = torch.from_numpy(identity_track.template[None] + target_track.delta()).float()
    renderer = IdentityWarp(torch.device("cpu"), identity_texture(identity[None], identity_track))
    swapped, masks, native = transfer_identity(renderer, crops, target_track, meshes)
    return paste_back(target[None], swapped, target_track.crop_affine, masks, native=native)[0][0]


def face_box(landmarks: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    points = landmarks[:, :2]
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    margin_x, margin_y = FACE_BOX_MARGIN * (x1 - x0), FACE_BOX_MARGIN * (y1 - y0)
    height, width = frame_size
    return (int(max(0, x0 - margin_x)), int(max(0, y0 - margin_y)), int(min(width, x1 + margin_x + 1)),
            int(min(height, y1 + margin_y + 1)))


def psnr_outside(output: np.ndarray, target: np.ndarray, box: tuple[int, int, int, int]) -> float:
    keep = np.ones(output.shape[:2], bool)
    x0, y0, x1, y1 = box
    keep[y0:y1, x0:x1] = False
    error = ((output.astype(np.float64) - target.astype(np.float64)) ** 2)[keep].mean()
    return float("inf") if error == 0 else float(10 * np.log10(255.0 ** 2 / error))


def iod(landmarks: np.ndarray) -> float:
    left, right = OUTER_EYE_CORNERS
    return float(np.linalg.norm(landmarks[left, :2] - landmarks[right, :2]))


def identity_sharpness_at(identity: np.ndarray, identity_landmarks: np.ndarray, wanted_iod: float) -> float:
    """Lower-face Laplacian variance of the identity photo resized to the wanted IOD."""
    scale = wanted_iod / iod(identity_landmarks)
    size = (max(1, round(identity.shape[1] * scale)), max(1, round(identity.shape[0] * scale)))
    resized = np.array(Image.fromarray(identity).resize(size, Image.BICUBIC))
    box = lower_face_box(identity_landmarks * scale, resized.shape[:2])
    return laplacian_variance(resized, box)


@torch.no_grad()
def descriptors(network, crops: torch.Tensor) -> torch.Tensor:
    return F.normalize(network(crops).float(), dim=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, required=True, help="the target video or still that was swapped")
    parser.add_argument("--identity", type=Path, required=True, help="the identity photo")
    parser.add_argument("--output", type=Path, default=None, help="the swap's output video (none: swap a still here)")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled from a video")
    parser.add_argument("--save-still", type=Path, default=None, help="where to write a still's swap (PNG)")
    parser.add_argument("--face", default="largest", help="which face of several: largest, center, index N")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tracker = FaceTracker("cpu", face=args.face)
    identity = read_image(args.identity)
    still = read_image(args.target)
    if still is not None and args.output is None:
        targets = still[None]
        outputs = swap_still(tracker, still, identity)[None]
        if args.save_still is not None:
            Image.fromarray(outputs[0]).save(args.save_still)
    else:
        indices = evenly_spaced(probe_video(args.output).frame_count, args.frames)
        with FrameSource(args.output) as source:
            outputs = source.read_each(indices)
        if still is not None:
            targets = np.repeat(still[None], len(indices), 0)
        else:
            with FrameSource(args.target) as source:
                targets = source.read_each(indices % probe_video(args.target).frame_count)
    target_track = tracker.track(targets, smoothing=0.0)
    output_track = tracker.track(outputs, smoothing=0.0)
    identity_track = tracker.track(identity[None])
    network = face_descriptor_network()
    found = np.flatnonzero(target_track.valid & output_track.valid)
    if not len(found):
        print("no face in the sampled frames", file=sys.stderr)
        return 1
    out = descriptors(network, aligned_crops(outputs[found], select_frames(output_track, found)))
    tgt = descriptors(network, aligned_crops(targets[found], select_frames(target_track, found)))
    ident = descriptors(network, aligned_crops(identity[None], identity_track))
    rows = []
    for row, index in enumerate(found):
        landmarks = target_track.landmarks[index]
        out_landmarks = output_track.landmarks[index]
        box = lower_face_box(out_landmarks, outputs.shape[1:3])
        rows.append({
            "frame": int(index),
            "cos_identity": float(out[row] @ ident[0]),
            "cos_target": float(out[row] @ tgt[row]),
            "background_psnr": psnr_outside(outputs[index], targets[index], face_box(landmarks, targets.shape[1:3])),
            "sharpness": laplacian_variance(outputs[index], box) / identity_sharpness_at(
                identity, identity_track.landmarks[0], iod(out_landmarks)),
        })
    for r in rows:
        print(f"frame {r['frame']:4d}: cos(out, identity) {r['cos_identity']:.3f}  cos(out, target) "
              f"{r['cos_target']:.3f}  background PSNR {r['background_psnr']:.1f} dB  sharpness {r['sharpness']:.2f}")
    swapped = all(r["cos_identity"] > r["cos_target"] for r in rows)
    print(f"identity closer than target on {sum(r['cos_identity'] > r['cos_target'] for r in rows)}/{len(rows)} "
          f"frames; min background PSNR {min(r['background_psnr'] for r in rows):.1f} dB; median sharpness "
          f"{np.median([r['sharpness'] for r in rows]):.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "swapped": swapped}, indent=1))
    return 0 if swapped else 1


if __name__ == "__main__":
    sys.exit(main())
