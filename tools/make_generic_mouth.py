"""Builds resyncer_core/render/assets/generic_mouth.npz, the mesh warp's mouth interior of last
resort: the aligned 256² crop of the bundled astronaut photo (NASA, public domain; see
resyncer_core/synth/assets/NOTICE), whose smile shows both rows of teeth, and its tracked mesh
in crop pixels. A face whose clip never opens its mouth borrows these teeth (render.mesh_warp).

    python tools/make_generic_mouth.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resyncer_core.face import FaceTracker
from resyncer_core.render.mesh_warp import GENERIC_MOUTH_FILE
from resyncer_core.stages.functions import aligned_crops
from resyncer_core.stages.warping import tracked_in_crop

PHOTO = Path(__file__).resolve().parents[1] / "resyncer_core" / "synth" / "assets" / "astronaut_face.png"


def main() -> None:
    image = np.array(Image.open(PHOTO).convert("RGB"))[None]
    track = FaceTracker().track(image, 25.0)
    crop = ((aligned_crops(image, track)[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    np.savez_compressed(GENERIC_MOUTH_FILE, image=crop.permute(1, 2, 0).numpy(),
                        mesh=tracked_in_crop(track)[0, :, :2].numpy().astype(np.float32))
    print(f"wrote {GENERIC_MOUTH_FILE}")


if __name__ == "__main__":
    main()
