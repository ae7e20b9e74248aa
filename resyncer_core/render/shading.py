"""White Lambertian shading of rasterised fragments (the paper's untextured white mesh).

Normals are per-vertex (area-weighted face normals) interpolated per pixel, so the mesh looks
smooth rather than faceted. Lighting is two-sided (|n·l|): a mesh whose winding is reversed,
e.g. after a mirror, still renders lit.
"""

from __future__ import annotations

import torch

from .results import Fragments, RenderResult

# Towards the light, in render axes (x right, y down, z away from the camera): from the camera,
# tilted a little from above so the nose and lips cast shading cues below them.
LIGHT_DIRECTION = (0.0, -0.3, -1.0)
AMBIENT = 0.25
DIFFUSE = 0.75


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Unit vertex normals [B,V,3]: sums of adjacent face normals weighted by face area."""
    corners = vertices[:, triangles]  # [B,F,3,3]
    face_normals = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    normals.index_add_(1, triangles.reshape(-1), face_normals.repeat_interleave(3, dim=1))
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def shade(vertices: torch.Tensor, triangles: torch.Tensor, fragments: Fragments) -> RenderResult:
    """Image, coverage and depth for the fragments of vertices [B,V,3] / triangles [F,3]."""
    batch, height, width = fragments.triangle_id.shape
    num_vertices = vertices.shape[1]
    triangle_id = fragments.triangle_id.reshape(-1)
    covered = (triangle_id >= 0).nonzero(as_tuple=True)[0]  # flat pixel ids
    frame = torch.div(covered, height * width, rounding_mode="floor")
    # Flat vertex ids [K,3] into vertices.view(B·V, 3): index_select is the fast gather.
    corner_ids = (triangles.index_select(0, triangle_id.index_select(0, covered)) + (frame * num_vertices)[:, None]).reshape(-1)
    weights = fragments.barycentric.reshape(-1, 3).index_select(0, covered)[..., None]  # [K,3,1]

    corner_depths = vertices.reshape(-1, 3)[:, 2].index_select(0, corner_ids).view(-1, 3)
    corner_normals = vertex_normals(vertices, triangles).reshape(-1, 3).index_select(0, corner_ids).view(-1, 3, 3)
    pixel_normals = torch.nn.functional.normalize((weights * corner_normals).sum(1), dim=-1, eps=1e-12)
    light = torch.nn.functional.normalize(torch.tensor(LIGHT_DIRECTION, dtype=vertices.dtype, device=vertices.device), dim=0)

    intensity = vertices.new_zeros(batch * height * width)
    intensity[covered] = AMBIENT + DIFFUSE * (pixel_normals @ light).abs()
    depth = vertices.new_zeros(batch * height * width)
    depth[covered] = (weights[..., 0] * corner_depths).sum(-1)
    image = (2 * intensity - 1).view(batch, 1, height, width)
    return RenderResult(
        image=image.expand(batch, 3, height, width).contiguous(),
        coverage=(triangle_id >= 0).to(vertices.dtype).view(batch, 1, height, width),
        depth=depth.view(batch, 1, height, width),
    )
