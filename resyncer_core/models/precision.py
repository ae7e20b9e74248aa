"""Arithmetic precision of a model call: fp32, or bf16 / fp16 autocast.

bf16 autocast runs the convolutions and matmuls in bfloat16 (1.7× less CPU time for the paper
generator on the AMD EPYC this was measured on; recent GPUs gain more) while parameters, losses
and the outputs handed back stay float32. Its effect on a trained generator's output must be measured
(benchmarks/speed_report.py --precision bf16 prints the PSNR against fp32); fp32 is the default.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import ResyncerInputError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ResyncerInputError(f"precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    return precision


def autocast_for(precision: str, device: torch.device | str):
    """The context a model call runs in at `precision` on `device`: nothing for fp32,
    torch.autocast with the half dtype otherwise."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
