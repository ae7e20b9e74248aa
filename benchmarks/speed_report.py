"""Size and speed of the core networks per preset: parameters, GFLOPs per frame, ms per frame.

    python benchmarks/speed_report.py [--presets paper small] [--device cpu] [--repeats 3]

In the spirit of LivePortrait's speed.py. FLOPs are counted by torch's FlopCounterMode
(matmul/conv FLOPs, 2 per multiply-add); elementwise work is not counted. Times are the best
of `--repeats` runs after one warm-up, under torch.inference_mode, one frame at a time
(batch 1) unless the stage is naturally windowed:

    wav2vec2     encoding 4 s of audio at 25 fps, divided by its 100 frames
    syncformer   one 100-frame autoregressive window (paper inference unit), divided by 100
    generator    one 256² frame
    discriminator one 256² frame (training cost only)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from timing import best_ms_per_frame
from torch.utils.flop_counter import FlopCounterMode

from resyncer_core.audio import Wav2Vec2AudioEncoder, make_random_wav2vec2
from resyncer_core.models.discriminator import Discriminator
from resyncer_core.models.generator import ReSyncGenerator
from resyncer_core.models.presets import _PRESETS, preset_config
from resyncer_core.models.syncformer import StyleSyncFormer

FPS = 25
WINDOW_FRAMES = 100


def _best_ms(run, frames: int, repeats: int, device: torch.device) -> float:
    with torch.inference_mode():
        return best_ms_per_frame(run, frames, repeats, device)


def _flops(run) -> int:
    # Plain grad mode with frozen parameters (see report()): FlopCounterMode cannot trace
    # Wav2Vec2's weight-norm parametrization under inference_mode, and under no_grad its
    # module tracker trips over parameters that modules return as they are.
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def _stages(preset: str, device: torch.device, workdir: Path):
    """Yields (name, module, run, frames_per_run) for every network of the preset."""
    wav_folder = make_random_wav2vec2(workdir / f"wav2vec2-{preset}", _PRESETS[preset]["wav2vec2"]["preset"])
    encoder = Wav2Vec2AudioEncoder.from_pretrained(wav_folder, device=str(device))
    waveform = torch.randn(1, 16000 * WINDOW_FRAMES // FPS, device=device)
    yield "wav2vec2", encoder, lambda: encoder(waveform, WINDOW_FRAMES, FPS), WINDOW_FRAMES

    config = preset_config(preset, "syncformer")
    syncformer = StyleSyncFormer(config).eval().to(device)
    audio = torch.randn(1, WINDOW_FRAMES, config.audio_dim, device=device)
    style = torch.randn(1, config.style_frames, config.vertex_count, 3, device=device)
    yield "syncformer", syncformer, lambda: syncformer.generate(audio, style), WINDOW_FRAMES

    config = preset_config(preset, "generator")
    generator = ReSyncGenerator(config).eval().to(device)
    overlay = torch.randn(1, 3, config.size, config.size, device=device)
    yield "generator", generator, lambda: generator(overlay, overlay), 1

    config = preset_config(preset, "discriminator")
    discriminator = Discriminator(config).eval().to(device)
    image = torch.randn(1, 3, config.size, config.size, device=device)
    yield "discriminator", discriminator, lambda: discriminator(image), 1


def report(presets: list[str], device: torch.device, repeats: int) -> None:
    print(f"device {device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'preset':8} {'module':14} {'params (M)':>11} {'GFLOPs/frame':>13} {'ms/frame':>10}")
    with tempfile.TemporaryDirectory() as workdir:
        for preset in presets:
            for name, module, run, frames in _stages(preset, device, Path(workdir)):
                module.requires_grad_(False)
                params = sum(p.numel() for p in module.parameters()) / 1e6
                gflops = _flops(run) / frames / 1e9
                ms = _best_ms(run, frames, repeats, device)
                print(f"{preset:8} {name:14} {params:11.2f} {gflops:13.3f} {ms:10.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "small"], choices=list(_PRESETS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report(args.presets, torch.device(args.device), args.repeats)


if __name__ == "__main__":
    main()
