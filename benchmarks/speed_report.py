"""Size and speed of the core networks per preset, as a share of this machine's matmul peak.

    python benchmarks/speed_report.py [--presets small paper] [--workloads generator train_step]
                                      [--batch 1] [--precision fp32|bf16|fp16] [--rounds 5]
                                      [--threads N] [--allocator tuned|system] [--channels-last]
                                      [--generator TRAINED.safetensors]

Every round times a 2048² float32 matmul and then each workload once, so every figure is
divided by a peak measured minutes (not hours) apart on the same, possibly busy, machine;
the report prints medians over the rounds. Columns:

    GFLOP/sample   matmul/conv FLOPs counted by torch's FlopCounterMode (2 per multiply-add;
                   backward included for train_step; elementwise work not counted)
    ms/sample      median wall time of one call divided by the batch
    cpu ms         user + system CPU time per sample (all threads), from getrusage
    GFLOP/s, %mm   achieved rate, and that rate over the same round's matmul rate
    %mm cpu        the same ratio from CPU time instead of wall time: on a machine shared with
                   other jobs, wall time includes waiting for a core and CPU time does not
                   (compare runs with --threads 1 there)
    faults, sys ms minor page faults and kernel (system) CPU time per sample: what a per-call
                   page-fault storm costs

With --precision bf16/fp16 a line per preset gives the generator's PSNR against fp32 on the
same crops: random weights, or --generator's trained ones (the figure that decides whether
the faster precision is usable).

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
import math
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from resyncer_core.models.discriminator import Discriminator
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.models.generator import ReSyncGenerator
from resyncer_core.models.precision import PRECISIONS, autocast_for
from resyncer_core.models.presets import _PRESETS, preset_config
from resyncer_core.models.vgg19 import VGG19Features

FPS = 25
WINDOW_FRAMES = 100
MATMUL_SIDE = 2048
WORKLOADS = ("wav2vec2", "syncformer", "generator", "discriminator", "train_step")


@dataclass
class Workload:
    name: str
    run: object           # callable, one timed call
    samples: int          # frames the call produces (batch, or a window's frames)
    inference: bool


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def matmul_rates() -> tuple[float, float]:
    """One 2048² float32 matmul after a warm-up: GFLOP per wall second and per CPU second."""
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    torch.mm(a, b)
    cpu, start = _cpu_seconds(), time.perf_counter()
    torch.mm(a, b)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    gflop = 2 * MATMUL_SIDE ** 3 / 1e9
    return gflop / wall, gflop / max(cpu, 1e-6)


def _train_step(generator, discriminator, vgg, overlay, reference, real, precision: str):
    from resyncer_core.train.image_losses import (discriminator_logistic_loss, generator_nonsaturating_loss,
                                                  reconstruction_loss)

    def step():
        with autocast_for(precision, "cpu"):
            fake = generator(overlay, reference)
            discriminator.requires_grad_(False)
            with torch.no_grad():
                real_features = vgg(real)
            loss = reconstruction_loss(fake, real, vgg(fake), real_features)
            loss = loss + generator_nonsaturating_loss(discriminator(fake))
        loss.backward()
        discriminator.requires_grad_(True)
        with autocast_for(precision, "cpu"):
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
            with torch.inference_mode(), autocast_for(precision, "cpu"):
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


@dataclass
class Call:
    wall: float     # seconds
    cpu: float      # user + system seconds of this process (all threads)
    system: float   # system seconds
    faults: int     # minor page faults


def _timed_call(workload: Workload) -> Call:
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    workload.run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    system = after.ru_stime - before.ru_stime
    return Call(wall, after.ru_utime - before.ru_utime + system, system, after.ru_minflt - before.ru_minflt)


def precision_psnr(generator: ReSyncGenerator, precision: str, frames: int = 4) -> float:
    """PSNR (dB, images in -1..1 clamped, peak-to-peak 2) of the generator's output at
    `precision` against fp32, on fixed random crops."""
    size = generator.config.size
    crops = torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    lower_half = torch.zeros(frames, 1, size, size)
    lower_half[..., size // 2:, :] = 1  # for generators that need a mask; the others ignore it
    with torch.inference_mode():
        exact = generator(crops, crops, mask=lower_half).clamp(-1, 1)
        with autocast_for(precision, "cpu"):
            fast = generator(crops, crops, mask=lower_half).float().clamp(-1, 1)
    mse = (fast - exact).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def report(presets: list[str], names: list[str], batch: int, precision: str, rounds: int,
           channels_last: bool, generator_path: Path | None = None) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}, {precision}, "
          f"{'channels_last' if channels_last else 'contiguous'}, medians of {rounds} interleaved rounds")
    print(f"{'preset':7} {'workload':14} {'params M':>8} {'GFLOP/smp':>9} {'ms/smp':>8} {'cpu ms':>8} "
          f"{'GFLOP/s':>7} {'%mm':>5} {'%mm cpu':>7} {'faults/smp':>10} {'sys ms':>7} {'mm GF/s':>7}")
    with tempfile.TemporaryDirectory() as workdir:
        for preset in presets:
            for workload, modules in _workloads(preset, names, batch, precision, channels_last, Path(workdir)):
                params = sum(p.numel() for p in modules[0].parameters()) / 1e6
                if workload.inference:
                    for module in modules:
                        module.requires_grad_(False)
                gflop = _count_flops(workload) / 1e9
                workload.run()  # warm-up after the counting pass
                calls, wall_ratios, cpu_ratios, peaks = [], [], [], []
                for _ in range(rounds):
                    wall_peak, cpu_peak = matmul_rates()
                    call = _timed_call(workload)
                    calls.append(call)
                    peaks.append(wall_peak)
                    wall_ratios.append(gflop * workload.samples / call.wall / wall_peak)
                    cpu_ratios.append(gflop * workload.samples / max(call.cpu, 1e-6) / cpu_peak)

                def per_sample(field: str) -> float:
                    return statistics.median(getattr(call, field) for call in calls) / workload.samples

                wall = per_sample("wall")
                print(f"{preset:7} {workload.name:14} {params:8.2f} {gflop:9.3f} {1000 * wall:8.1f} "
                      f"{1000 * per_sample('cpu'):8.1f} {gflop / wall:7.1f} {100 * statistics.median(wall_ratios):5.1f} "
                      f"{100 * statistics.median(cpu_ratios):7.1f} {per_sample('faults'):10.0f} "
                      f"{1000 * per_sample('system'):7.1f} {statistics.median(peaks):7.1f}", flush=True)
            if precision != "fp32":
                if generator_path is None:
                    generator, weights = ReSyncGenerator(preset_config(preset, "generator")), "random weights"
                else:
                    generator, weights = load_checkpoint(generator_path, kind="generator")[0], str(generator_path)
                print(f"{preset:7} generator {precision} vs fp32: PSNR {precision_psnr(generator.eval(), precision):.1f} dB "
                      f"({weights})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=list(_PRESETS))
    parser.add_argument("--workloads", nargs="+", default=["generator", "discriminator", "train_step"],
                        choices=WORKLOADS)
    parser.add_argument("--batch", type=int, default=1, help="samples per generator/discriminator/training call")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="autocast dtype (fp32: none)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--generator", type=Path, default=None,
                        help="trained generator checkpoint for the PSNR of --precision against fp32 (default: random)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC inputs and weights")
    parser.add_argument("--allocator", choices=["tuned", "system"], default="tuned",
                        help="tuned: resyncer's glibc settings (as the CLI and nodes use); system: glibc defaults")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "tuned":
        from resyncer_core.allocator import tune_memory_allocator
        print(f"allocator: {tune_memory_allocator()}")
    report(args.presets, args.workloads, args.batch, args.precision, args.rounds, args.channels_last, args.generator)


if __name__ == "__main__":
    main()
