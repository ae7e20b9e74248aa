"""Checkpoint format: bit-exact round trip, typed configs, one-sentence errors."""

import os
import stat
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import save_file

from resyncer_core.errors import CheckpointError
from resyncer_core.models import checkpoint, registry


@dataclass
class ToyConfig:
    width: int = 4
    kernel: tuple = (3, 3)
    name: str = "toy"


class ToyModel(torch.nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, config.width, config.kernel)
        self.norm = torch.nn.BatchNorm2d(config.width)

    def forward(self, x):
        return self.norm(self.conv(x))


@pytest.fixture(autouse=True)
def toy_kind(monkeypatch):
    monkeypatch.setitem(registry.MODEL_KINDS, "toy", registry.ModelKind(__name__, "ToyModel", "ToyConfig"))


def _trained_toy(config=ToyConfig()):
    torch.manual_seed(0)
    model = ToyModel(config)
    model.train()
    model(torch.randn(3, 2, 8, 8))  # moves the BatchNorm running stats off their defaults
    return model.eval()


def test_round_trip_is_bit_exact_and_keeps_typed_config(tmp_path):
    config = ToyConfig(width=5, kernel=(3, 1))
    model = _trained_toy(config)
    path = checkpoint.save_checkpoint(model, config, "toy", tmp_path / "toy.safetensors")
    loaded, loaded_config = checkpoint.load_checkpoint(path, kind="toy")
    assert loaded_config == config and isinstance(loaded_config.kernel, tuple)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    x = torch.randn(2, 2, 8, 8)
    assert torch.equal(model(x), loaded(x))
    assert not loaded.training
    assert [path.name for path in tmp_path.iterdir()] == ["toy.safetensors"], "atomic save left its temp file"


def test_saved_checkpoints_get_the_umask_permissions_like_any_output(tmp_path):
    """Not mkstemp's 0600, which the rename would keep: a checkpoint others cannot read."""
    previous = os.umask(0o022)
    try:
        path = checkpoint.save_checkpoint(_trained_toy(), ToyConfig(), "toy", tmp_path / "shared.safetensors")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [entry.name for entry in tmp_path.iterdir()] == ["shared.safetensors"]


def test_header_names_kind_and_version(tmp_path):
    path = checkpoint.save_checkpoint(_trained_toy(), ToyConfig(), "toy", tmp_path / "t.safetensors")
    header = checkpoint.read_checkpoint_header(path)
    assert header.kind == "toy" and header.format_version == checkpoint.FORMAT_VERSION
    assert header.config["width"] == 4


def _single_line(error: Exception) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def test_corrupt_file_gives_clear_error(tmp_path):
    path = checkpoint.save_checkpoint(_trained_toy(), ToyConfig(), "toy", tmp_path / "c.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        checkpoint.load_checkpoint(path)
    message = _single_line(info.value)
    assert str(path) in message and "corrupt" in message or "not a readable" in message

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 definitely not safetensors")
    with pytest.raises(CheckpointError, match="garbage.safetensors"):
        checkpoint.load_checkpoint(garbage)


def test_wrong_shape_names_file_and_tensor(tmp_path):
    model = _trained_toy()
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["conv.weight"] = torch.zeros(4, 2, 5, 5)
    path = tmp_path / "wrong.safetensors"
    save_file(tensors, str(path), metadata={
        "resyncer.format_version": "1", "resyncer.kind": "toy",
        "resyncer.config": checkpoint.config_to_json(ToyConfig())})
    with pytest.raises(CheckpointError) as info:
        checkpoint.load_checkpoint(path)
    message = _single_line(info.value)
    assert "wrong.safetensors" in message and "'conv.weight'" in message and "[4, 2, 3, 3]" in message


def test_missing_file_wrong_kind_foreign_file_and_newer_version(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "absent.safetensors")

    path = checkpoint.save_checkpoint(_trained_toy(), ToyConfig(), "toy", tmp_path / "k.safetensors")
    with pytest.raises(CheckpointError, match="holds a toy model, not a generator"):
        checkpoint.load_checkpoint(path, kind="generator")

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="no resyncer metadata"):
        checkpoint.load_checkpoint(foreign)

    newer = tmp_path / "newer.safetensors"
    save_file(dict(_trained_toy().state_dict()), str(newer), metadata={
        "resyncer.format_version": "99", "resyncer.kind": "toy", "resyncer.config": "{}"})
    with pytest.raises(CheckpointError, match="newer than this resyncer"):
        checkpoint.load_checkpoint(newer)


def test_unknown_config_field_is_refused(tmp_path):
    path = tmp_path / "extra.safetensors"
    save_file(dict(_trained_toy().state_dict()), str(path), metadata={
        "resyncer.format_version": "1", "resyncer.kind": "toy",
        "resyncer.config": '{"width": 4, "kernel": [3, 3], "name": "toy", "depth": 9}'})
    with pytest.raises(CheckpointError, match="'depth'"):
        checkpoint.load_checkpoint(path)


@pytest.mark.parametrize("kind, config_json", [
    ("syncformer", '{"d_model": 30}'),                    # the config's own validation
    ("syncformer", '{"d_model": "wide"}'),                # a value of the wrong type
    ("vgg19", '{"channels": [4, 8, 8, 16]}'),             # validated when the network is built
    ("arcface", '{"crop_fraction": 2.0}'),
    ("syncnet", '{"audio_widths": [4, 8]}'),
    ("syncformer", '[1, 2]'),                             # not an object at all
])
def test_an_invalid_stored_config_is_a_checkpoint_error_naming_the_file(tmp_path, kind, config_json):
    """CLI and nodes show CheckpointError as one line; any other exception is a traceback."""
    path = tmp_path / f"bad_{kind}.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={
        "resyncer.format_version": "1", "resyncer.kind": kind, "resyncer.config": config_json})
    with pytest.raises(CheckpointError) as info:
        checkpoint.load_checkpoint(path)
    assert f"bad_{kind}.safetensors" in _single_line(info.value)
