"""Command-line options and terminal feedback shared by the pipeline and training commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, default=None,
                        help="models folder (default: $RESYNCER_MODELS, else ./models, else the shipped weights)")
    parser.add_argument("--generator", type=Path, default=None,
                        help="generator checkpoint to use instead of the folder's (e.g. from `resyncer personalize`)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 … (default cpu)")


def add_syncformer_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--syncformer", type=Path, default=None,
                        help="Style-SyncFormer checkpoint to use instead of the folder's (e.g. RUN/syncformer.safetensors "
                             "from `resyncer train stage1`; its audio encoder comes with it)")


def add_mouth_arguments(parser: argparse.ArgumentParser) -> None:
    """Stage-1 controls of the audio-driven commands (pipeline.audio_driving.MouthControls)."""
    from .mouth.style import DEFAULT_STYLE_PRESET, STYLE_PRESETS

    parser.add_argument("--style", choices=tuple(STYLE_PRESETS), default=None,
                        help="speak in a shipped style preset instead of the video's own style (a still, or a "
                             f"video without speech, gets '{DEFAULT_STYLE_PRESET}' and a line saying so)")
    parser.add_argument("--mouth-strength", type=float, default=1.0,
                        help="scale the predicted mouth motion (0: still … 3; default 1, the model's own)")


def mouth_controls_from(args):
    from .pipeline.audio_driving import MouthControls

    return MouthControls(style_preset=args.style, strength=args.mouth_strength)


def _progress_printer():
    """Progress on one rewritten stderr line when stderr is a terminal; silent otherwise, so
    logs and scripts see only the summary (and an error stays one line)."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        print(f"\r{stage}: {done}/{total}    ", end="", file=sys.stderr, flush=True)

    return show


def terminal_callbacks():
    """PipelineCallbacks that draw progress on a terminal and nothing otherwise."""
    from .stages.progress import PipelineCallbacks

    # Notices go to stdout with the summary: stderr is for progress and errors.
    return PipelineCallbacks(progress=_progress_printer(), notice=lambda line: print(f"resyncer: {line}"))


def quiet_model_loading() -> None:
    """transformers draws a "Loading weights" bar on stderr when Wav2Vec2 loads; the CLI shows
    its own progress and keeps stderr to one line on error."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
