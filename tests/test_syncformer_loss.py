"""L_3D of the Style-SyncFormer: value, reduction, invariances and gradient flow."""

import dataclasses

import pytest
import torch

from resyncer_core.models.syncformer import StyleSyncFormer, SyncFormerConfig
from resyncer_core.train.mesh_losses import syncformer_loss, syncformer_loss_terms


def test_identical_sequences_cost_nothing_and_have_zero_gradient():
    target = torch.randn(2, 10, 12, 3)
    pred = target.clone().requires_grad_()
    loss = syncformer_loss(pred, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_value_is_summed_over_time_and_averaged_over_batch():
    target = torch.zeros(2, 3, 1, 3)
    pred = torch.zeros(2, 3, 1, 3)
    pred[0, 1, 0] = torch.tensor([3.0, 4.0, 0.0])  # one frame off by a vector of length 5
    terms = syncformer_loss_terms(pred, target, position_weight=2.0)
    assert terms.position.item() == pytest.approx(5.0 / 2)         # one norm of 5, batch of 2
    assert terms.velocity.item() == pytest.approx((5.0 + 5.0) / 2)  # frame 1 jumps in and out
    assert terms.total.item() == pytest.approx(5.0 + 2.0 * 2.5)
    assert syncformer_loss(pred, target, position_weight=2.0).item() == pytest.approx(terms.total.item())


def test_velocity_term_ignores_a_constant_offset():
    target = torch.randn(3, 8, 12, 3)
    offset = torch.randn(1, 1, 12, 3)
    terms = syncformer_loss_terms(target + offset, target)
    assert terms.velocity.item() == pytest.approx(0.0, abs=1e-5)
    assert terms.position.item() == pytest.approx(8 * offset.norm().item(), rel=1e-5)


def test_single_frame_has_no_velocity_term():
    terms = syncformer_loss_terms(torch.ones(1, 1, 4, 3), torch.zeros(1, 1, 4, 3))
    assert terms.velocity.item() == 0.0 and terms.position.item() == pytest.approx(12 ** 0.5)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="^pred and target"):
        syncformer_loss(torch.zeros(1, 4, 12, 3), torch.zeros(1, 5, 12, 3))


@pytest.mark.parametrize("style_mode", ["encoder", "audio_aware"])
def test_gradients_reach_every_parameter(style_mode):
    torch.manual_seed(0)
    config = SyncFormerConfig(vertex_count=12, audio_dim=16, d_model=32, n_heads=4, ff_dim=64,
                              period=5, dropout=0.0, style_mode=style_mode)
    model = StyleSyncFormer(config)
    audio, target = torch.randn(2, 12, 16), torch.randn(2, 12, 12, 3)
    reference, reference_audio = torch.randn(2, 10, 12, 3), torch.randn(2, 10, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        optimizer.zero_grad()
        syncformer_loss(model(audio, target, reference, reference_audio), target).backward()

    # The output layer starts at zero (training starts from ΔM = 0), which blocks gradients to
    # everything before it on the very first step; one update opens the path.
    step()
    optimizer.step()
    step()
    silent = [name for name, parameter in model.named_parameters()
              if parameter.grad is None or not parameter.grad.abs().max() > 0]
    assert not silent, f"no gradient reaches {silent}"
    assert (model.style_attention is not None) == (style_mode == "audio_aware")


def test_encoder_mode_has_no_unused_parameters():
    names = {name for name, _ in StyleSyncFormer(dataclasses.replace(SyncFormerConfig(), vertex_count=12)).named_parameters()}
    assert not any(name.startswith("style_attention") for name in names)
