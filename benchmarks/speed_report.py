"""Size and speed of the core networks per preset, as a share of this machine's matmul peak.

    python benchmarks/speed_report.py [--presets small paper] [--workloads generator train_step]
                                      [--batch 1] [--precision fp32|bf16|fp16] [--rounds 5]
                                      [--threads N] [--allocator tuned|system] [--channels-last]

Every round times a 2048² float32 matmul and then each workload once, so every figure is
divided by a peak measured minutes (not hours) apart on the same, possibly busy, machine;
the report prints medians over the rounds. Columns:

    GFLOP/sample   matmul/conv FLOPs counted by torch's FlopCounterMode (2 per multiply-add;
                   backward included for train_step; elementwise work not counted)
    ms/sample      median wall time of one call divided by the batch
    GFLOP/s, %mm   achieved rate, and that rate over the same round's matmul rate
    faults, sys ms minor page faults and kernel (system) CPU time per sample, from getrusage:
                   what a per-call page-fault storm costs

Workloads (random weights; speed does not depend on the values):
    wav2vec2      encoding 4 s of audio at 25 fps, per video frame
    syncformer    one 100-frame autoregressive window (paper inference unit), per frame
    generator     G(overlay, reference) at the preset's crop size, inference
    discriminator D(image), inference
    train_step    one stage-2 step per sample: G forward; L1 + 0.1·VGG19 perceptual +
                  non-saturating adversarial loss; backward into G; D on real and fake and
                  its backward (no optimiser step, no R1)
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from resyncer_core.models.discriminator import Discriminator
from resyncer_core.models.generator import ReSyncGenerator
from resyncer_core.models.presets import _PRESETS, preset_config
from resyncer_core.models.vgg19 import VGG19Features

FPS = 25
WINDOW_FRAMES = 100
MATMUL_SIDE = 2048
WORKLOADS = ("wav2vec2", "syncformer", "generator", "discriminator", "train_step")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Workload:
    name: str
    run: object           # callable, one timed call
    samples: int          # frames the call produces (batch, or a window's frames)
    inference: bool


def matmul_gflops() -> float:
    """One timed 2048² float32 matmul after a warm-up, in GFLOP/s."""
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    torch.mm(a, b)
    start = time.perf_counter()
    torch.mm(a, b)
    return 2 * MATMUL_SIDE ** 3 / (time.perf_counter() - start) / 1e9


def _autocast(precision: str):
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast("cpu", dtype=dtype)


def _train_step(generator, discriminator, vgg, overlay, reference, real, precision: str):
    from resyncer_core.train.image_losses import (discriminator_logistic_loss, generator_nonsaturating_loss,
                                                  reconstruction_loss)

    def step():
        with _autocast(precision):
            fake = generator(overlay, reference)
            discriminator.requires_grad_(False)
            with torch.no_grad():
                real_features = vgg(real)
            loss = reconstruction_loss(fake, real, vgg(fake), real_features)
            loss = loss + generator_nonsaturating_loss(discriminator(fake))
        loss.backward()
        discriminator.requires_grad_(True)
        with _autocast(precision):
            d_loss = discriminator_logistic_loss(discriminator(real), discriminator(fake.detach()))
        d_loss.backward()
        generator.zero_grad(set_to_none=True)
        discriminator.zero_grad(set_to_none=True)

    return step


def _workloads(preset: str, names: list[str], batch: int, precision: str, channels_last: bool, workdir: Path):
    """Yields (Workload, modules) for every requested workload of the preset."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def image(config_size: int) -> torch.Tensor:
        return torch.randn(batch, 3, config_size, config_size).contiguous(memory_format=memory_format)

    def inference(run):
        def call():
            with torch.inference_mode(), _autocast(precision):
                run()
        return call

    if "wav2vec2" in names:
        from resyncer_core.audio import Wav2Vec2AudioEncoder, make_random_wav2vec2
        folder = make_random_wav2vec2(workdir / f"wav2vec2-{preset}", _PRESETS[preset]["wav2vec2"]["preset"])
        encoder = Wav2Vec2AudioEncoder.from_pretrained(folder, device="cpu")
        waveform = torch.randn(1, 16000 * WINDOW_FRAMES // FPS)
        yield Workload("wav2vec2", inference(lambda: encoder(waveform, WINDOW_FRAMES, FPS)), WINDOW_FRAMES, True), [encoder]
    if "syncformer" in names:
        from resyncer_core.models.syncformer import StyleSyncFormer
        config = preset_config(preset, "syncformer")
        syncformer = StyleSyncFormer(config).eval()
        audio = torch.randn(1, WINDOW_FRAMES, config.audio_dim)
        style = torch.randn(1, config.style_frames, config.vertex_count, 3)
        yield (Workload("syncformer", inference(lambda: syncformer.generate(audio, style)), WINDOW_FRAMES, True),
               [syncformer])
    def generator_and_discriminator():
        generator = ReSyncGenerator(preset_config(preset, "generator")).to(memory_format=memory_format)
        discriminator = Discriminator(preset_config(preset, "discriminator")).to(memory_format=memory_format)
        return generator, discriminator

    size = preset_config(preset, "generator").size
    overlay, reference = image(size), image(size)
    if "generator" in names:
        generator = generator_and_discriminator()[0].eval()
        yield Workload("generator", inference(lambda: generator(overlay, reference)), batch, True), [generator]
    if "discriminator" in names:
        discriminator = generator_and_discriminator()[1].eval()
        yield Workload("discriminator", inference(lambda: discriminator(overlay)), batch, True), [discriminator]
    if "train_step" in names:
        generator, discriminator = generator_and_discriminator()
        vgg = VGG19Features(preset_config(preset, "vgg19")).to(memory_format=memory_format)
        step = _train_step(generator, discriminator, vgg, overlay, reference, image(size), precision)
        yield Workload("train_step", step, batch, False), [generator, discriminator, vgg]


def _count_flops(workload: Workload) -> float:
    """FLOPs per sample. Inference is counted with frozen parameters in plain grad mode:
    FlopCounterMode cannot trace Wav2Vec2's weight-norm parametrization under inference_mode."""
    with FlopCounterMode(display=False) as counter:
        workload.run()
    return counter.get_total_flops() / workload.samples


def _timed_call(workload: Workload) -> tuple[float, float, float]:
    """(seconds, minor page faults, kernel seconds) of one call."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    workload.run()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime


def report(presets: list[str], names: list[str], batch: int, precision: str, rounds: int,
           channels_last: bool) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}, {precision}, "
          f"{'channels_last' if channels_last else 'contiguous'}, medians of {rounds} interleaved rounds")
    print(f"{'preset':7} {'workload':14} {'params M':>9} {'GFLOP/smp':>10} {'ms/smp':>9} {'GFLOP/s':>8} "
          f"{'%mm':>5} {'faults/smp':>11} {'sys ms/smp':>10} {'mm GFLOP/s':>10}")
    with tempfile.TemporaryDirectory() as workdir:
        for preset in presets:
            for workload, modules in _workloads(preset, names, batch, precision, channels_last, Path(workdir)):
                params = sum(p.numel() for p in modules[0].parameters()) / 1e6
                if workload.inference:
                    for module in modules:
                        module.requires_grad_(False)
                gflop = _count_flops(workload) / 1e9
                workload.run()  # warm-up after the counting pass
                seconds, faults, system, peaks, ratios = [], [], [], [], []
                for _ in range(rounds):
                    peak = matmul_gflops()
                    wall, fault, kernel = _timed_call(workload)
                    seconds.append(wall / workload.samples)
                    faults.append(fault / workload.samples)
                    system.append(kernel / workload.samples)
                    peaks.append(peak)
                    ratios.append(gflop / seconds[-1] / peak)
                wall = statistics.median(seconds)
                print(f"{preset:7} {workload.name:14} {params:9.2f} {gflop:10.3f} {1000 * wall:9.1f} "
                      f"{gflop / wall:8.1f} {100 * statistics.median(ratios):5.1f} "
                      f"{statistics.median(faults):11.0f} {1000 * statistics.median(system):10.1f} "
                      f"{statistics.median(peaks):10.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=list(_PRESETS))
    parser.add_argument("--workloads", nargs="+", default=["generator", "discriminator", "train_step"],
                        choices=WORKLOADS)
    parser.add_argument("--batch", type=int, default=1, help="samples per generator/discriminator/training call")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="autocast dtype (fp32: none)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC inputs and weights")
    parser.add_argument("--allocator", choices=["tuned", "system"], default="tuned",
                        help="tuned: resyncer's glibc settings (as the CLI and nodes use); system: glibc defaults")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "tuned":
        from resyncer_core.allocator import tune_memory_allocator
        print(f"allocator: {tune_memory_allocator()}")
    report(args.presets, args.workloads, args.batch, args.precision, args.rounds, args.channels_last)


if __name__ == "__main__":
    main()
