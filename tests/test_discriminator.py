"""StyleGAN2 discriminator: logits shape, gradients, minibatch stddev groups, checkpoints."""

import pytest
import torch

from resyncer_core.models.checkpoint import load_checkpoint, save_checkpoint
from resyncer_core.models.discriminator import (Discriminator, DiscriminatorConfig, minibatch_stddev,
                                                stddev_group_size)


def tiny_discriminator(size: int = 256, seed: int = 0) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(DiscriminatorConfig(size=size, narrow=1 / 32))


def images(batch: int, size: int = 256, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("batch", [1, 3, 4, 5])
def test_logits_shape_for_any_batch(batch):
    model = tiny_discriminator(size=64)
    with torch.no_grad():
        logits = model(images(batch, size=64))
    assert logits.shape == (batch, 1) and torch.isfinite(logits).all()


def test_gradients_reach_every_parameter_and_the_input():
    model = tiny_discriminator()
    x = images(2).requires_grad_(True)
    model(x).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"
    assert x.grad.abs().sum() > 0


def test_features_for_feature_matching():
    model = tiny_discriminator()
    with torch.no_grad():
        logits, features = model.forward_with_features(images(2))
    assert logits.shape == (2, 1)
    assert [f.shape[-1] for f in features] == [256, 128, 64, 32, 16, 8, 4]


@pytest.mark.parametrize("batch,expected", [(1, 1), (2, 2), (4, 4), (8, 4), (6, 3), (10, 2), (5, 5), (7, 7)])
def test_stddev_group_falls_back_to_a_divisor_or_the_whole_batch(batch, expected):
    assert stddev_group_size(batch, 4) == expected


def test_minibatch_stddev_statistic():
    x = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    out = minibatch_stddev(x, 4)  # 6 samples, groups of 3: {0, 2, 4} and {1, 3, 5}
    assert out.shape == (6, 3, 3, 3) and torch.equal(out[:, :2], x)
    for members in ([0, 2, 4], [1, 3, 5]):
        expected = torch.sqrt(x[members].var(dim=0, unbiased=False) + 1e-8).mean()
        for index in members:
            assert torch.allclose(out[index, 2], expected.expand(3, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_minibatch_stddev_gradient_is_finite_for_zero_variance_in_any_precision(dtype):
    """A batch of one, or identical samples, has zero variance; sqrt(0 + 1e-8) must not
    become sqrt(0) (1e-8 underflows in float16), whose derivative is infinite."""
    for x in (torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4).expand(4, -1, -1, -1).clone()):
        x = x.to(dtype).requires_grad_(True)
        out = minibatch_stddev(x, 4)
        assert out.dtype == dtype and torch.equal(out[:, :4], x)
        out.sum().backward()
        assert torch.isfinite(x.grad).all()


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model = tiny_discriminator(size=64).eval()
    x = images(3, size=64)
    path = save_checkpoint(model, model.config, "discriminator", tmp_path / "d.safetensors")
    loaded, config = load_checkpoint(path, kind="discriminator")
    assert isinstance(loaded, Discriminator) and config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_bad_input_and_config():
    with pytest.raises(ValueError, match=r"\[B, 3, 64, 64\]"):
        tiny_discriminator(size=64)(images(1, size=32))
    with pytest.raises(ValueError, match="stddev_group"):
        DiscriminatorConfig(stddev_group=0)
