"""Regenerate resyncer_core/face/data/mediapipe_face_geometry.npz from MediaPipe's own files.

MediaPipe (Apache-2.0) publishes the 468-vertex face geometry in two places:

* `mediapipe/modules/face_geometry/data/geometry_pipeline_metadata_landmarks.pbtxt`: the
  canonical face model (468 vertices, metric-ish centimetres, x right, y up, z towards the
  viewer), its closed triangulation (898 triangles: eyes and mouth filled in) and the
  Procrustes landmark weights (33 rigid landmarks) that MediaPipe's own geometry pipeline fits
  with. The file lives in the MediaPipe source tree; the PyPI wheels (checked: 0.10.21 and
  1.2.2) do not ship it.
* `mediapipe/python/solutions/face_mesh_connections.py`: FACEMESH_TESSELATION, written in the
  source as 852 consecutive closed edge triples (a,b),(b,c),(c,a), i.e. the face mesh
  triangles with eyes and mouth left open. Shipped in the wheels and in the source tree.

Usage (any mix of wheels, zips and source checkouts; each file is taken from the first source
that has it):

    python tools/extract_mediapipe_geometry.py path/to/mediapipe-checkout
    python tools/extract_mediapipe_geometry.py mediapipe-0.10.21-...whl path/to/the.pbtxt

The files are parsed as text (regular expressions); nothing is imported or executed from them.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

METADATA_NAME = "geometry_pipeline_metadata_landmarks.pbtxt"
CONNECTIONS_NAME = "face_mesh_connections.py"
NUM_VERTICES = 468
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "resyncer_core" / "face" / "data" / "mediapipe_face_geometry.npz"
)


def read_named_file(sources: list[Path], name: str) -> tuple[str, str]:
    """Text and origin of the first file called `name` in the given wheels, zips, dirs or files."""
    for source in sources:
        if source.is_file() and source.name == name:
            return source.read_text(), str(source)
        if source.is_dir():
            # The task-API copy differs only in its licence header; prefer the modules/ one.
            hits = sorted(source.rglob(name), key=lambda p: ("modules" not in p.parts, str(p)))
            if hits:
                return hits[0].read_text(), str(hits[0])
        if source.is_file() and zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                members = sorted(
                    (m for m in archive.namelist() if m.endswith("/" + name)),
                    key=lambda m: ("modules" not in m, m),
                )
                if members:
                    return archive.read(members[0]).decode(), f"{source}!{members[0]}"
    raise SystemExit(
        f"{name} not found in {', '.join(map(str, sources))}; it is in the MediaPipe source tree "
        "(github.com/google-ai-edge/mediapipe), the wheels lack the face geometry metadata"
    )


def parse_metadata(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [468,3], closed triangles [898,3], Procrustes weights [468]) from the pbtxt."""
    vertex_buffer = np.array(re.findall(r"vertex_buffer:\s*([-+\d.eE]+)", text), dtype=np.float64)
    # VERTEX_PT layout: x, y, z, u, v per vertex; the texture coordinates are not needed.
    vertices = vertex_buffer.reshape(-1, 5)[:, :3]
    closed_triangles = np.array(re.findall(r"index_buffer:\s*(\d+)", text), dtype=np.int64).reshape(-1, 3)
    weights = np.zeros(len(vertices))
    for landmark_id, weight in re.findall(r"landmark_id:\s*(\d+)\s*weight:\s*([-+\d.eE]+)", text):
        weights[int(landmark_id)] = float(weight)
    if vertices.shape != (NUM_VERTICES, 3) or closed_triangles.max() >= NUM_VERTICES:
        raise SystemExit(f"unexpected canonical mesh: {vertices.shape} vertices")
    return vertices, closed_triangles, weights


def parse_tessellation(text: str) -> np.ndarray:
    """Triangles [852,3] from FACEMESH_TESSELATION, in the source's edge-triple order."""
    start = text.index("FACEMESH_TESSELATION")
    body = text[start : text.index("])", start)]
    edges = np.array(re.findall(r"\((\d+),\s*(\d+)\)", body), dtype=np.int64).reshape(-1, 3, 2)
    closed = (edges[:, 0, 1] == edges[:, 1, 0]) & (edges[:, 1, 1] == edges[:, 2, 0]) & (edges[:, 2, 1] == edges[:, 0, 0])
    if not closed.all():
        raise SystemExit("FACEMESH_TESSELATION is no longer a list of closed edge triples")
    return edges[:, :, 0]


def boundary_loops(triangles: np.ndarray) -> list[list[int]]:
    """The mesh's open boundaries (edges with no opposite twin), each in winding order."""
    directed = {(int(t[i]), int(t[(i + 1) % 3])) for t in triangles for i in range(3)}
    following = {a: b for (a, b) in directed if (b, a) not in directed}
    loops, seen = [], set()
    for start in following:
        if start in seen:
            continue
        loop = [start]
        while following[loop[-1]] != start:
            loop.append(following[loop[-1]])
        seen.update(loop)
        loops.append(loop)
    return loops


def outer_boundary_loop(triangles: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The face oval: the longest boundary loop, in winding order, starting at the forehead top."""
    oval = max(boundary_loops(triangles), key=len)
    top = int(np.argmax(vertices[oval, 1]))
    return np.array(oval[top:] + oval[:top], dtype=np.int64)


def check_consistent_winding(triangles: np.ndarray) -> None:
    directed = Counter((int(t[i]), int(t[(i + 1) % 3])) for t in triangles for i in range(3))
    if max(directed.values()) > 1:
        raise SystemExit("triangles are not consistently wound")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="MediaPipe wheel/zip, source checkout or file")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    metadata_text, metadata_origin = read_named_file(args.sources, METADATA_NAME)
    connections_text, connections_origin = read_named_file(args.sources, CONNECTIONS_NAME)
    vertices, closed_triangles, weights = parse_metadata(metadata_text)
    triangles = parse_tessellation(connections_text)
    check_consistent_winding(triangles)
    face_oval = outer_boundary_loop(triangles, vertices)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        template_vertices=vertices.astype(np.float32),
        triangles=triangles.astype(np.int32),
        closed_triangles=closed_triangles.astype(np.int32),
        rigid_weights=weights.astype(np.float32),
        face_oval=face_oval.astype(np.int32),
        provenance=np.array(
            "MediaPipe (Apache-2.0, Copyright The MediaPipe Authors): "
            f"{Path(metadata_origin).name} and {Path(connections_origin).name}"
        ),
    )
    print(
        f"{args.output}: {len(vertices)} vertices, {len(triangles)} open triangles, "
        f"{len(closed_triangles)} closed triangles, {int((weights > 0).sum())} rigid landmarks, "
        f"face oval of {len(face_oval)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
