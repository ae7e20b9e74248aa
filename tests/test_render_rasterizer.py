from __future__ import annotations

import pytest
import torch

from resyncer_core.face import topology
from resyncer_core.face.masks import landmark_hull_mask
from resyncer_core.render import (
    MeshRenderer,
    NvdiffrastRasterizer,
    TorchRasterizer,
    get_renderer,
    mesh_overlay,
    nvdiffrast_available,
)
from resyncer_core.render import torch_rasterizer
from test_geometry_fixtures import POSE_SWEEP, crop_vertices_for

TRIANGLES = torch.tensor(topology.triangles())
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def overlapping_triangles(near_first: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two triangles over the same pixels, one at depth 5 (near), one at depth 9 (far)."""
    near = [[4.0, 4.0, 5.0], [28.0, 4.0, 5.0], [4.0, 28.0, 5.0]]
    far = [[8.0, 8.0, 9.0], [30.0, 10.0, 9.0], [10.0, 30.0, 9.0]]
    vertices = torch.tensor([near + far if near_first else far + near])
    return vertices, torch.tensor([[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("near_first", [True, False])
def test_the_nearer_triangle_wins_whatever_the_order(near_first):
    vertices, triangles = overlapping_triangles(near_first)
    fragments = TorchRasterizer().rasterize(vertices, triangles, 32, 32)
    near_id = 0 if near_first else 1
    assert fragments.triangle_id[0, 10, 10] == near_id  # both cover (10.5, 10.5)
    assert fragments.triangle_id[0, 17, 17] == 1 - near_id  # only the far one covers (17.5, 17.5)
    result = TorchRasterizer().render(vertices, triangles, 32)
    assert result.depth[0, 0, 10, 10] == pytest.approx(5.0)
    assert result.depth[0, 0, 17, 17] == pytest.approx(9.0)


def test_depth_is_interpolated_exactly_on_a_slanted_triangle():
    vertices = torch.tensor([[[0.0, 0.0, 0.0], [20.0, 0.0, 20.0], [0.0, 20.0, 40.0]]])
    depth = TorchRasterizer().render(vertices, torch.tensor([[0, 1, 2]]), 20).depth[0, 0]
    assert depth[3, 5] == pytest.approx(5.5 + 2 * 3.5, abs=1e-4)  # z = x + 2y at the centre (5.5, 3.5)


def test_pixel_centres_decide_coverage():
    """Pixel (row i, column j) is covered when its centre (j + .5, i + .5) is inside; edges count."""
    square = torch.tensor([[[2.5, 2.5, 0.0], [7.5, 2.5, 0.0], [7.5, 7.5, 0.0], [2.5, 7.5, 0.0]]])
    halves = torch.tensor([[0, 1, 2], [0, 2, 3]])
    coverage = TorchRasterizer().render(square, halves, 10).coverage[0, 0]
    expected = torch.zeros(10, 10)
    expected[2:8, 2:8] = 1  # centres 2.5 … 7.5 on both axes
    assert torch.equal(coverage, expected)


@pytest.mark.parametrize("index", range(len(POSE_SWEEP)))
def test_mesh_coverage_matches_the_hull_of_its_projected_landmarks(index):
    vertices = crop_vertices_for([POSE_SWEEP[index]])
    coverage = TorchRasterizer().render(vertices, TRIANGLES, 256).coverage > 0
    hull = landmark_hull_mask(vertices, 256) > 0
    iou = float((coverage & hull).sum() / (coverage | hull).sum())
    assert iou >= 0.9


def test_white_lambertian_image_on_black():
    vertices = crop_vertices_for([(0, 0, 0), (40, 10, 0)])
    result = TorchRasterizer().render(vertices, TRIANGLES, 256)
    image, covered = result.image, result.coverage[:, 0] > 0
    assert image.shape == (2, 3, 256, 256) and result.coverage.shape == result.depth.shape == (2, 1, 256, 256)
    assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 0], image[:, 2])  # white albedo
    assert float(image[:, 0][~covered].max()) == -1.0 and float(image.max()) <= 1.0
    assert float(image[:, 0][covered].min()) >= -1.0 + 2 * 0.25 - 1e-5  # ambient floor
    frontal = image[0, 0, 128, 128]  # the nose bridge faces the camera...
    cheek_edge = vertices[0, 234, :2].round().long()  # ...the side of the face does not
    assert frontal > image[0, 0, cheek_edge[1], cheek_edge[0] + 3] + 0.2
    assert float(result.depth[0, 0][~covered[0]].abs().max()) == 0.0


def test_a_batch_renders_like_its_frames_one_by_one():
    vertices = crop_vertices_for(POSE_SWEEP[:4])
    renderer = TorchRasterizer()
    batch = renderer.render(vertices, TRIANGLES, 256)
    for index in range(len(vertices)):
        single = renderer.render(vertices[index : index + 1], TRIANGLES, 256)
        assert torch.equal(single.coverage, batch.coverage[index : index + 1])
        torch.testing.assert_close(single.image, batch.image[index : index + 1])


def test_small_candidate_chunks_give_the_same_picture(monkeypatch):
    vertices = crop_vertices_for(POSE_SWEEP[:2])
    whole = TorchRasterizer().render(vertices, TRIANGLES, 256)
    monkeypatch.setattr(torch_rasterizer, "CANDIDATE_CHUNK", 5000)
    chunked = TorchRasterizer().render(vertices, TRIANGLES, 256)
    assert torch.equal(chunked.coverage, whole.coverage)
    torch.testing.assert_close(chunked.image, whole.image)


def test_degenerate_offscreen_and_non_finite_triangles_are_skipped():
    vertices = torch.tensor(
        [[[1.0, 1.0, 0.0], [5.0, 5.0, 0.0], [9.0, 9.0, 0.0], [-50.0, -50.0, 0.0], [-40.0, -50.0, 0.0], [-50.0, -40.0, 0.0],
          [float("nan"), 1.0, 0.0], [3.0, 3.0, 0.0], [1.0, 6.0, 0.0], [-10.0, -10.0, 1.0], [30.0, -10.0, 1.0], [-10.0, 30.0, 1.0]]]
    )
    triangles = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]])
    result = TorchRasterizer().render(vertices, triangles, (12, 16))
    assert result.coverage.shape == (1, 1, 12, 16)
    # Only the big triangle that hangs over the image's top-left corner is drawn.
    assert set(torch.unique(TorchRasterizer().rasterize(vertices, triangles, 12, 16).triangle_id).tolist()) == {-1, 3}
    nothing = TorchRasterizer().render(torch.full((2, 3, 3), float("nan")), torch.tensor([[0, 1, 2]]), 8)
    assert float(nothing.coverage.sum()) == 0.0 and float(nothing.image.max()) == -1.0


def test_mesh_overlay_follows_the_paper_formula():
    crops = torch.rand(2, 3, 256, 256) * 2 - 1
    vertices = crop_vertices_for([(0, 0, 0), (20, 0, 10)])
    rendered = TorchRasterizer().render(vertices, TRIANGLES, 256)
    mask = torch.zeros(2, 1, 256, 256)
    mask[..., 140:, :] = 1.0
    overlaid = mesh_overlay(crops, rendered.image, mask)
    outside, inside = mask.expand_as(crops) == 0, mask.expand_as(crops) == 1
    assert torch.equal(overlaid[outside], crops[outside])  # (1 − A)·I untouched outside A
    assert torch.equal(overlaid[inside], rendered.image[inside])  # A·M^p inside A
    off_mesh = inside & (rendered.coverage.expand_as(crops) == 0)
    assert float(overlaid[off_mesh].max()) == -1.0  # masked, no mesh: black, as I^A is


def test_mesh_overlay_follows_the_crops_device():
    """The renderer (nvdiffrast: CUDA) and the mask may live on another device than the crops;
    the overlay is made where the crops are. The meta device stands in for a GPU here."""
    crops = torch.zeros(1, 3, 8, 8, device="meta")
    assert mesh_overlay(crops, torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)).device == crops.device


def test_render_shades_on_the_device_the_backend_rasterised_on(monkeypatch):
    """nvdiffrast rasterises on its CUDA device whatever device the vertices come from (the
    pipeline poses meshes on the CPU); shading must follow the fragments there. A stand-in
    backend returns its fragments on the meta device, which plays the GPU here."""
    from resyncer_core.render import base

    class ElsewhereRasterizer(MeshRenderer):
        def rasterize(self, vertices, triangles, height, width):
            fragments = TorchRasterizer().rasterize(vertices, triangles, height, width)
            return type(fragments)(fragments.triangle_id.to("meta"), fragments.barycentric.to("meta"))

    seen = {}

    def spy(vertices, triangles, fragments):
        seen.update(vertices=vertices.device, triangles=triangles.device, fragments=fragments.triangle_id.device)
        return "shaded"

    monkeypatch.setattr(base, "shade", spy)
    assert ElsewhereRasterizer().render(crop_vertices_for([(0, 0, 0)]), TRIANGLES, 64) == "shaded"
    assert seen == dict.fromkeys(("vertices", "triangles", "fragments"), torch.device("meta"))


def test_get_renderer_picks_the_torch_backend_without_cuda():
    renderer = get_renderer("auto", "cpu")
    assert isinstance(renderer, TorchRasterizer) and isinstance(renderer, MeshRenderer)
    assert isinstance(get_renderer("torch", "cpu"), TorchRasterizer)
    with pytest.raises(ValueError):
        get_renderer("opengl")
    with pytest.raises(ValueError):
        NvdiffrastRasterizer("cpu")


@cuda
def test_torch_backend_on_cuda_matches_cpu():
    vertices = crop_vertices_for(POSE_SWEEP[:3])
    on_cpu = TorchRasterizer().render(vertices, TRIANGLES, 256)
    on_gpu = TorchRasterizer().render(vertices.cuda(), TRIANGLES.cuda(), 256)
    assert on_gpu.image.is_cuda
    assert float((on_gpu.coverage.cpu() != on_cpu.coverage).float().mean()) < 1e-3
    assert float((on_gpu.image.cpu() - on_cpu.image).abs().mean()) < 1e-3


@cuda
@pytest.mark.skipif(not nvdiffrast_available(), reason="nvdiffrast is not installed")
def test_nvdiffrast_backend_renders_like_the_torch_backend():
    vertices = crop_vertices_for(POSE_SWEEP[:3]).cuda()
    renderer = get_renderer("auto", "cuda")
    assert isinstance(renderer, NvdiffrastRasterizer)
    fast = renderer.render(vertices, TRIANGLES.cuda(), 256)
    reference = TorchRasterizer().render(vertices, TRIANGLES.cuda(), 256)
    assert fast.image.shape == reference.image.shape and fast.image.is_cuda
    # Edge pixels may go either way (different rounding); the picture must agree elsewhere.
    assert float((fast.coverage != reference.coverage).float().mean()) < 0.005
    both = (fast.coverage * reference.coverage).expand_as(fast.image) > 0
    assert float((fast.image - reference.image)[both].abs().mean()) < 0.01
    torch.testing.assert_close(fast.depth[both[:, :1]], reference.depth[both[:, :1]], rtol=0, atol=0.05)
