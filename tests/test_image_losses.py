"""Stage-2 image losses: values on known inputs, detached targets, R1 gradients."""

import math

import pytest
import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.train.image_losses import (VGG_LAYER_WEIGHTS, discriminator_logistic_loss, feature_matching_loss,
                                              generator_nonsaturating_loss, identity_loss, l1_loss, perceptual_loss,
                                              r1_penalty, reconstruction_loss, reconstruction_loss_terms)


def feature_list(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 4, 16 // 2 ** i, 16 // 2 ** i, generator=generator) for i in range(5)]


def test_equal_inputs_give_zero():
    x = torch.randn(2, 3, 8, 8)
    features = feature_list(0)
    assert l1_loss(x, x) == 0
    assert perceptual_loss(features, features) == 0
    assert feature_matching_loss(features, features) == 0
    assert reconstruction_loss(x, x, features, features) == 0


def test_perceptual_loss_weights_layers_like_pix2pixhd():
    fake, real = feature_list(0), feature_list(1)
    expected = sum(w * (f - r).abs().mean() for w, f, r in zip(VGG_LAYER_WEIGHTS, fake, real))
    assert torch.allclose(perceptual_loss(fake, real), expected)
    assert VGG_LAYER_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    with pytest.raises(ResyncerInputError):
        perceptual_loss(fake, real[:4])
    with pytest.raises(ResyncerInputError):
        perceptual_loss(fake[:2], real[:2])  # 5 default weights for 2 layers


def test_reconstruction_loss_is_l1_plus_a_tenth_of_vgg_and_targets_are_detached():
    fake = torch.randn(2, 3, 8, 8, requires_grad=True)
    real = torch.randn(2, 3, 8, 8, requires_grad=True)
    features_fake = [f.requires_grad_(True) for f in feature_list(0)]
    features_real = [f.requires_grad_(True) for f in feature_list(1)]
    terms = reconstruction_loss_terms(fake, real, features_fake, features_real)
    assert torch.allclose(terms.total, terms.l1 + 0.1 * terms.perceptual)
    assert torch.allclose(terms.l1, (fake - real).abs().mean())
    terms.total.backward()
    assert fake.grad is not None and features_fake[0].grad is not None
    assert real.grad is None and all(f.grad is None for f in features_real)


def test_adversarial_losses():
    zero = torch.zeros(4, 1)
    assert math.isclose(generator_nonsaturating_loss(zero).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(discriminator_logistic_loss(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)
    # A discriminator that is right about both gets a small loss, the fooled generator a large one.
    confident = torch.full((4, 1), 10.0)
    assert discriminator_logistic_loss(confident, -confident) < 1e-3
    assert generator_nonsaturating_loss(-confident) > 9.0


def test_r1_penalty_is_the_squared_input_gradient_norm():
    slope = torch.randn(3, 4, 4)
    real = torch.randn(2, 3, 4, 4, requires_grad=True)
    logits = (real * slope).sum(dim=(1, 2, 3))  # a linear "discriminator": ∇ = slope
    penalty = r1_penalty(logits, real)
    assert torch.allclose(penalty, slope.pow(2).sum())
    # A nonlinear one: the penalty itself has a gradient (create_graph).
    weight = torch.randn(3, 4, 4, requires_grad=True)
    r1_penalty((real * weight).pow(2).sum(dim=(1, 2, 3)), real).backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    with pytest.raises(ResyncerInputError, match="requires_grad"):
        r1_penalty(logits, real.detach())


def test_identity_loss_range():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert identity_loss(a, a).abs() < 1e-6
    assert torch.allclose(identity_loss(a, -a), torch.tensor(2.0))
    assert torch.allclose(identity_loss(a, a.flip(1)), torch.tensor(1.0))
    random = identity_loss(torch.randn(16, 512), torch.randn(16, 512))
    assert 0.0 <= random.item() <= 2.0


def test_feature_matching_sums_layer_l1():
    fake, real = feature_list(0), feature_list(1)
    expected = sum((f - r).abs().mean() for f, r in zip(fake, real))
    assert torch.allclose(feature_matching_loss(fake, real), expected)
    with pytest.raises(ResyncerInputError):
        feature_matching_loss([], [])


def test_identity_and_feature_matching_targets_are_detached():
    """The source identity embedding and the real image's discriminator features are targets:
    a generator loss must not send gradients into E_id(I') or into D through the real branch."""
    fake_embedding = torch.randn(3, 8, requires_grad=True)
    source_embedding = torch.randn(3, 8, requires_grad=True)
    identity_loss(fake_embedding, source_embedding).backward()
    assert fake_embedding.grad is not None and source_embedding.grad is None
    fake = [f.requires_grad_(True) for f in feature_list(0)]
    real = [f.requires_grad_(True) for f in feature_list(1)]
    feature_matching_loss(fake, real).backward()
    assert all(f.grad is not None for f in fake) and all(r.grad is None for r in real)


def test_lower_face_l1_counts_only_the_masked_pixels_and_is_off_by_default():
    from resyncer_core.train.generator_training import GeneratorLossWeights, generator_loss, masked_l1_loss

    real = torch.zeros(2, 3, 8, 8)
    fake = real.clone()
    fake[:, :, :4] = 1.0  # wrong only in the top half
    top, bottom = torch.zeros(2, 8, 8), torch.zeros(2, 8, 8)
    top[:, :4], bottom[:, 4:] = 1.0, 1.0
    assert float(masked_l1_loss(fake, real, top)) == pytest.approx(1.0)
    assert float(masked_l1_loss(fake, real, bottom)) == 0.0
    plain, terms = generator_loss(fake, real, mask=top)
    assert "lower_face_l1" not in terms  # the paper's losses unless asked for
    weighted, terms = generator_loss(fake, real, weights=GeneratorLossWeights(perceptual=0, lower_face=5.0), mask=top)
    assert float(weighted) == pytest.approx(float(plain) + 5.0) and terms["lower_face_l1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs the lower-face mask"):  # never dropped silently
        generator_loss(fake, real, weights=GeneratorLossWeights(perceptual=0, lower_face=5.0))
