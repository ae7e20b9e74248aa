"""Mesh warp vs generator, ms per frame on real 720p frames (a synthetic talking clip of the
bundled photo, tracked):

    python benchmarks/bench_warp.py [--device cuda] [--frames 16] [--repeats 3] [--preset small]

Both renderers start from the same aligned crops: the generator path is the mesh overlay
(render stage) plus the generator (random weights of --preset: the speed is the
architecture's), the warp path is warp_crops (mouth memory built from the same crops). Cropping,
blending and coding are shared by both and not timed here. Best of --repeats runs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import best_ms_per_frame

from resyncer_core.face import FaceTracker
from resyncer_core.models.presets import preset_config
from resyncer_core.models.registry import model_kind
from resyncer_core.stages.functions import aligned_crops, generate_crops, overlay_crops
from resyncer_core.stages.warping import MeshWarp, mouth_memory, warp_crops
from resyncer_core.synth import synthetic_talking_clip
from resyncer_core.synth.mouth import jaw_meshes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "paper"])
    args = parser.parse_args()
    device = torch.device(args.device)

    frames, _ = synthetic_talking_clip(args.frames, size=(720, 1280), seed=0)
    track = FaceTracker(device).track(frames, 25)
    openings = np.linspace(0, 1, args.frames)
    meshes = jaw_meshes(track.template, openings)
    crops = aligned_crops(frames, track)
    warp = MeshWarp(device, mouth_memory(crops, track))
    config = preset_config(args.preset, "generator")
    generator = model_kind("generator").load_classes()[0](config).to(device).eval()
    _, overlays, masks = overlay_crops(frames, track, meshes)

    count = args.frames
    warp_ms = best_ms_per_frame(lambda: warp_crops(warp, crops, track, meshes, batch_size=args.batch_size),
                                count, args.repeats, device)
    overlay_ms = best_ms_per_frame(lambda: overlay_crops(frames, track, meshes), count, args.repeats, device)
    crop_ms = best_ms_per_frame(lambda: aligned_crops(frames, track), count, args.repeats, device)
    generator_ms = best_ms_per_frame(lambda: generate_crops(generator, overlays, crops, args.batch_size, masks),
                                     count, args.repeats, device)
    print(f"720p, {count} frames, batch {args.batch_size}, {device}, torch threads {torch.get_num_threads()}")
    print(f"mesh warp:            {warp_ms:7.1f} ms/frame")
    print(f"{args.preset} generator:      {generator_ms:7.1f} ms/frame "
          f"(+ mesh overlay {max(overlay_ms - crop_ms, 0.0):.1f} beyond the crops both paths need)")


if __name__ == "__main__":
    main()
