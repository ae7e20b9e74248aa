"""ReSyncGenerator: shapes, gradients, the spatial noise path, face swap, StyleSync options,
precision modes and checkpoints. Narrow configs keep every test on CPU in about a second."""

import dataclasses
import json

import pytest
import torch

from resyncer_core.models.checkpoint import load_checkpoint, save_checkpoint
from resyncer_core.models.generator import GeneratorConfig, ReSyncGenerator


def tiny_config(size: int = 256, **overrides) -> GeneratorConfig:
    return GeneratorConfig(size=size, narrow=1 / 32, style_dim=32, n_mlp=2, **overrides)


def tiny_generator(seed: int = 0, size: int = 256, **overrides) -> ReSyncGenerator:
    torch.manual_seed(seed)
    return ReSyncGenerator(tiny_config(size, **overrides))


def random_images(count: int, batch: int = 2, size: int = 256, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, 3, size, size, generator=generator) * 2 - 1 for _ in range(count)]


def test_output_shape_range_and_latent_count_at_256():
    model = tiny_generator()
    overlay, reference = random_images(2)
    with torch.no_grad():
        image = model(overlay, reference)
    assert model.n_latent == 14
    assert image.shape == (2, 3, 256, 256)
    assert torch.isfinite(image).all()
    # No tanh: at random init the RGB skip sum of 7 ToRGBs has a std of a few units.
    assert 0.05 < image.std().item() < 5.0 and image.abs().max().item() < 50.0


@pytest.mark.parametrize("size", [8, 64, 128])
def test_other_sizes(size):
    model = tiny_generator(size=size)
    overlay, reference = random_images(2, size=size)
    f_f, maps = model.encode(torch.cat([overlay, reference], 1))
    assert model.n_latent == 2 * (size.bit_length() - 1) - 2
    assert [fmap.shape[-1] for fmap in maps] == [2 ** i for i in range(2, size.bit_length())]
    assert model.latent_from_features(f_f).shape == (2, model.n_latent, 32)
    assert model(overlay, reference).shape == (2, 3, size, size)


def test_additive_noise_option():
    model = tiny_generator(size=64, concat_noise=False)
    overlay, reference, other = random_images(3, size=64)
    with torch.no_grad():
        image = model(overlay, reference)
        assert image.shape == (2, 3, 64, 64)
        assert (model(other, reference) - image).abs().mean() > 1e-3
    # Added maps keep the layer widths: the second 64² conv reads 16 channels, not 16 + 16.
    assert model.synthesis.blocks[-1].conv.conv.weight.shape[1] == 16
    assert tiny_generator(size=64).synthesis.blocks[-1].conv.conv.weight.shape[1] == 32


def test_gradients_reach_every_parameter():
    model = tiny_generator()
    overlay, reference = random_images(2)
    weights = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    (model(overlay, reference) * weights).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"


def quadrant_share_of_change(model: ReSyncGenerator, seed: int, through_noise_only: bool) -> float:
    """Replaces the top-left quadrant of the overlay and returns the share of the absolute
    output change that falls in that quadrant."""
    overlay, reference, replacement = random_images(3, batch=1, seed=seed)
    changed = overlay.clone()
    changed[..., :128, :128] = replacement[..., :128, :128]
    with torch.no_grad():
        if through_noise_only:  # W from the original pair for both: only the maps differ
            f_f, maps = model.encode(torch.cat([overlay, reference], 1))
            w_plus = model.latent_from_features(f_f)
            _, changed_maps = model.encode(torch.cat([changed, reference], 1))
            before, after = model.synthesize(w_plus, maps), model.synthesize(w_plus, changed_maps)
        else:
            before, after = model(overlay, reference), model(changed, reference)
    change = (after - before).abs().sum(dim=(0, 1))
    return (change[:128, :128].sum() / change.sum()).item()


def test_noise_path_carries_spatial_information():
    """Measured at random init (narrow 1/32, seeds 0–3): the noise path alone puts 0.96–0.98
    of the change inside the quadrant (mean 0.97), the full forward, where W changes too,
    0.88–0.97 (mean 0.92); 0.25 would be no locality. The generator has no input→output skip:
    the maps are its only spatial route, and with their injection gains zeroed the share falls
    to 0.18–0.23 (mean 0.21), as the last assertion checks."""
    models = [tiny_generator(seed) for seed in range(4)]
    noise_only = [quadrant_share_of_change(m, seed, True) for seed, m in enumerate(models)]
    full = [quadrant_share_of_change(m, seed, False) for seed, m in enumerate(models)]
    assert sum(noise_only) / 4 > 0.85 and min(noise_only) > 0.7
    assert sum(full) / 4 > 0.7
    for model in models:
        for name, parameter in model.named_parameters():
            if name.endswith("noise.weight"):
                parameter.data.zero_()
    without_maps = [quadrant_share_of_change(m, seed, False) for seed, m in enumerate(models)]
    assert sum(without_maps) / 4 < 0.5


def test_forward_is_encode_latent_synthesize_and_accepts_w_plus_offsets():
    model = tiny_generator()
    overlay, reference = random_images(2)
    f_f, maps = model.encode(torch.cat([overlay, reference], 1))
    w_plus = model.latent_from_features(f_f)
    assert w_plus.shape == (2, 14, 32)
    assert torch.equal(w_plus[:, 0], w_plus[:, 13])  # one W broadcast to every layer
    offset = torch.zeros(14, 32, requires_grad=True)
    image = model.synthesize(w_plus + offset, maps)
    assert torch.allclose(image, model(overlay, reference), atol=1e-6)
    image.square().mean().backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0
    with torch.no_grad():
        shifted = model.synthesize(w_plus + torch.randn(14, 32), maps)
    assert (shifted - image).abs().mean() > 1e-3


def test_swap_takes_w_from_the_identity_pair_and_maps_from_the_reference_pair():
    model = tiny_generator()
    overlay, identity, reference, other = random_images(4)
    with torch.no_grad():
        swapped = model.swap(overlay, identity, reference)
        f_identity, maps_identity = model.encode(torch.cat([overlay, identity], 1))
        f_reference, maps_reference = model.encode(torch.cat([overlay, reference], 1))
        # The two encodings really differ, in W and in the maps, so the checks below mean something.
        assert (f_identity - f_reference).abs().mean() > 1e-3
        assert (maps_identity[-1] - maps_reference[-1]).abs().mean() > 1e-3
        w_identity = model.latent_from_features(f_identity)
        assert torch.allclose(swapped, model.synthesize(w_identity, maps_reference), atol=1e-5)
        assert not torch.allclose(swapped, model.synthesize(w_identity, maps_identity), atol=1e-3)
        assert not torch.allclose(swapped, model.synthesize(model.latent_from_features(f_reference),
                                                            maps_reference), atol=1e-3)
        # Each source alone changes the result; with identity == reference it is plain lip-sync.
        assert (model.swap(overlay, other, reference) - swapped).abs().mean() > 1e-3
        assert (model.swap(overlay, identity, other) - swapped).abs().mean() > 1e-3
        assert torch.allclose(model.swap(overlay, reference, reference), model(overlay, reference), atol=1e-5)


def test_audio_option_concatenates_audio_to_f_f():
    model = tiny_generator(audio_dim=8)
    overlay, reference = random_images(2)
    audio = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        image = model(overlay, reference, audio=audio)
        other = model(overlay, reference, audio=audio + 1)
    assert image.shape == (2, 3, 256, 256)
    assert (image - other).abs().mean() > 1e-3
    assert model.mapping[1].weight.shape == (32, 32 + 8)  # [f_f, audio] → W
    with pytest.raises(ValueError, match=r"audio features \[B, 8\]"):
        model(overlay, reference)
    with pytest.raises(ValueError, match=r"audio features \[B, 8\]"):
        model(overlay, reference, audio=torch.randn(2, 7))
    with pytest.raises(ValueError, match="audio_dim=0"):
        tiny_generator()(overlay, reference, audio=audio)


def test_low_level_feature_masking_follows_stylesync():
    model = tiny_generator(mask_low_level_features=True)
    assert model.config.masked_resolutions == (64, 128, 256)  # layers 8–13 of L = 14
    assert tiny_config(128, mask_low_level_features=True).masked_resolutions == (64, 128)
    assert tiny_config().masked_resolutions == ()
    overlay, reference = random_images(2)
    six = torch.cat([overlay, reference], 1)
    mask = torch.zeros(2, 1, 256, 256)
    mask[..., 128:, :] = 1.0  # lower half
    with pytest.raises(ValueError, match="lower-face mask"):
        model.encode(six)
    with torch.no_grad():
        _, plain = model.encode(six, torch.zeros_like(mask))
        _, masked = model.encode(six, mask[:, 0])  # [B, H, W] masks are accepted too
    for fmap_plain, fmap_masked in zip(plain, masked):
        half = fmap_plain.shape[-1] // 2
        if fmap_plain.shape[-1] in (64, 128, 256):
            assert fmap_masked[..., half:, :].abs().max() == 0
            assert torch.equal(fmap_masked[..., :half, :], fmap_plain[..., :half, :])
        else:
            assert torch.equal(fmap_masked, fmap_plain)
    # The option adds no parameters: a zero mask gives exactly the unmasked generator.
    unmasked = ReSyncGenerator(tiny_config())
    unmasked.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(overlay, reference, mask=torch.zeros_like(mask)), unmasked(overlay, reference))
        assert (model(overlay, reference, mask=mask) - unmasked(overlay, reference)).abs().mean() > 1e-3


def test_hidden_reference_lower_face_is_never_seen_and_the_rest_is():
    """hide_reference_lower_face: the reference's pixels under the mask cannot change the
    output (lip-sync and the swap's reference stream), those outside can; the identity frame
    of a swap is never masked; without a mask it says what to pass."""
    model = tiny_generator(hide_reference_lower_face=True).eval()
    overlay, reference = random_images(2)
    mask = torch.zeros(2, 256, 256)
    mask[:, 128:, :] = 1.0
    mouth_changed, top_changed = reference.clone(), reference.clone()
    mouth_changed[..., 128:, :] = torch.rand_like(mouth_changed[..., 128:, :])
    top_changed[..., :128, :] = torch.rand_like(top_changed[..., :128, :])
    identity = random_images(1, seed=3)[0]
    with torch.no_grad():
        out = model(overlay, reference, mask=mask)
        assert torch.equal(model(overlay, mouth_changed, mask=mask), out)
        assert not torch.equal(model(overlay, top_changed, mask=mask), out)
        swapped = model.swap(overlay, identity, reference, mask=mask)
        assert torch.equal(model.swap(overlay, identity, mouth_changed, mask=mask), swapped)
        identity_mouth = identity.clone()
        identity_mouth[..., 128:, :] = 0
        assert not torch.equal(model.swap(overlay, identity_mouth, reference, mask=mask), swapped)
    with pytest.raises(ValueError, match="hides the reference's lower face.*pass the lower-face mask"):
        model(overlay, reference)
    # No new weights: off, the same parameters see the whole reference.
    seeing = ReSyncGenerator(tiny_config())
    seeing.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(seeing(overlay, reference * (1 - mask[:, None])), out)


def test_low_level_feature_mask_may_live_on_another_device():
    """The mask is moved to the feature maps' device; the meta device stands in for a GPU."""
    model = tiny_generator(size=64, mask_low_level_features=True).to("meta")
    _, maps = model.encode(torch.zeros(1, 6, 64, 64, device="meta"), torch.zeros(1, 64, 64))
    assert all(fmap.device.type == "meta" for fmap in maps)


def test_precision_and_grad_modes():
    model = tiny_generator().eval()
    overlay, reference = random_images(2, batch=1)
    reference_image = model(overlay, reference).detach()
    with torch.no_grad():
        assert torch.equal(model(overlay, reference), reference_image)
    with torch.inference_mode():
        assert torch.equal(model(overlay, reference), reference_image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_precision = model(overlay, reference)
    assert torch.isfinite(low_precision).all()
    assert (low_precision.float() - reference_image).abs().mean() < 0.1 * reference_image.abs().mean()
    double = tiny_generator().double()
    with torch.no_grad():
        assert double(overlay.double(), reference.double()).dtype == torch.float64


def test_bad_inputs_fail_with_one_clear_message():
    model = tiny_generator()
    overlay, reference = random_images(2, size=128)
    with pytest.raises(ValueError, match=r"\[B, 6, 256, 256\]"):
        model(overlay, reference)
    with pytest.raises(ValueError, match="W\\+ must be"):
        model.synthesize(torch.zeros(1, 13, 32), [])
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(size=200)
    with pytest.raises(ValueError, match="n_mlp"):
        GeneratorConfig(n_mlp=0)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model = tiny_generator(audio_dim=4, mask_low_level_features=True).eval()
    overlay, reference = random_images(2, batch=1)
    audio, mask = torch.randn(1, 4), torch.rand(1, 1, 256, 256)
    path = save_checkpoint(model, model.config, "generator", tmp_path / "generator.safetensors")
    loaded, config = load_checkpoint(path, kind="generator")
    assert isinstance(loaded, ReSyncGenerator)
    assert config == model.config and isinstance(config.blur_kernel, tuple)
    with torch.no_grad():
        assert torch.equal(loaded(overlay, reference, audio, mask), model(overlay, reference, audio, mask))


def test_config_is_json_friendly():
    values = dataclasses.asdict(GeneratorConfig())
    assert json.loads(json.dumps(values))["n_mlp"] == 8
    assert GeneratorConfig().n_latent == 14


@pytest.mark.slow
def test_paper_config_runs():
    model = ReSyncGenerator(GeneratorConfig()).eval()
    assert model.n_latent == 14
    overlay, reference = random_images(2, batch=1)
    with torch.inference_mode():
        image = model(overlay, reference)
    assert image.shape == (1, 3, 256, 256) and torch.isfinite(image).all()
