"""Shared timing for the benchmark scripts: best wall time of repeated runs after a warm-up."""

from __future__ import annotations

import time

import torch


def best_ms_per_frame(run, frames_per_call: int, repeats: int, device: torch.device | str = "cpu") -> float:
    """Best of `repeats` timed calls of `run` after one warm-up (allocator, lazy loads,
    kernels), in milliseconds per frame; CUDA work is synchronised around each call."""
    is_cuda = torch.device(device).type == "cuda"
    run()
    best = float("inf")
    for _ in range(repeats):
        if is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / frames_per_call
