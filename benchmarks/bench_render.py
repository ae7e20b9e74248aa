"""Renderer and mask timings at 256² (ms per frame), for the pure-torch backend on CPU by default.

    python benchmarks/bench_render.py [--device cuda] [--backend auto|torch|nvdiffrast] [--repeats 5]

The mesh is MediaPipe's canonical face, posed with a spread of head turns and aligned into
its crop, i.e. the production case. Reports the best of --repeats runs (the least disturbed
by other processes).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import best_ms_per_frame

from resyncer_core.face import topology
from resyncer_core.face.alignment import crop_affine_from_landmarks, crop_points
from resyncer_core.face.canonical import Pose, from_canonical
from resyncer_core.face.masks import full_face_mask, lower_face_mask
from resyncer_core.render import get_renderer

SIZE = 256


def crop_meshes(count: int, device: torch.device) -> torch.Tensor:
    yaw = np.radians(np.linspace(-30, 30, count))
    rotations = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in yaw])
    pose = Pose(torch.full((count,), 10.0), torch.tensor(rotations, dtype=torch.float32), torch.tensor([[320.0, 240.0, 0.0]]).expand(count, 3))
    landmarks = from_canonical(torch.tensor(topology.template_vertices()), pose)
    return crop_points(landmarks, crop_affine_from_landmarks(landmarks)).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "nvdiffrast"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    renderer = get_renderer(args.backend, device)
    triangles = torch.tensor(topology.triangles(), device=device)

    print(f"{type(renderer).__name__} on {device}, {SIZE}², torch threads {torch.get_num_threads()}")
    for batch in (1, 16):
        meshes = crop_meshes(batch, device)
        render_ms = best_ms_per_frame(lambda: renderer.render(meshes, triangles, SIZE), batch, args.repeats, device)
        lower_ms = best_ms_per_frame(lambda: lower_face_mask(meshes, SIZE), batch, args.repeats, device)
        full_ms = best_ms_per_frame(lambda: full_face_mask(meshes, SIZE), batch, args.repeats, device)
        print(f"batch {batch:2d}: render {render_ms:6.2f} ms/frame   lower-face mask {lower_ms:6.2f}   full-face mask {full_ms:6.2f}")


if __name__ == "__main__":
    main()
