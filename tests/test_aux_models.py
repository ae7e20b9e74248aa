"""Auxiliary loss networks (VGG19, ArcFace, Wav2Lip SyncNet): layouts that match the published
weights key for key, output shapes, freezing, and the small helpers around them.

Full-size networks are built on the meta device: shapes, names and parameter counts without
allocating or initialising ~150 M parameters."""

import pytest
import torch

from resyncer_core.models.arcface import IRESNET_LAYERS, ArcFaceConfig, ArcFaceIResNet
from resyncer_core.models.syncnet import (SyncNet, SyncNetConfig, sync_loss, sync_score,
                                          syncnet_face_window)
from resyncer_core.models.vgg19 import VGG19Config, VGG19Features, relu_layer_indices

TINY_VGG = VGG19Config(channels=(4, 8, 8, 16, 16))
TINY_ARCFACE = ArcFaceConfig(layers=(1, 1, 2, 1), stem_width=8, embedding_size=16, input_size=32)
TINY_SYNCNET = SyncNetConfig(face_widths=(4, 4, 8, 8, 8), audio_widths=(4, 4, 8, 8), embedding_size=8)


def _parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def _shapes(model):
    return {name: list(t.shape) for name, t in model.state_dict().items()}


# --- VGG19 -------------------------------------------------------------------------------

def test_vgg19_full_size_matches_torchvision_features_layout():
    with torch.device("meta"):
        vgg = VGG19Features(VGG19Config())
    conv_indices = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)  # torchvision vgg19().features
    assert set(vgg.state_dict()) == {f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")}
    assert _shapes(vgg)["features.34.weight"] == [512, 512, 3, 3]
    assert _parameter_count(vgg) == 20_024_384  # torchvision VGG19 (143,667,240) minus its classifier
    assert len(vgg.features) == 37
    assert {k: relu_layer_indices()[k] for k in VGG19Config().output_layers} == {
        "relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}


def test_vgg19_returns_exactly_the_requested_layers_in_order():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    default = VGG19Features(TINY_VGG)(images)
    assert [tuple(f.shape) for f in default] == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4), (2, 16, 2, 2)]
    torch.manual_seed(1)
    some = VGG19Features(VGG19Config(channels=TINY_VGG.channels, output_layers=("relu3_2", "relu1_2")))
    out = some(images)
    assert [tuple(f.shape) for f in out] == [(2, 8, 8, 8), (2, 4, 32, 32)]
    assert all((f >= 0).all() for f in out)


def test_vgg19_runs_only_as_deep_as_needed():
    vgg = VGG19Features(VGG19Config(channels=TINY_VGG.channels, output_layers=("relu2_1",)))
    ran = []
    for index, layer in enumerate(vgg.features):
        layer.register_forward_hook(lambda module, inputs, output, index=index: ran.append(index))
    vgg(torch.zeros(1, 3, 16, 16))
    assert ran == list(range(relu_layer_indices()["relu2_1"] + 1))


def test_vgg19_is_frozen_but_passes_gradients_to_the_images():
    vgg = VGG19Features(TINY_VGG)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training, "a frozen loss network stays in eval mode"
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    sum(f.mean() for f in vgg(images)).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    trainable = VGG19Features(VGG19Config(channels=TINY_VGG.channels, frozen=False))
    assert all(p.requires_grad for p in trainable.parameters())


def test_vgg19_normalises_either_input_range_the_same_way():
    torch.manual_seed(0)
    signed = VGG19Features(TINY_VGG)
    unit = VGG19Features(VGG19Config(channels=TINY_VGG.channels, input_range="0..1"))
    unit.load_state_dict(signed.state_dict())
    images01 = torch.rand(1, 3, 32, 32)
    for a, b in zip(signed(images01 * 2 - 1), unit(images01)):
        torch.testing.assert_close(a, b)
    assert "mean" not in signed.state_dict(), "normalisation constants are not checkpoint tensors"


def test_vgg19_rejects_unknown_layer_names():
    with pytest.raises(ValueError, match="relu6_1"):
        VGG19Features(VGG19Config(output_layers=("relu6_1",)))


# --- ArcFace -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant, state_tensors, parameters", [("r50", 475, 43_590_848), ("r100", 925, 65_156_160)])
def test_arcface_full_size_matches_insightface_iresnet(variant, state_tensors, parameters):
    with torch.device("meta"):
        net = ArcFaceIResNet(ArcFaceConfig(layers=IRESNET_LAYERS[variant]))
        embedding = net(torch.zeros(2, 3, 256, 256))
    shapes = _shapes(net)
    assert len(shapes) == state_tensors and _parameter_count(net) == parameters
    assert shapes["conv1.weight"] == [64, 3, 3, 3] and shapes["prelu.weight"] == [64]
    assert shapes["layer1.0.downsample.0.weight"] == [64, 64, 1, 1]
    assert shapes["layer4.2.prelu.weight"] == [512] and shapes["layer4.0.conv2.weight"] == [512, 512, 3, 3]
    assert shapes["fc.weight"] == [512, 512 * 7 * 7] and shapes["features.running_var"] == [512]
    last_block = IRESNET_LAYERS[variant][2] - 1
    assert f"layer3.{last_block}.bn3.running_mean" in shapes and "layer1.1.downsample.0.weight" not in shapes
    assert tuple(embedding.shape) == (2, 512)


def test_arcface_embeddings_are_unit_length_for_any_input_size():
    torch.manual_seed(0)
    net = ArcFaceIResNet(TINY_ARCFACE)
    for size in ((256, 256), (40, 40), (64, 48)):
        embedding = net(torch.rand(3, 3, *size) * 2 - 1)
        assert tuple(embedding.shape) == (3, 16)
        torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3))


def test_arcface_takes_the_central_crop():
    net = ArcFaceIResNet(ArcFaceConfig(layers=(1, 1, 1, 1), stem_width=4, input_size=32, crop_fraction=0.5))
    images = torch.zeros(1, 3, 64, 64)
    images[..., 16:48, 16:48] = torch.rand(1, 3, 32, 32)
    assert torch.equal(net.crop_faces(images), images[..., 16:48, 16:48])


def test_arcface_is_frozen_and_keeps_batchnorm_statistics_in_train_mode():
    net = ArcFaceIResNet(TINY_ARCFACE)
    assert not any(p.requires_grad for p in net.parameters())
    before = net.bn1.running_mean.clone()
    net.train()
    net(torch.rand(2, 3, 32, 32) + 5)
    assert not net.training and torch.equal(net.bn1.running_mean, before)


# --- SyncNet -----------------------------------------------------------------------------

def test_syncnet_full_size_matches_wav2lip_lipsync_expert():
    with torch.device("meta"):
        net = SyncNet(SyncNetConfig())
        audio, face = net(torch.zeros(2, 1, 80, 16), torch.zeros(2, 15, 48, 96))
    shapes = _shapes(net)
    assert len(net.face_encoder) == 17 and len(net.audio_encoder) == 14
    assert shapes["face_encoder.0.conv_block.0.weight"] == [32, 15, 7, 7]
    assert shapes["face_encoder.1.conv_block.0.weight"] == [64, 32, 5, 5]
    assert shapes["face_encoder.16.conv_block.0.weight"] == [512, 512, 1, 1]
    assert shapes["face_encoder.4.conv_block.1.running_var"] == [128]
    assert shapes["audio_encoder.0.conv_block.0.weight"] == [32, 1, 3, 3]
    assert shapes["audio_encoder.12.conv_block.0.weight"] == [512, 256, 3, 3]
    assert shapes["audio_encoder.13.conv_block.0.bias"] == [512]
    assert _parameter_count(net) == 16_435_072
    assert tuple(audio.shape) == (2, 512) and tuple(face.shape) == (2, 512)


def test_syncnet_embeddings_are_unit_length_and_scores_in_unit_interval():
    torch.manual_seed(0)
    net = SyncNet(TINY_SYNCNET)
    audio, face = net(torch.randn(4, 1, 80, 16), torch.rand(4, 15, 48, 96))
    assert tuple(audio.shape) == (4, 8) and tuple(face.shape) == (4, 8)
    torch.testing.assert_close(audio.norm(dim=1), torch.ones(4))
    score = sync_score(audio, face)
    assert tuple(score.shape) == (4,) and ((score >= 0) & (score <= 1 + 1e-6)).all()
    loss = sync_loss(audio, face)
    torch.testing.assert_close(loss, -torch.log(score.clamp(1e-12, 1)).clamp(max=100).mean())
    assert sync_loss(audio, audio) < 1e-5  # identical embeddings: in sync


def test_syncnet_rejects_wrong_window_shapes():
    net = SyncNet(TINY_SYNCNET)
    with pytest.raises(ValueError, match="face windows"):
        net(torch.zeros(1, 1, 80, 16), torch.zeros(1, 15, 96, 96))


def test_face_window_is_lower_half_bgr_in_unit_range_frame_major():
    crops = torch.zeros(2, 5, 3, 96, 96)
    crops[:, 2, 0] = 1.0  # frame 2, red channel, fully on
    crops[:, :, :, :48] = -1.0  # upper half black: must not appear
    window = syncnet_face_window(crops)
    assert tuple(window.shape) == (2, 15, 48, 96)
    expected = torch.zeros(2, 15, 48, 96) + 0.5
    expected[:, 2 * 3 + 2] = 1.0  # BGR: red is the third channel of frame 2
    torch.testing.assert_close(window, expected)
