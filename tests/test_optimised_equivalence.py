"""The speed work (issue 13) changes how things compute, not what: the generator, its swap
path, the discriminator and their gradients must give the outputs the code gave before it, on
fixed seeds, within float32 noise; the masks' coverage-only rasteriser and blur the same pixels.

tests/data/stylegan_reference.safetensors holds those outputs, written by `reference_outputs`
below running on commit fa52cea (the last commit before the optimisations) with
`python tests/test_optimised_equivalence.py WRITE_PATH`. Regenerating it with later code
would only compare the code with itself.
"""

from __future__ import annotations

import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from torch.nn import functional as F

from resyncer_core.face.masks import gaussian_blur
from resyncer_core.models.discriminator import Discriminator, DiscriminatorConfig
from resyncer_core.models.generator import GeneratorConfig, ReSyncGenerator
from resyncer_core.render.torch_rasterizer import rasterize_triangles, triangle_coverage

REFERENCE = __file__.rsplit("/", 1)[0] + "/data/stylegan_reference.safetensors"
GENERATOR_CONFIG = dict(size=32, narrow=1 / 64, style_dim=16, n_mlp=2)
DISCRIMINATOR_CONFIG = dict(size=32, narrow=1 / 64)


def _models() -> tuple[ReSyncGenerator, Discriminator]:
    torch.manual_seed(0)
    generator = ReSyncGenerator(GeneratorConfig(**GENERATOR_CONFIG))
    discriminator = Discriminator(DiscriminatorConfig(**DISCRIMINATOR_CONFIG))
    return generator, discriminator


def _inputs(batch: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    return {name: torch.randn(batch, 3, 32, 32, generator=generator) for name in ("overlay", "reference", "identity")}


def reference_outputs() -> dict[str, torch.Tensor]:
    """Every output and gradient the test compares, keyed by name. Batch 1 and batch 3: the
    layers may take different paths for a single sample."""
    generator, discriminator = _models()
    outputs = {}
    for batch in (1, 3):
        images = _inputs(batch)
        overlay = images["overlay"].requires_grad_(True)
        fake = generator(overlay, images["reference"])
        logits = discriminator(fake)
        (fake.square().mean() + logits.sum()).backward()
        outputs[f"b{batch}.generator"] = fake.detach()
        outputs[f"b{batch}.discriminator"] = logits.detach()
        outputs[f"b{batch}.overlay_grad"] = overlay.grad
        for name, parameter in [*generator.named_parameters(prefix="g"), *discriminator.named_parameters(prefix="d")]:
            outputs[f"b{batch}.grad.{name}"] = parameter.grad.clone()
        generator.zero_grad(set_to_none=True)
        discriminator.zero_grad(set_to_none=True)
        with torch.no_grad():
            outputs[f"b{batch}.swap"] = generator.swap(images["overlay"], images["identity"], images["reference"])
    return outputs


@pytest.mark.parametrize("batch", [1, 3])
def test_outputs_and_gradients_match_the_code_before_the_speed_work(batch):
    expected = {name: value for name, value in load_file(REFERENCE).items() if name.startswith(f"b{batch}.")}
    got = {name: value for name, value in reference_outputs().items() if name.startswith(f"b{batch}.")}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        scale = value.abs().max().item()
        torch.testing.assert_close(got[name], value, rtol=1e-4, atol=1e-5 * max(scale, 1.0), msg=name)


def test_coverage_only_rasterisation_matches_the_z_buffered_one():
    generator = torch.Generator().manual_seed(0)
    vertices = torch.rand(3, 40, 3, generator=generator) * torch.tensor([70.0, 50.0, 1.0]) - 3
    triangles = torch.randint(0, 40, (60, 3), generator=generator)
    expected = rasterize_triangles(vertices, triangles, 48, 64).triangle_id >= 0
    assert expected.any() and torch.equal(triangle_coverage(vertices[..., :2], triangles, 48, 64), expected)


def test_mask_blur_matches_the_one_channel_convolution_it_replaced():
    mask = (torch.rand(3, 1, 40, 50, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    radius = 5
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / (radius / 2)) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(mask, (radius,) * 4, mode="replicate")
    expected = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    torch.testing.assert_close(gaussian_blur(mask, radius), expected)
    assert gaussian_blur(mask[:0], radius).shape == (0, 1, 40, 50)


if __name__ == "__main__":
    save_file(reference_outputs(), sys.argv[1])
