"""The shipped loss/metric networks: EfficientNet-Lite0 (perceptual features) and the dlib face
descriptor (identity), their converters (tiny random models round-tripped through the original
layouts) and the shipped files themselves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.models.efficientnet_lite0 import EfficientNetLite0Config, EfficientNetLite0Features
from resyncer_core.models.face_descriptor import FaceDescriptorConfig, FaceDescriptorResNet
from resyncer_core.weights import EFFICIENTNET_LITE0, FACE_DESCRIPTOR, shipped_weights

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import convert_efficientnet_lite0  # noqa: E402
import convert_face_api  # noqa: E402

TINY_LITE0 = EfficientNetLite0Config(stem_width=4, stage_widths=(4, 4, 8, 8, 8, 16, 16),
                                     stage_repeats=(1, 2, 1, 1, 1, 1, 1), stage_expansions=(1, 2, 2, 2, 2, 2, 2))
TINY_DESCRIPTOR = FaceDescriptorConfig(widths=(4, 4, 8, 8), embedding_size=8)


def _randomise(network: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) * 0.5 + (0.75 if "running_var" in name else -0.25)
                tensor.copy_(values)


def test_efficientnet_lite0_converter_round_trip(tmp_path):
    original = EfficientNetLite0Features(TINY_LITE0)
    _randomise(original)
    state = dict(original.state_dict())
    # The package's file also holds the ImageNet head, which the converter drops.
    state.update({"_conv_head.weight": torch.zeros(32, 16, 1, 1), "_fc.weight": torch.zeros(10, 32),
                  "_fc.bias": torch.zeros(10)})
    torch.save(state, tmp_path / "lite0.pth")
    written = convert_efficientnet_lite0.convert(tmp_path / "lite0.pth", tmp_path / "lite0.safetensors",
                                                 TINY_LITE0, dtype=torch.float32)
    loaded, config = load_checkpoint(written, kind="efficientnet_lite0")
    assert config == TINY_LITE0
    images = torch.rand(2, 3, 40, 36) * 2 - 1
    with torch.no_grad():
        for ours, theirs in zip(loaded(images), original(images)):
            torch.testing.assert_close(ours, theirs)
    assert [tuple(f.shape[-2:]) for f in loaded(images)] == [(20, 18), (10, 9), (5, 5), (3, 3), (2, 2)]
    assert not any(p.requires_grad for p in loaded.parameters())


def test_efficientnet_same_padding_matches_tensorflow():
    """TF 'SAME' at stride 2 pads the odd extra pixel at the bottom/right only."""
    from resyncer_core.models.efficientnet_lite0 import SamePaddingConv2d

    conv = SamePaddingConv2d(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    image = torch.ones(1, 1, 4, 4)
    # Output 2×2; top-left window sees rows/cols 0..2 (no padding before), bottom-right sees a padded row and column.
    assert conv(image)[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]


def _write_tfjs(network: FaceDescriptorResNet, folder: Path) -> Path:
    """The network's weights in face-api's TFJS layout: filters [kh,kw,in,out] as uint8 with
    scale/min, biases as raw float32, fc [in,out]; two shards."""
    entries, blobs = [], []
    for name, tensor in network.state_dict().items():
        value = tensor.numpy()
        parts = name.split(".")
        if name == "fc.weight":
            tfjs_name, value = "fc", value.T
        else:
            leaf = {"conv": {"weight": "filters", "bias": "bias"}, "scale": {"weight": "weights", "bias": "biases"}}
            tfjs_name = "/".join(parts[:-2] + [parts[-2], leaf[parts[-2]][parts[-1]]])
            if parts[-1] == "weight" and parts[-2] == "conv":
                value = value.transpose(2, 3, 1, 0)
        entry = {"name": tfjs_name, "shape": list(value.shape), "dtype": "float32"}
        if value.ndim == 4:
            low, high = float(value.min()), float(value.max())
            scale = (high - low) / 255
            quantized = np.round((value - low) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
            blobs.append(quantized.tobytes())
        else:
            blobs.append(np.ascontiguousarray(value, dtype="<f4").tobytes())
        entries.append(entry)
    data = b"".join(blobs)
    half = len(data) // 2
    (folder / "shard1.bin").write_bytes(data[:half])
    (folder / "shard2.bin").write_bytes(data[half:])
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps([{"paths": ["shard1.bin", "shard2.bin"], "weights": entries}]))
    return manifest


def test_face_descriptor_converter_round_trip(tmp_path):
    original = FaceDescriptorResNet(TINY_DESCRIPTOR)
    _randomise(original)
    manifest = _write_tfjs(original, tmp_path)
    # The converter's dequantized filters are what the uint8 codes mean; copy them back so the
    # comparison below is exact and checks the layout, not the quantization.
    dequantized = convert_face_api.torch_state_dict(convert_face_api.read_tfjs_weights(manifest))
    original.load_state_dict(dequantized)
    written = convert_face_api.convert(manifest, tmp_path / "descriptor.safetensors", TINY_DESCRIPTOR,
                                       dtype=torch.float32)
    loaded, config = load_checkpoint(written, kind="face_descriptor")
    assert config == TINY_DESCRIPTOR
    images = torch.rand(3, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), original(images))
        assert loaded(images).shape == (3, 8)


def test_face_descriptor_reader_refuses_truncated_shards(tmp_path):
    from resyncer_core.errors import CheckpointError

    manifest = _write_tfjs(FaceDescriptorResNet(TINY_DESCRIPTOR), tmp_path)
    (tmp_path / "shard2.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated"):
        convert_face_api.read_tfjs_weights(manifest)


def test_shipped_files_load_with_notices():
    for name, kind in ((EFFICIENTNET_LITE0, "efficientnet_lite0"), (FACE_DESCRIPTOR, "face_descriptor")):
        path = shipped_weights(name)
        assert (path.parent / f"NOTICE.{path.stem}").is_file()
        network, _ = load_checkpoint(path, kind=kind)
        assert not any(p.requires_grad for p in network.parameters())


def test_shipped_face_descriptor_is_stable_for_the_same_face():
    """The astronaut, its mirror image and a shifted copy give nearly the same descriptor
    (different people score about 0.84–0.92 with face-api's demo photos: tools/convert_face_api.py
    --check, which needs those photos and so is not run here)."""
    from resyncer_core.face import FaceTracker
    from resyncer_core.stages.functions import aligned_crops
    from resyncer_core.synth.portrait import load_portrait

    network, _ = load_checkpoint(shipped_weights(FACE_DESCRIPTOR), kind="face_descriptor")
    portrait = load_portrait()
    shift = portrait.shape[1] // 25
    frames = np.stack([portrait, np.ascontiguousarray(portrait[:, ::-1]), np.roll(portrait, (shift, shift), axis=(0, 1))])
    track = FaceTracker().track(frames, 25.0)
    assert track.valid.all()
    with torch.no_grad():
        descriptors = torch.nn.functional.normalize(network(aligned_crops(frames, track)), dim=1)
    assert (descriptors @ descriptors.T).min() > 0.97
