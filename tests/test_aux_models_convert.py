"""Converters from the original .pth files (torchvision VGG19, insightface ArcFace, Wav2Lip
SyncNet) to resyncer checkpoints: each test writes a tiny random model in the ORIGINAL file
layout with torch.save, converts it, reloads it with load_checkpoint and compares outputs."""

import pytest
import torch

from resyncer_core.errors import CheckpointError
from resyncer_core.models import convert
from resyncer_core.models.arcface import ArcFaceConfig, ArcFaceIResNet
from resyncer_core.models.checkpoint import load_checkpoint, read_checkpoint_header
from resyncer_core.models.syncnet import SyncNet, SyncNetConfig
from resyncer_core.models.vgg19 import VGG19Config, VGG19Features

TINY_VGG = VGG19Config(channels=(4, 8, 8, 16, 16))
TINY_ARCFACE = ArcFaceConfig(layers=(1, 1, 2, 1), stem_width=8, embedding_size=16, input_size=32)
TINY_SYNCNET = SyncNetConfig(face_widths=(4, 4, 8, 8, 8), audio_widths=(4, 4, 8, 8), embedding_size=8)


class TrainingArguments:
    """Stands in for the argparse/config objects some training scripts pickle into checkpoints."""


def _random_model(model_class, config):
    """A model whose every weight and BatchNorm statistic is random, so a wrong mapping of
    any tensor shows up in the outputs."""
    torch.manual_seed(0)
    model = model_class(config)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(1234)
            else:
                tensor.normal_(0, 0.3)
    return model.eval()


def _torchvision_vgg19_file(model, path):
    """torchvision's vgg19 state dict: features.N.* plus a classifier we must drop."""
    state = dict(model.state_dict())
    width = model.config.channels[-1]
    for index, (out_features, in_features) in {0: (32, width * 49), 3: (32, 32), 6: (10, 32)}.items():
        state[f"classifier.{index}.weight"] = torch.randn(out_features, in_features)
        state[f"classifier.{index}.bias"] = torch.randn(out_features)
    torch.save(state, path)
    return state


def _insightface_backbone_file(model, path):
    """arcface_torch saves backbone.module.state_dict(): a plain dict of iresnet keys."""
    state = dict(model.state_dict())
    torch.save(state, path)
    return state


def _wav2lip_checkpoint_file(model, path):
    """Wav2Lip's save_checkpoint: DataParallel-prefixed weights next to optimizer state."""
    weights = {"module." + name: tensor for name, tensor in model.state_dict().items()}
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([parameter], lr=1e-4)
    parameter.sum().backward()
    optimizer.step()
    torch.save({"state_dict": weights, "optimizer": optimizer.state_dict(), "global_step": 270000, "global_epoch": 4}, path)
    return weights


def _vgg_inputs():
    return (torch.rand(2, 3, 32, 32) * 2 - 1,)


def _arcface_inputs():
    return (torch.rand(2, 3, 48, 48) * 2 - 1,)


def _syncnet_inputs():
    return torch.randn(2, 1, 80, 16), torch.rand(2, 15, 48, 96)


CASES = {
    "vgg19": (VGG19Features, TINY_VGG, _torchvision_vgg19_file, convert.convert_torchvision_vgg19, _vgg_inputs),
    "arcface": (ArcFaceIResNet, TINY_ARCFACE, _insightface_backbone_file, convert.convert_insightface_arcface, _arcface_inputs),
    "syncnet": (SyncNet, TINY_SYNCNET, _wav2lip_checkpoint_file, convert.convert_wav2lip_syncnet, _syncnet_inputs),
}


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@pytest.mark.parametrize("kind", CASES)
def test_original_file_converts_to_a_checkpoint_with_identical_outputs(kind, tmp_path):
    model_class, config, write_original, converter, inputs = CASES[kind]
    source = _random_model(model_class, config)
    write_original(source, tmp_path / "original.pth")

    written = converter(tmp_path / "original.pth", tmp_path / f"{kind}.safetensors", config=config)

    assert read_checkpoint_header(written).kind == kind
    loaded, loaded_config = load_checkpoint(written, kind=kind)
    assert type(loaded) is model_class and loaded_config == config
    assert not any(p.requires_grad for p in loaded.parameters())
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    torch.manual_seed(1)
    batch = inputs()
    with torch.no_grad():
        for expected, actual in zip(_as_list(source(*batch)), _as_list(loaded(*batch)), strict=True):
            assert torch.equal(expected, actual)


def test_plain_state_dict_without_wrapping_or_prefix_also_converts_for_syncnet(tmp_path):
    source = _random_model(SyncNet, TINY_SYNCNET)
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    loaded, _ = load_checkpoint(convert.convert_wav2lip_syncnet(tmp_path / "plain.pth", tmp_path / "s.safetensors", config=TINY_SYNCNET))
    assert torch.equal(loaded.face_encoder[0].conv_block[0].weight, source.face_encoder[0].conv_block[0].weight)


def test_arcface_torch_resumable_checkpoint_also_converts(tmp_path):
    source = _random_model(ArcFaceIResNet, TINY_ARCFACE)
    torch.save({"epoch": 3, "global_step": 9000,
                "state_dict_backbone": {"module." + k: v for k, v in source.state_dict().items()},
                "state_dict_softmax_fc": {"weight": torch.randn(100, 16)}}, tmp_path / "checkpoint_gpu_0.pt")
    loaded, _ = load_checkpoint(convert.convert_insightface_arcface(tmp_path / "checkpoint_gpu_0.pt", tmp_path / "a.safetensors", config=TINY_ARCFACE))
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(images), source(images))


def test_missing_batch_counters_are_filled_in(tmp_path):
    source = _random_model(ArcFaceIResNet, TINY_ARCFACE)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    loaded, _ = load_checkpoint(convert.convert_insightface_arcface(tmp_path / "old.pth", tmp_path / "a.safetensors", config=TINY_ARCFACE))
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(images), source(images))


def _one_line_error(call):
    with pytest.raises(CheckpointError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("kind", CASES)
def test_wrong_shape_and_missing_key_give_one_line_naming_file_and_key(kind, tmp_path):
    model_class, config, write_original, converter, _ = CASES[kind]
    state = write_original(_random_model(model_class, config), tmp_path / "good.pth")
    victim = next(name for name, tensor in state.items() if tensor.ndim == 4)

    wrong_shape = dict(state, **{victim: torch.zeros(1, 2, 3, 4)})
    torch.save(wrong_shape, tmp_path / "wrong_shape.pth")
    message = _one_line_error(lambda: converter(tmp_path / "wrong_shape.pth", tmp_path / "out.safetensors", config=config))
    assert "wrong_shape.pth" in message and victim.removeprefix("module.") in message and "[1, 2, 3, 4]" in message

    missing = {name: tensor for name, tensor in state.items() if name != victim}
    torch.save(missing, tmp_path / "missing.pth")
    message = _one_line_error(lambda: converter(tmp_path / "missing.pth", tmp_path / "out.safetensors", config=config))
    assert "missing.pth" in message and victim.removeprefix("module.") in message
    assert not (tmp_path / "out.safetensors").exists()


def test_arcface_variant_mismatch_is_refused(tmp_path):
    _insightface_backbone_file(_random_model(ArcFaceIResNet, TINY_ARCFACE), tmp_path / "r.pth")
    deeper = ArcFaceConfig(layers=(1, 1, 3, 1), stem_width=8, embedding_size=16, input_size=32)
    shallower = ArcFaceConfig(layers=(1, 1, 1, 1), stem_width=8, embedding_size=16, input_size=32)
    assert "lacks tensor 'layer3.2." in _one_line_error(
        lambda: convert.convert_insightface_arcface(tmp_path / "r.pth", tmp_path / "o.safetensors", config=deeper))
    assert "unexpected tensor 'layer3.1." in _one_line_error(
        lambda: convert.convert_insightface_arcface(tmp_path / "r.pth", tmp_path / "o.safetensors", config=shallower))
    assert "r200" in _one_line_error(
        lambda: convert.convert_insightface_arcface(tmp_path / "r.pth", tmp_path / "o.safetensors", variant="r200"))


def test_pickled_python_objects_are_refused(tmp_path):
    source = _random_model(SyncNet, TINY_SYNCNET)
    torch.save({"state_dict": source.state_dict(), "args": TrainingArguments()}, tmp_path / "pickled.pth")
    message = _one_line_error(lambda: convert.convert_wav2lip_syncnet(tmp_path / "pickled.pth", tmp_path / "o.safetensors", config=TINY_SYNCNET))
    assert "pickled.pth" in message and "TrainingArguments" in message and "refuses" in message


def test_unreadable_sources_are_refused(tmp_path):
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file" * 8)
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    for name in ("garbage.pth", "empty.pth", "list.pth", "absent.pth"):
        message = _one_line_error(lambda: convert.convert_torchvision_vgg19(tmp_path / name, tmp_path / "o.safetensors"))
        assert name in message


def test_command_line_converts_and_reports_errors_in_one_line(tmp_path, capsys):
    with torch.device("meta"):
        layout = SyncNet(SyncNetConfig()).state_dict()
    torch.save({"state_dict": {"module." + k: torch.zeros(v.shape, dtype=v.dtype) for k, v in layout.items()}}, tmp_path / "lipsync_expert.pth")
    assert convert.main(["syncnet", str(tmp_path / "lipsync_expert.pth"), str(tmp_path / "syncnet.safetensors")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "syncnet.safetensors")
    assert read_checkpoint_header(tmp_path / "syncnet.safetensors").config == {
        "face_widths": [32, 64, 128, 256, 512], "audio_widths": [32, 64, 128, 256], "embedding_size": 512, "frozen": True}

    assert convert.main(["arcface", str(tmp_path / "lipsync_expert.pth"), str(tmp_path / "a.safetensors"), "--variant", "r100"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "lipsync_expert.pth" in error
