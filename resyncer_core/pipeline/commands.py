"""The `resyncer lipsync | drive | swap | batch` subcommands: argument definitions and
handlers. cli.py routes to the add_* functions here; heavy imports happen in the handlers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_options import (
    add_model_arguments,
    add_mouth_arguments,
    add_syncformer_argument,
    mouth_controls_from,
    quiet_model_loading,
    terminal_callbacks,
)
from ..models.precision import PRECISIONS
from ..stages.functions import DEFAULT_FEATHER_PX, GENERATOR_BATCH_SIZE
from ..stages.warping import RENDERERS
from .chunking import LONG_AUDIO_MODES, SHORT_AUDIO_MODES


def _add_render_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=GENERATOR_BATCH_SIZE, help="crops per generator call")
    parser.add_argument("--feather", type=int, default=DEFAULT_FEATHER_PX,
                        help="blend-mask erosion and blur in crop pixels (0: hard edge)")
    parser.add_argument("--crf", type=int, default=18, help="x264 quality, 0 (lossless) … 51 (default 18)")
    parser.add_argument("--x264-preset", default="medium", help="x264 speed preset (default medium)")
    parser.add_argument("--face", nargs="+", default=["largest"], metavar="RULE",
                        help="with several faces in view, the one to edit: largest (default), center (nearest the "
                             "middle) or index N (the N-th from the left, 0 first); followed from frame to frame")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="generator arithmetic: fp32, or bf16/fp16 autocast (faster, slightly different pixels)")
    parser.add_argument("--renderer", choices=RENDERERS, default="auto",
                        help="how the new mouth is drawn: the trained generator, or the training-free mesh warp "
                             "(any face, no weights); auto uses the generator unless it is untrained (random-initialised) or "
                             "was trained on other faces only (the shipped one knows the demo face), and says so")


def _add_length_arguments(parser: argparse.ArgumentParser, driving: str) -> None:
    parser.add_argument("--long-audio", choices=LONG_AUDIO_MODES, default="pingpong",
                        help=f"{driving} longer than the video: play the video forward and backward (pingpong) "
                             f"or cut the {driving} (trim)")
    parser.add_argument("--short-audio", choices=SHORT_AUDIO_MODES, default="trim",
                        help=f"{driving} shorter than the video: cut the video (trim) or play it all with "
                             "silence after the audio (pad)")


def add_lipsync_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "lipsync", help="lip-sync a video to an audio file",
        description="Lip-sync a video to driving audio (Style-SyncFormer meshes, mesh overlay, style-based "
                    "generator). The output has as many frames as the audio spans, with the audio muxed in.")
    parser.add_argument("--video", required=True, type=Path, help="target video")
    parser.add_argument("--audio", required=True, type=Path, help="driving audio (any file with sound)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .mp4")
    parser.add_argument("--style-from", type=Path, default=None,
                        help="take the speaking style from this video instead of the target (style transfer)")
    _add_length_arguments(parser, "audio")
    _add_render_arguments(parser)
    add_syncformer_argument(parser)
    add_mouth_arguments(parser)
    parser.set_defaults(handler=_run_lipsync)


def add_drive_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "drive", help="lip-sync a video to another video's mouth motion",
        description="Video-driven lip-sync: the driver's mesh displacements on the target's template; "
                    "the driver's audio is muxed in when it has any.")
    parser.add_argument("--video", required=True, type=Path, help="target video")
    parser.add_argument("--driver", required=True, type=Path, help="driver video (a talking face)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .mp4")
    _add_length_arguments(parser, "driver")
    _add_render_arguments(parser)
    parser.set_defaults(handler=_run_drive)


def add_swap_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "swap", help="swap the face of a video, lip-synced to audio when given",
        description="Face swap: the identity's face shape and appearance on the target video; with --audio "
                    "the mouth follows the audio, without it the target's own mouth motion (and soundtrack).")
    parser.add_argument("--video", required=True, type=Path, help="target video")
    parser.add_argument("--identity", required=True, type=Path, help="image or video of the face to put in")
    parser.add_argument("--audio", type=Path, default=None, help="driving audio (optional)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .mp4")
    _add_length_arguments(parser, "audio")
    _add_render_arguments(parser)
    add_syncformer_argument(parser)
    add_mouth_arguments(parser)
    parser.set_defaults(handler=_run_swap)


def add_batch_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "batch", help="run the lipsync, drive and swap jobs of a CSV or JSONL manifest",
        description="Run a manifest's jobs (columns video, output, audio | driver | identity, optional style and "
                    "mode) with one model load per process. Under torchrun (RANK/WORLD_SIZE), srun "
                    "(SLURM_PROCID/SLURM_STEP_NUM_TASKS) or a Slurm array (SLURM_ARRAY_TASK_ID/COUNT) each process "
                    "does its share; finished outputs are skipped, so a rerun does the rest. A failing job is "
                    "recorded in the summary and the batch goes on (exit 0); a bad manifest exits 2.")
    parser.add_argument("manifest", type=Path, help="manifest .csv (header row) or .jsonl; relative paths in it are "
                                                    "relative to its folder")
    parser.add_argument("--summary-dir", type=Path, default=None,
                        help="folder of the per-shard summary files shard-i-of-N.jsonl "
                             "(default: MANIFEST.summary beside the manifest)")
    _add_length_arguments(parser, "audio or driver")
    _add_render_arguments(parser)
    add_syncformer_argument(parser)
    add_mouth_arguments(parser)
    parser.set_defaults(handler=_run_batch)


def _check_inputs(args, videos=(), audios=()):
    """Every input file, the output path and the options that need no model, checked before
    any model loads (a bad run fails in well under a second); returns the tracker to use."""
    from ..audio import load_audio
    from ..face import FaceTracker
    from ..stages.model_files import resolve_device
    from ..video import probe_video
    from ..video.writer import check_encoder_settings
    from .engine import check_output_path

    check_output_path(args.output, *videos, *audios)
    for video in videos:
        if video is not None:
            probe_video(video)
    for audio in audios:
        if audio is not None:
            load_audio(audio)  # also refuses NaN and infinite samples
    check_encoder_settings(args.crf, args.x264_preset)
    return FaceTracker(resolve_device(args.device), face=" ".join(args.face))


def _render_options(args):
    from .engine import RenderOptions

    return RenderOptions(batch_size=args.batch_size, feather=args.feather, crf=args.crf,
                         x264_preset=args.x264_preset, precision=args.precision)


def _render_setup(args, with_audio: bool, tracker, swap: bool = False):
    from ..stages.face_identity import sampled_face_crops
    from ..stages.model_files import load_pipeline_models

    quiet_model_loading()
    options = _render_options(args)
    # drive has no --syncformer: its meshes come from the driver video, not from stage 1.
    models = load_pipeline_models(args.models, args.device, with_audio=with_audio, generator_path=args.generator,
                                  syncformer_path=getattr(args, "syncformer", None), renderer=args.renderer,
                                  log=lambda line: print(f"resyncer: {line}"),  # stdout: stderr is for errors
                                  target_crops=lambda: sampled_face_crops(args.video, tracker), swap=swap)
    return models, options


def _finish(result, tracker) -> int:
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    print(result.summary())
    if tracker.most_faces_seen > 1:
        print(f"up to {tracker.most_faces_seen} faces in view: edited {tracker.face.describe()} "
              "(choose another with --face)")
    if result.frames_written and result.frames_without_face == result.frames_written:
        print(f"resyncer: warning: no face was found in any frame shown, so {result.output} shows the video "
              "unchanged", file=sys.stderr)
    return 0


def _run_lipsync(args) -> int:
    from .lipsync import lipsync_video

    tracker = _check_inputs(args, videos=(args.video, args.style_from), audios=(args.audio,))
    models, options = _render_setup(args, with_audio=True, tracker=tracker)
    return _finish(lipsync_video(args.video, args.audio, args.output, models, style_from=args.style_from,
                                 long_audio=args.long_audio, short_audio=args.short_audio, options=options,
                                 callbacks=terminal_callbacks(), tracker=tracker,
                                 controls=mouth_controls_from(args)), tracker)


def _run_drive(args) -> int:
    from .drive import drive_video

    tracker = _check_inputs(args, videos=(args.video, args.driver))
    models, options = _render_setup(args, with_audio=False, tracker=tracker)
    return _finish(drive_video(args.video, args.driver, args.output, models, long_audio=args.long_audio,
                               short_audio=args.short_audio, options=options, callbacks=terminal_callbacks(),
                               tracker=tracker), tracker)


def _run_swap(args) -> int:
    from .swap import swap_video

    tracker = _check_inputs(args, videos=(args.video, args.identity), audios=(args.audio,))
    models, options = _render_setup(args, with_audio=args.audio is not None, tracker=tracker, swap=True)
    return _finish(swap_video(args.video, args.identity, args.output, models, audio=args.audio,
                              long_audio=args.long_audio, short_audio=args.short_audio, options=options,
                              callbacks=terminal_callbacks(), tracker=tracker,
                              controls=mouth_controls_from(args)), tracker)


def _run_batch(args) -> int:
    from ..face import FaceTracker
    from ..launcher_env import process_device, shard_from_environment
    from ..stages.model_files import resolve_device
    from ..video.writer import check_encoder_settings
    from .batch import BatchModels, JobSettings, read_manifest, run_batch

    jobs = read_manifest(args.manifest)
    shard = shard_from_environment()
    check_encoder_settings(args.crf, args.x264_preset)
    settings = JobSettings(options=_render_options(args), long_audio=args.long_audio, short_audio=args.short_audio,
                           controls=mouth_controls_from(args))
    device = resolve_device(process_device(args.device))
    tracker = FaceTracker(device, face=" ".join(args.face))

    def log(line: str) -> None:
        if sys.stderr.isatty():
            print("\r", end="", file=sys.stderr)  # start over the progress line
        print(f"resyncer: {line}", flush=True)  # flushed: under a launcher stdout is a pipe, and jobs take minutes

    def load_models(to_run):
        quiet_model_loading()
        return BatchModels(to_run, tracker, args.renderer, args.models, device, args.generator, args.syncformer, log)

    summary_dir = args.summary_dir or args.manifest.with_name(f"{args.manifest.name}.summary")
    run_batch(jobs, shard, summary_dir, settings, tracker, load_models, terminal_callbacks, log)
    return 0
