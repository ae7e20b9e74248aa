"""Render the viseme rig's mouth shapes as a picture sheet (white Lambertian mesh, front and 3/4 view).

    python tools/render_viseme_sheet.py -o docs/viseme_sheet.png

Each column is one viseme held for 0.4 s between silences (the frame in its middle, so what is
shown is the coarticulated shape the corpus uses); the top row is the front view, the bottom
row a 35° three-quarter view. A last pair of columns shows "AA" for a subdued and an
exaggerated synthetic speaker.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from resyncer_core.face.topology import triangles
from resyncer_core.render import TorchRasterizer
from resyncer_core.mouth.viseme_rig import RIG_FPS, SpeakingStyle, VisemeRig

SHOWN = [("sil", "SIL"), ("PP (m)", "M"), ("FF (f)", "F"), ("TH", "TH"), ("DD (t)", "T"), ("KK (k)", "K"),
         ("CH (sh)", "SH"), ("SS (s)", "S"), ("RR (r)", "R"), ("WW (w)", "W"), ("AA", "AA"), ("AE", "AE"),
         ("EH", "EH"), ("IY", "IY"), ("UW (oo)", "UW"), ("AO", "AO")]
STYLES = [("AA quiet", SpeakingStyle(amplitude=0.55)), ("AA loud", SpeakingStyle(amplitude=1.5))]
CELL = 200
# The lower face in canonical units: x -6.5..6.5, y -10.5..0.5.
VIEW_CENTRE = np.array([0.0, -5.0, 0.0])
VIEW_HALF_SIZE = 6.0


def held_phone_mesh(rig: VisemeRig, phone: str, style: SpeakingStyle) -> torch.Tensor:
    timings = [("SIL", 0.0, 0.4), (phone, 0.4, 0.8), ("SIL", 0.8, 1.2)]
    delta = rig(timings, frame_count=int(1.2 * RIG_FPS), style=style)
    return rig.rest + delta[int(0.6 * RIG_FPS)]


def to_pixels(mesh: torch.Tensor, yaw_degrees: float) -> torch.Tensor:
    """Canonical mesh → crop pixels (x right, y down, smaller z nearer), turned by `yaw` about y."""
    yaw = math.radians(yaw_degrees)
    rotation = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]],
                            dtype=torch.float32)
    turned = (mesh - torch.tensor(VIEW_CENTRE, dtype=torch.float32)) @ rotation.T
    scale = CELL / (2 * VIEW_HALF_SIZE)
    return torch.stack([CELL / 2 + scale * turned[:, 0], CELL / 2 - scale * turned[:, 1], -scale * turned[:, 2]], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/viseme_sheet.png"))
    args = parser.parse_args()
    rig = VisemeRig()
    meshes = [(label, held_phone_mesh(rig, phone, SpeakingStyle())) for label, phone in SHOWN]
    meshes += [(label, held_phone_mesh(rig, "AA", style)) for label, style in STYLES]
    renderer, faces = TorchRasterizer(), torch.tensor(triangles())
    label_height = 18
    sheet = Image.new("RGB", (CELL * len(meshes) // 2, 4 * (CELL + label_height)), "black")
    draw = ImageDraw.Draw(sheet)
    for index, (label, mesh) in enumerate(meshes):
        column, block = index % (len(meshes) // 2), index // (len(meshes) // 2)
        for view, yaw in enumerate((0.0, 35.0)):
            image = renderer.render(to_pixels(mesh, yaw)[None], faces, CELL).image[0]
            pixels = ((image.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            top = (2 * block + view) * (CELL + label_height)
            sheet.paste(Image.fromarray(pixels), (column * CELL, top + label_height))
            draw.text((column * CELL + 4, top + 3), f"{label} {'front' if view == 0 else '3/4'}", fill="yellow")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
