from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np

from resyncer_core.face import topology

TOOL = Path(__file__).resolve().parent.parent / "tools" / "extract_mediapipe_geometry.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("extract_mediapipe_geometry", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def boundary_loop_lengths(triangles: np.ndarray) -> list[int]:
    return sorted(len(loop) for loop in load_tool().boundary_loops(triangles))


def test_stored_geometry_has_the_mediapipe_shapes():
    assert topology.template_vertices().shape == (468, 3)
    assert topology.template_vertices().dtype == np.float32
    assert topology.triangles().shape == (852, 3)
    assert topology.closed_triangles().shape == (898, 3)
    weights = topology.rigid_weights()
    assert weights.shape == (468,) and np.count_nonzero(weights) == 27 and weights.min() >= 0
    with np.load(topology.DATA_FILE, allow_pickle=False) as stored:
        mediapipe_weights = stored["rigid_weights"]  # stored as published: 33 points
    assert np.count_nonzero(mediapipe_weights) == 33
    kept = weights > 0
    np.testing.assert_array_equal(weights[kept], mediapipe_weights[kept])
    assert set(np.flatnonzero((mediapipe_weights > 0) & ~kept).tolist()) == {132, 136, 147, 361, 365, 376}
    assert topology.face_oval().shape == (36,) and topology.face_oval()[0] == 10


def test_tessellation_is_one_consistently_wound_surface_with_open_eyes_and_mouth():
    triangles = topology.triangles()
    directed = Counter((int(t[i]), int(t[(i + 1) % 3])) for t in triangles for i in range(3))
    assert max(directed.values()) == 1  # every interior edge is walked once each way
    assert len(np.unique(triangles)) == 468
    # outline 36, inner lips 20, two eyes 16: V − E + F = 468 − 1322 + 852 = −2 = 2 − 4 loops
    assert boundary_loop_lengths(triangles) == [16, 16, 20, 36]
    assert boundary_loop_lengths(topology.closed_triangles()) == [36]

    vertices = topology.template_vertices()
    corners = vertices[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert (normals[:, 2] > 0).mean() > 0.95  # counter-clockwise seen from the front


def test_named_regions_nest_and_contain_their_landmarks():
    lower = set(topology.lower_face_vertices().tolist())
    full = set(topology.full_face_vertices().tolist())
    assert lower < full
    assert set(topology.MOUTH_CORNERS) | {topology.CHIN} <= lower
    eyes = set(topology.RIGHT_EYE_CORNERS) | set(topology.LEFT_EYE_CORNERS)
    assert eyes <= full and not eyes & lower
    assert set(topology.EYEBROW_TOPS) <= full
    assert topology.face_oval()[0] not in full  # the top of the forehead is not part of A'
    assert len(topology.region_triangles(topology.lower_face_vertices())) > 200
    assert np.isin(topology.region_triangles(topology.lower_face_vertices()), list(lower)).all()


def test_extraction_tool_regenerates_the_stored_file(tmp_path):
    """Round trip: write MediaPipe-format sources from the stored arrays, extract them again."""
    tool = load_tool()

    vertices = topology.template_vertices()
    with np.load(topology.DATA_FILE, allow_pickle=False) as stored:
        weights = stored["rigid_weights"]
    pbtxt = [f"procrustes_landmark_basis {{ landmark_id: {i} weight: {float(weights[i])!r} }}" for i in np.flatnonzero(weights)]
    pbtxt += [f"  vertex_buffer: {value!r}" for v in vertices for value in (*v.tolist(), 0.5, 0.5)]
    pbtxt += [f"  index_buffer: {i}" for i in topology.closed_triangles().ravel()]
    data_dir = tmp_path / "mediapipe" / "modules" / "face_geometry" / "data"
    data_dir.mkdir(parents=True)
    (data_dir / tool.METADATA_NAME).write_text("\n".join(pbtxt))
    edges = ", ".join(f"({a}, {b}), ({b}, {c}), ({c}, {a})" for a, b, c in topology.triangles())
    (tmp_path / tool.CONNECTIONS_NAME).write_text(f"FACEMESH_TESSELATION = frozenset([{edges}])\n")

    output = tmp_path / "geometry.npz"
    assert tool.main([str(tmp_path), "-o", str(output)]) == 0
    with np.load(output, allow_pickle=False) as regenerated, np.load(topology.DATA_FILE, allow_pickle=False) as stored:
        for name in ("template_vertices", "triangles", "closed_triangles", "rigid_weights", "face_oval"):
            np.testing.assert_array_equal(regenerated[name], stored[name])
