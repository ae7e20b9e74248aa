"""Style-SyncFormer: masks, causality, teacher forcing vs autoregression, style injection,
windowed inference, batching, shape errors and checkpoint round trip."""

import dataclasses

import pytest
import torch

from resyncer_core.models.checkpoint import load_checkpoint, save_checkpoint
from resyncer_core.models.syncformer import (
    StyleSyncFormer, SyncFormerConfig, alibi_biased_causal_mask, alibi_slopes, alignment_mask,
    blend_windows, crossfade_weights, periodic_positional_encoding, window_starts)
from resyncer_core.train.mesh_losses import syncformer_loss

# Small enough for CPU tests; period 5 so the ALiBi steps and PPE repeats occur in short clips.
TINY = SyncFormerConfig(vertex_count=12, audio_dim=16, d_model=32, n_heads=4, ff_dim=64, style_frames=10,
                        period=5, max_seq_len=128, train_window=20, infer_window=12, infer_overlap=4)
MODES = ("encoder", "audio_aware")


def random_model(style_mode="encoder", seed=0, **overrides):
    """An untrained model whose output layer is random: the real one starts at zero, which
    would make every output 0 and every comparison below vacuous."""
    torch.manual_seed(seed)
    model = StyleSyncFormer(dataclasses.replace(TINY, style_mode=style_mode, **overrides))
    with torch.no_grad():
        torch.nn.init.normal_(model.output_projection.weight, std=0.2)
        torch.nn.init.normal_(model.output_projection.bias, std=0.2)
        torch.nn.init.normal_(model.start_embedding)
    return model.eval()


def inputs(batch=2, length=16, reference_length=10, seed=1, config=TINY):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, length, config.audio_dim, generator=generator)
    delta = 0.1 * torch.randn(batch, length, config.vertex_count, 3, generator=generator)
    reference = 0.1 * torch.randn(batch, reference_length, config.vertex_count, 3, generator=generator)
    reference_audio = torch.randn(batch, reference_length, config.audio_dim, generator=generator)
    return audio, delta, reference, reference_audio


# ---- config, encodings and masks ---------------------------------------------------------

def test_default_config_is_the_paper():
    config = SyncFormerConfig()
    assert (config.vertex_count, config.d_model, config.style_frames, config.period) == (468, 128, 90, 25)
    assert (config.train_window, config.infer_window, config.infer_overlap) == (100, 100, 20)
    assert config.style_mode == "encoder"


@pytest.mark.parametrize("change", [dict(style_mode="pooled"), dict(d_model=30), dict(infer_overlap=100),
                                    dict(infer_window=700), dict(dropout=1.0), dict(period=0)])
def test_bad_config_is_refused(change):
    with pytest.raises(ValueError):
        SyncFormerConfig(**change)


def test_periodic_positional_encoding_repeats_every_period():
    encoding = periodic_positional_encoding(23, 8, 5)
    assert encoding.shape == (23, 8)
    assert torch.equal(encoding[5:10], encoding[:5]) and torch.equal(encoding[20:], encoding[:3])
    assert torch.equal(encoding[0, 0::2], torch.zeros(4)) and torch.equal(encoding[0, 1::2], torch.ones(4))
    assert len({tuple(row.tolist()) for row in encoding[:5]}) == 5


def test_alibi_slopes_match_faceformer():
    assert alibi_slopes(4) == [0.25, 0.0625, 0.015625, 0.00390625]
    assert alibi_slopes(8)[0] == pytest.approx(2 ** -1)
    six = alibi_slopes(6)
    assert six[:4] == alibi_slopes(4) and six[4:] == alibi_slopes(8)[0::2][:2]


def test_biased_causal_mask_per_sample_and_head():
    length, heads, period = 12, 4, 5
    mask = alibi_biased_causal_mask(length, heads, period, batch_size=3)
    assert mask.shape == (3 * heads, length, length)
    slopes = alibi_slopes(heads)
    for row in range(3 * heads):
        head = row % heads  # nn.MultiheadAttention reads row b * n_heads + h
        for i in range(length):
            for j in range(length):
                expected = float("-inf") if j > i else -slopes[head] * ((i - j) // period)
                assert mask[row, i, j].item() == expected
    # constant within a period, one slope step per period
    assert mask[0, 11, 7].item() == 0.0 and mask[0, 11, 6].item() == -0.25 and mask[0, 11, 1].item() == -0.5


def test_alignment_mask_lets_token_t_see_audio_frame_t_only():
    mask = alignment_mask(6)
    assert mask.dtype == torch.bool and torch.equal(~mask, torch.eye(6, dtype=torch.bool))


# ---- shapes --------------------------------------------------------------------------------

def test_shapes_and_audio_longer_than_mesh_is_cut():
    model = random_model()
    audio, delta, reference, _ = inputs(length=16)
    longer_audio = torch.cat([audio, torch.randn(2, 7, TINY.audio_dim)], dim=1)
    out = model(longer_audio, delta, reference)
    assert out.shape == delta.shape
    assert torch.equal(out, model(audio, delta, reference))
    assert model.generate(audio, reference).shape == delta.shape
    assert model.encode_style(reference).shape == (2, TINY.d_model)


@pytest.mark.parametrize("case", ["vertices", "audio_dim", "short_audio", "batch", "style_batch", "long_sequence"])
def test_wrong_shapes_raise_one_sentence(case):
    model = random_model()
    audio, delta, reference, _ = inputs(length=8)
    name = {"vertices": "delta_mesh", "audio_dim": "audio_features", "short_audio": "audio_features",
            "batch": "audio_features", "style_batch": "style_reference", "long_sequence": "delta_mesh"}[case]
    if case == "vertices":
        delta = delta[:, :, :11]
    elif case == "audio_dim":
        audio = audio[..., :15]
    elif case == "short_audio":
        audio = audio[:, :7]
    elif case == "batch":
        audio = audio[:1]
    elif case == "style_batch":
        reference = reference[:1]
    else:
        delta = torch.zeros(2, TINY.max_seq_len + 1, TINY.vertex_count, 3)
        audio = torch.zeros(2, TINY.max_seq_len + 1, TINY.audio_dim)
    with pytest.raises(ValueError) as info:
        model(audio, delta, reference)
    message = str(info.value)
    assert message.startswith(name) and "\n" not in message and message.count(". ") == 0


def test_audio_aware_mode_needs_reference_audio():
    model = random_model("audio_aware")
    audio, delta, reference, reference_audio = inputs()
    with pytest.raises(ValueError, match="^style_audio"):
        model(audio, delta, reference)
    with pytest.raises(ValueError, match="^style_audio"):
        model(audio, delta, reference, reference_audio[:, :9])
    assert model.encode_style(reference, reference_audio, audio).shape == (2, 16, TINY.d_model)


def test_generate_refuses_a_bad_window():
    model = random_model()
    audio, _, reference, _ = inputs()
    with pytest.raises(ValueError, match="overlap"):
        model.generate(audio, reference, window=8, overlap=8)


# ---- causality -----------------------------------------------------------------------------

@pytest.mark.parametrize("style_mode", MODES)
def test_teacher_forced_outputs_ignore_the_future(style_mode):
    model = random_model(style_mode)
    audio, delta, reference, reference_audio = inputs(batch=2, length=16)
    base = model(audio, delta, reference, reference_audio)
    for t in (0, 4, 9, 14):
        future_audio, future_delta = audio.clone(), delta.clone()
        future_audio[:, t + 1:] += torch.randn_like(future_audio[:, t + 1:])
        future_delta[:, t + 1:] += torch.randn_like(future_delta[:, t + 1:])
        changed = model(future_audio, future_delta, reference, reference_audio)
        torch.testing.assert_close(changed[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-6)
        # the check is not vacuous: the audio of frame t+1 does reach frame t+1
        assert (changed[:, t + 1] - base[:, t + 1]).abs().max() > 1e-3
    # target t reaches frame t+1 only through the right shift
    shifted = delta.clone()
    shifted[:, 5] += 1.0
    changed = model(audio, shifted, reference, reference_audio)
    torch.testing.assert_close(changed[:, :6], base[:, :6], rtol=0, atol=1e-6)
    assert (changed[:, 6] - base[:, 6]).abs().max() > 1e-3


@pytest.mark.parametrize("style_mode", MODES)
def test_generated_outputs_ignore_future_audio(style_mode):
    model = random_model(style_mode)
    audio, _, reference, reference_audio = inputs(batch=2, length=30)  # three windows of 12, overlap 4
    base = model.generate(audio, reference, reference_audio)
    for t in (2, 9, 13, 22):
        future_audio = audio.clone()
        future_audio[:, t + 1:] += torch.randn_like(future_audio[:, t + 1:])
        changed = model.generate(future_audio, reference, reference_audio)
        torch.testing.assert_close(changed[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-6)
        assert (changed[:, t + 1] - base[:, t + 1]).abs().max() > 1e-3


# ---- teacher forcing and autoregression agree ------------------------------------------------

def test_overfit_sequence_is_reproduced_autoregressively():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, dropout=0.0, infer_window=20, infer_overlap=4)
    model = StyleSyncFormer(config)
    time = torch.arange(20, dtype=torch.float32)[:, None, None]
    target = (0.5 * torch.sin(0.4 * time + 6.28 * torch.rand(config.vertex_count, 3)))[None]
    audio = torch.randn(1, 20, config.audio_dim)
    reference = 0.3 * torch.randn(1, 10, config.vertex_count, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    # L_3D uses plain norms, whose gradient does not fade near the optimum: anneal the rate.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
    for _ in range(300):
        loss = syncformer_loss(model(audio, target, reference), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    assert loss.item() < 0.05  # it starts near 40: 20 frames of norm ~2
    model.eval()
    teacher_forced = model(audio, target, reference).detach()
    generated = model.generate(audio, reference)
    # amplitude 0.5: every tolerance is 0.4 % of it
    assert (teacher_forced - target).abs().max() < 2e-3
    assert (generated - target).abs().max() < 2e-3
    assert (generated - teacher_forced).abs().max() < 2e-3


# ---- style -----------------------------------------------------------------------------------

@pytest.mark.parametrize("style_mode", MODES)
def test_output_follows_the_style_reference_only_when_it_changes(style_mode):
    model = random_model(style_mode)
    audio, delta, reference, reference_audio = inputs()
    _, _, other_reference, _ = inputs(seed=7)
    base = model(audio, delta, reference, reference_audio)
    assert torch.equal(model(audio, delta, reference.clone(), reference_audio.clone()), base)
    assert (model(audio, delta, other_reference, reference_audio) - base).abs().min() > 0
    generated = model.generate(audio, reference, reference_audio)
    assert torch.equal(model.generate(audio, reference.clone(), reference_audio.clone()), generated)
    assert (model.generate(audio, other_reference, reference_audio) - generated).abs().max() > 1e-3


def test_encoder_style_is_one_vector_and_ignores_reference_audio():
    model = random_model("encoder")
    audio, delta, reference, reference_audio = inputs()
    assert torch.equal(model(audio, delta, reference, reference_audio), model(audio, delta, reference))
    assert torch.equal(model.encode_style(reference), model.encode_style(reference, reference_audio, audio))


def test_audio_aware_style_depends_on_each_frames_audio():
    model = random_model("audio_aware")
    audio, delta, reference, reference_audio = inputs()
    style = model.encode_style(reference, reference_audio, audio)
    other_audio = audio.clone()
    other_audio[:, 3] += 1.0
    changed = model.encode_style(reference, reference_audio, other_audio)
    assert torch.equal(changed[:, :3], style[:, :3]) and torch.equal(changed[:, 4:], style[:, 4:])
    assert not torch.equal(changed[:, 3], style[:, 3])
    # the reference audio picks which reference frames are aggregated
    assert not torch.equal(model.encode_style(reference, reference_audio.flip(1), audio), style)


# ---- windowed inference ------------------------------------------------------------------------

def test_window_starts_cover_the_sequence_with_the_overlap():
    assert window_starts(250, 100, 20) == [0, 80, 160]
    assert window_starts(100, 100, 20) == [0]
    assert window_starts(101, 100, 20) == [0, 80]
    assert window_starts(5, 100, 20) == [0]


def test_blend_reproduces_windows_that_agree_and_ramps_linearly_between_those_that_do_not():
    signal = torch.randn(2, 250, 3)
    starts = window_starts(250, 100, 20)
    agreeing = [signal[:, s:s + 100] for s in starts]
    torch.testing.assert_close(blend_windows(agreeing, starts, 250), signal)

    constants = [torch.full((1, min(100, 250 - s), 1), float(k)) for k, s in enumerate(starts)]
    blended = blend_windows(constants, starts, 250)[0, :, 0]
    steps = blended.diff()
    assert torch.allclose(steps[79:100], torch.full((21,), 1 / 21))  # 20 shared frames, 21 equal steps
    assert steps.abs().max() <= 1 / 21 + 1e-6
    assert torch.equal(crossfade_weights(3), torch.tensor([0.25, 0.5, 0.75]))


def _assert_seams_continuous(blended, windows, starts, overlap):
    """Inside an overlap of windows a and b the blend may step by at most the larger step of
    a and b plus (max |a - b| there) / (overlap + 1) per frame."""
    for (start_a, a), (start_b, b) in zip(zip(starts, windows), zip(starts[1:], windows[1:])):
        shared = start_a + a.shape[1] - start_b
        a_part, b_part = a[:, -shared:], b[:, :shared]
        disagreement = (a_part - b_part).abs().max()
        own_steps = torch.maximum(a[:, -shared - 1:].diff(dim=1).abs().amax(),
                                  b[:, :shared + 1].diff(dim=1).abs().amax())
        seam_steps = blended[:, start_b - 1:start_b + shared + 1].diff(dim=1).abs().amax()
        assert seam_steps <= own_steps + disagreement / (overlap + 1) + 1e-5


def test_long_audio_is_generated_in_cross_faded_windows():
    model = random_model(infer_window=100, infer_overlap=20)
    audio, _, reference, _ = inputs(batch=1, length=250)
    generated = model.generate(audio, reference)
    assert generated.shape == (1, 250, TINY.vertex_count, 3)
    starts = window_starts(250, 100, 20)
    windows = [model.generate(audio[:, s:s + 100], reference) for s in starts]
    torch.testing.assert_close(generated, blend_windows(windows, starts, 250), rtol=0, atol=1e-6)
    torch.testing.assert_close(generated[:, :80], windows[0][:, :80], rtol=0, atol=1e-6)
    _assert_seams_continuous(generated, windows, starts, overlap=20)
    assert model.generate(audio, reference, window=60, overlap=10).shape == generated.shape


# ---- batching --------------------------------------------------------------------------------------

@pytest.mark.parametrize("style_mode", MODES)
def test_batch_gives_the_per_sample_results(style_mode):
    model = random_model(style_mode)
    audio, delta, reference, reference_audio = inputs(batch=3, length=20)
    batched = model(audio, delta, reference, reference_audio)
    generated = model.generate(audio, reference, reference_audio)
    for i in range(3):
        one = slice(i, i + 1)
        torch.testing.assert_close(batched[one], model(audio[one], delta[one], reference[one], reference_audio[one]),
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(generated[one], model.generate(audio[one], reference[one], reference_audio[one]),
                                   rtol=0, atol=1e-5)


# ---- checkpoint --------------------------------------------------------------------------------------

@pytest.mark.parametrize("style_mode", MODES)
def test_checkpoint_round_trip_is_bit_exact(tmp_path, style_mode):
    model = random_model(style_mode)
    path = save_checkpoint(model, model.config, "syncformer", tmp_path / "syncformer.safetensors")
    loaded, config = load_checkpoint(path, kind="syncformer")
    assert isinstance(loaded, StyleSyncFormer) and config == model.config and not loaded.training
    audio, delta, reference, reference_audio = inputs()
    assert torch.equal(loaded(audio, delta, reference, reference_audio), model(audio, delta, reference, reference_audio))
    assert torch.equal(loaded.generate(audio, reference, reference_audio), model.generate(audio, reference, reference_audio))
