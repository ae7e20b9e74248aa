"""The `resyncer personalize`, `resyncer preprocess` and `resyncer train <stage>` subcommands:
argument definitions and handlers. cli.py routes to the add_* functions here."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_options import add_model_arguments, terminal_callbacks


def add_personalize_parser(subcommands) -> None:
    from .personalize import PersonalizeConfig

    defaults = PersonalizeConfig()
    parser = subcommands.add_parser(
        "personalize", help="fine-tune the generator on one person's video",
        description="Fine-tuning of the generator on a target clip: stage-2 training (the same samples, masks, "
                    "reference handling and losses) on the clip, with the shipped generator's loss weights: L1 + "
                    "5·L1 inside the lower-face mask + 0.1·perceptual (VGG19 when models/vgg19.safetensors holds "
                    "trained weights, else the shipped EfficientNet-Lite0 feature loss) + 0.1·adversarial, Adam at a "
                    "tenth of stage 2's learning rate. Full-parameter by default (the paper's choice); --w-plus learns "
                    "StyleSync's W+ offsets ΔW = MLP(f_f) and tunes the synthesis network under λ(‖ΔW‖² + ‖ΔP‖²). "
                    "Eight frames spread over the clip are kept out of the fine-tune and their lower face is scored "
                    "before and after (PSNR, SSIM, mouth landmark distance, colour shift); a result that got worse is "
                    "still written, with a one-line warning. The file records the face it was tuned on, so "
                    "`resyncer lipsync --generator FILE` (renderer auto) uses it for that face and the mesh warp "
                    "for others.")
    parser.add_argument("--video", required=True, type=Path, help="clip of the target person")
    parser.add_argument("-o", "--output", required=True, type=Path, help="generator checkpoint to write (.safetensors)")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help=f"optimisation steps (default {defaults.steps})")
    parser.add_argument("--lr", type=float, default=defaults.lr,
                        help=f"Adam learning rate of generator and discriminator (default {defaults.lr:g})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="samples per step")
    parser.add_argument("--max-frames", type=int, default=defaults.max_frames,
                        help="use at most this many leading frames of the clip")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--w-plus", action="store_true",
                        help="StyleSync's W+ option: learn ΔW = MLP(f_f) and tune the synthesis network (encoder fixed)")
    parser.add_argument("--w-plus-weight", type=float, default=defaults.w_plus_weight,
                        help=f"λ of the W+ penalty ‖ΔW‖² + ‖ΔP‖² (means; default {defaults.w_plus_weight:g})")
    add_model_arguments(parser)
    parser.set_defaults(handler=_run_personalize)


def _run_personalize(args) -> int:
    from ..video.partial_file import check_output_location
    from .personalize import PersonalizeConfig, personalize_video

    check_output_location(args.output)  # before the clip is tracked, not after the training
    config = PersonalizeConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, max_frames=args.max_frames,
                               seed=args.seed, w_plus=args.w_plus, w_plus_weight=args.w_plus_weight)
    path = personalize_video(args.video, args.output, config, models_dir=args.models, device=args.device,
                             generator_path=args.generator, log=print, callbacks=terminal_callbacks())
    print(f"wrote {path}")
    return 0


def add_train_parser(subcommands) -> None:
    """`resyncer train <stage>`: one sub-subcommand per training stage (stage1 here; the other
    stages register theirs through add_train_stage_parser)."""
    parser = subcommands.add_parser(
        "train", help="train a model on a dataset made by `resyncer preprocess`",
        description="Train the ReSyncer models. Every stage runs unchanged under "
                    "`torchrun --nproc_per_node N $(which resyncer) train ...` (DDP: NCCL on GPUs, gloo on CPU).")
    stages = parser.add_subparsers(dest="train_stage", required=True, parser_class=type(parser))
    _add_stage1_parser(stages)
    _add_stage2_parser(stages)
    _add_swap_parser(stages)


def add_loop_arguments(parser, defaults) -> None:
    """Options of the shared training loop (train/loop.py LoopConfig); `defaults` is a LoopConfig."""
    parser.add_argument("--data", required=True, type=Path, help="dataset folder from `resyncer preprocess`")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="run folder: checkpoints, log.jsonl and the trained model files")
    parser.add_argument("--preset", choices=("tiny", "small", "paper"), default="tiny",
                        help="model size: tiny (tests), small (CPU experiments), paper (the paper's sizes)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's newest checkpoint (exactly: weights, optimiser, EMA, "
                             "step, RNG)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="global samples per step over all processes and micro-batches "
                             f"(default {defaults.batch_size})")
    parser.add_argument("--grad-accum", type=int, default=defaults.grad_accum,
                        help="micro-batches per step on each process (gradient accumulation)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (sampling and initialisation)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                        help=f"steps between training-state checkpoints (default {defaults.checkpoint_every})")
    parser.add_argument("--validate-every", type=int, default=defaults.validate_every,
                        help=f"steps between validations, 0: never (default {defaults.validate_every})")
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="steps between log lines")
    parser.add_argument("--no-bf16", action="store_true", help="train in float32 on CUDA (bf16 autocast by default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun each rank takes its local GPU)")


def loop_config_from(args):
    from .loop import LoopConfig

    return LoopConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                      checkpoint_every=args.checkpoint_every, validate_every=args.validate_every,
                      log_every=args.log_every, seed=args.seed, bf16=not args.no_bf16)


def _add_stage1_parser(stages) -> None:
    from .loop import LoopConfig
    from .stage1 import DEFAULT_AUDIO_ENCODER, Stage1Config

    defaults = Stage1Config(data="", loop=LoopConfig())
    parser = stages.add_parser(
        "stage1", help="train the Style-SyncFormer (audio → 3D mesh)",
        description="Stage 1 (paper §3.1): Style-SyncFormer on 100-frame windows with a 90-frame style reference "
                    "from another window of the same clip, teacher forcing, L_3D, Adam 1e-3. Audio features "
                    "of the (frozen) encoder are cached in the dataset. Writes RUN/syncformer.safetensors.")
    add_loop_arguments(parser, defaults.loop)
    parser.add_argument("--audio-encoder", default=DEFAULT_AUDIO_ENCODER,
                        help="audio encoder spec: 'mel' or a Wav2Vec2 folder (recorded in the syncformer file so "
                             f"inference uses the same one; default {DEFAULT_AUDIO_ENCODER})")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam learning rate (default {defaults.lr:g})")
    parser.add_argument("--window", type=int, default=defaults.window, help="teacher-forced frames per sample (100)")
    parser.add_argument("--style-frames", type=int, default=defaults.style_frames, help="style reference length T_S (90)")
    parser.add_argument("--dropout", type=float, default=None, help="dropout (default: the preset's)")
    parser.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                        help="keep an EMA of the weights with this decay and export it (0: off)")
    parser.add_argument("--validation-clips", type=_clip_count, default=None,
                        help="held-out clips for the lip vertex error (default 1 per 50 clips, at least 1)")
    parser.add_argument("--amplitude-range", type=_factor_pair, default=defaults.amplitude_range, metavar="LOW,HIGH",
                        help="scale each sample's target and style ΔM together by a log-uniform factor in this "
                             "range, so the output follows its style reference's amplitude (default 1,1: off)")
    parser.set_defaults(handler=_run_stage1)


def _clip_count(text: str) -> int:
    # A negative count would hold out clips from the end of the list instead of none.
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of clips (0 or more)")
    return count


def _models_folder(args) -> str | None:
    """--models of a training or eval command, refused at once when it is not a folder (the
    loss networks would otherwise fall back to the shipped ones without a word)."""
    from ..stages.model_files import resolve_models_dir

    return None if args.models is None else str(resolve_models_dir(args.models))


def _factor_pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers LOW,HIGH (e.g. 0.8,2.5)") from None
    return low, high


def _run_stage1(args) -> int:
    from .stage1 import Stage1Config, train_stage1

    config = Stage1Config(data=str(args.data), preset=args.preset, audio_encoder=args.audio_encoder, lr=args.lr,
                          window=args.window, style_frames=args.style_frames, dropout=args.dropout,
                          ema_decay=args.ema_decay, validation_clips=args.validation_clips,
                          amplitude_range=args.amplitude_range, loop=loop_config_from(args))
    return _run_distributed(train_stage1, config, args)


def _add_image_arguments(parser, defaults) -> None:
    """Options stage 2 and swap share (their configs share these fields)."""
    parser.add_argument("--models", type=Path, default=None,
                        help="models folder whose trained vgg19.safetensors gives the paper's VGG19 perceptual loss "
                             "(default: the shipped ImageNet EfficientNet-Lite0 feature loss)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam learning rate (paper: {defaults.lr:g})")
    parser.add_argument("--perceptual-weight", type=float, default=defaults.perceptual_weight,
                        help=f"λ2 of the perceptual term (paper: {defaults.perceptual_weight:g})")
    parser.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                        help=f"generator EMA decay; the EMA is exported (default {defaults.ema_decay:g})")
    parser.add_argument("--adversarial-weight", type=float, default=defaults.adversarial_weight,
                        help="weight of the generator's adversarial term")
    parser.add_argument("--lower-face-weight", type=float, default=defaults.lower_face_weight,
                        help="extra L1 inside mask A, per masked pixel (default 0, the paper's losses): makes a short "
                             "run learn the mouth from the mesh")
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every,
                        help="steps between PNG sample grids in RUN/samples (overlay, reference, output, target)")
    parser.add_argument("--max-cached-clips", type=int, default=defaults.max_cached_clips,
                        help="decoded crop videos kept in memory (~200 kB per frame)")
    parser.add_argument("--validation-clips", type=_clip_count, default=None,
                        help="held-out clips for PSNR/SSIM (default 1 per 50 clips, at least 1 when there are 2+)")
    parser.add_argument("--reference-window", type=int, default=defaults.reference_window,
                        help=f"the reference frame is drawn among this many frames nearest the target (paper: "
                             f"{defaults.reference_window}); wider keeps a generator from copying the reference's mouth")


def _image_fields(args) -> dict:
    return dict(data=str(args.data), models=_models_folder(args),
                lr=args.lr, perceptual_weight=args.perceptual_weight, ema_decay=args.ema_decay,
                adversarial_weight=args.adversarial_weight, lower_face_weight=args.lower_face_weight,
                sample_every=args.sample_every, max_cached_clips=args.max_cached_clips,
                validation_clips=args.validation_clips, reference_window=args.reference_window,
                loop=loop_config_from(args))


def _run_distributed(train, config, args) -> int:
    """Runs a stage's train function on this process (one rank under torchrun) and prints its
    final step, loss and validation on rank 0."""
    from .distributed import setup_distributed, shutdown_distributed

    context = setup_distributed(args.device)
    try:
        result = train(config, args.output, context, resume=args.resume, log=print if context.is_main else None)
    finally:
        shutdown_distributed()
    if context.is_main:
        loss = result.last_metrics.get("loss")
        print(f"{args.train_stage}: step {result.step}" + (f", loss {loss:.5g}" if loss is not None else "")
              + "".join(f", {name} {value:.5g}" for name, value in result.validation.items()))
    return 0


def _add_stage2_parser(stages) -> None:
    from .loop import LoopConfig
    from .stage2 import Stage2Config

    defaults = Stage2Config(data="", loop=LoopConfig())
    parser = stages.add_parser(
        "stage2", help="train the generator (mesh overlay + reference → face)",
        description="Stage 2 (paper §3.2, A.1): the style-based generator on [overlay of frame t, reference among the "
                    "30 nearest frames], L1 + 0.1·perceptual + non-saturating adversarial (StyleGAN2 discriminator, "
                    "lazy R1), Adam 1e-3, tracked meshes first and stage-1 predictions from --predicted-meshes-from. "
                    "Writes RUN/generator.safetensors (EMA), RUN/discriminator.safetensors, RUN/samples/*.png.")
    add_loop_arguments(parser, defaults.loop)
    _add_image_arguments(parser, defaults)
    parser.add_argument("--init", type=Path, default=None, help="start from this generator (default: random, --preset)")
    parser.add_argument("--syncformer", type=Path, default=None,
                        help="stage-1 syncformer.safetensors whose predicted meshes are drawn from --predicted-meshes-from")
    parser.add_argument("--predicted-meshes-from", type=int, default=None,
                        help="step from which the overlays show the Style-SyncFormer's meshes instead of tracked ones")
    parser.add_argument("--style-frames", type=int, default=defaults.style_frames,
                        help="style reference length T_S of the predicted meshes (90)")
    parser.add_argument("--hide-reference-lower-face", action="store_true",
                        help="the generator sees the reference only outside mask A (not in the paper; recorded in the "
                             "generator, so inference hides it too): a generator trained on little data then takes the "
                             "mouth from the mesh instead of copying the target frame's own mouth")
    parser.set_defaults(handler=_run_stage2)


def _run_stage2(args) -> int:
    from .stage2 import Stage2Config, train_stage2

    config = Stage2Config(**_image_fields(args), preset=args.preset,
                          init_generator=None if args.init is None else str(args.init),
                          syncformer=None if args.syncformer is None else str(args.syncformer),
                          predicted_meshes_from=args.predicted_meshes_from, style_frames=args.style_frames,
                          hide_reference_lower_face=args.hide_reference_lower_face)
    return _run_distributed(train_stage2, config, args)


def _add_swap_parser(stages) -> None:
    from .loop import LoopConfig
    from .swap import SwapConfig

    defaults = SwapConfig(data="", init_generator="", loop=LoopConfig())
    parser = stages.add_parser(
        "swap", help="train face swap into a stage-2 generator (generator only)",
        description="Face-swap training (paper §3.3): a cross-identity stream (another speaker's frame I' and template, "
                    "mask A', W from E([I^{A'M'}, I']), maps from E([I^{A'M'}, I_ref])) with the identity loss "
                    "1 − cos(E_id(Î'), E_id(I')) and discriminator feature matching against I_t, next to the "
                    "reconstruction stream of stage 2; only the generator is updated. E_id is ArcFace when --models "
                    "holds trained arcface.safetensors, else the shipped dlib face descriptor.")
    add_loop_arguments(parser, defaults.loop)
    _add_image_arguments(parser, defaults)
    parser.add_argument("--init", type=Path, required=True, help="stage-2 generator.safetensors to start from")
    parser.add_argument("--discriminator", type=Path, default=None,
                        help="discriminator for feature matching (default: discriminator.safetensors beside --init)")
    parser.add_argument("--identity-weight", type=float, default=defaults.identity_weight, help="weight of L_id")
    parser.add_argument("--feature-matching-weight", type=float, default=defaults.feature_matching_weight,
                        help="weight of the discriminator feature-matching loss")
    parser.set_defaults(handler=_run_swap)


def _run_swap(args) -> int:
    from .swap import SwapConfig, train_swap

    config = SwapConfig(**_image_fields(args), init_generator=str(args.init),
                        discriminator=None if args.discriminator is None else str(args.discriminator),
                        identity_weight=args.identity_weight, feature_matching_weight=args.feature_matching_weight)
    return _run_distributed(train_swap, config, args)


def add_preprocess_parser(subcommands) -> None:
    from .preprocess import DEFAULT_MIN_FRAMES, DEFAULT_MIN_TRACKED

    parser = subcommands.add_parser(
        "preprocess", help="turn a folder of talking-head videos into a training dataset",
        description="Every video under --videos (one speaker per clip, any fps and size) becomes, at 25 fps: "
                    "aligned 256² crops (near-lossless H.264), per-frame meshes/pose/crop transforms, the neutral "
                    "template, 16 kHz audio and cached audio features, listed in DATA/index.jsonl. Resumable; "
                    "unusable videos are skipped with their reason in DATA/skipped.jsonl.")
    parser.add_argument("--videos", required=True, type=Path, help="folder of input videos (searched recursively)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="dataset folder (DATA) to create or extend")
    parser.add_argument("--shard", default="0/1", help="i/N: process every N-th video from the i-th (default 0/1)")
    parser.add_argument("--audio-encoder", action="append", default=[], metavar="SPEC",
                        help="cache features of this audio encoder ('mel' or a Wav2Vec2 folder); repeatable")
    parser.add_argument("--workers", type=int, default=1, help="videos processed in parallel (processes)")
    parser.add_argument("--min-frames", type=int, default=DEFAULT_MIN_FRAMES,
                        help=f"skip clips shorter than this at 25 fps (default {DEFAULT_MIN_FRAMES}: one training window)")
    parser.add_argument("--min-tracked", type=float, default=DEFAULT_MIN_TRACKED,
                        help=f"skip clips with a face in fewer than this share of frames (default {DEFAULT_MIN_TRACKED})")
    parser.add_argument("--device", default="cpu", help="torch device for tracking and audio features")
    parser.set_defaults(handler=_run_preprocess)


def _run_preprocess(args) -> int:
    import sys

    from .preprocess import PreprocessConfig, parse_shard, preprocess_folder

    config = PreprocessConfig(audio_encoders=tuple(args.audio_encoder), min_frames=args.min_frames,
                              min_tracked=args.min_tracked, shard=parse_shard(args.shard), workers=args.workers,
                              device=args.device)

    def show(done: int, total: int, last: str) -> None:
        if sys.stderr.isatty():
            print(f"\rpreprocess: {done}/{total} {last[:60]:60}", end="", file=sys.stderr, flush=True)

    summary = preprocess_folder(args.videos, args.output, config, progress=show)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(summary.line())
    return 0


def add_eval_parser(subcommands) -> None:
    from .evaluate import DEFAULT_FRAMES

    parser = subcommands.add_parser(
        "eval", help="evaluate trained models on a dataset's held-out clips",
        description="PSNR, SSIM, LMD (mouth landmarks re-tracked by our tracker), identity similarity and mouth-aperture "
                    "sync of a generator; the lip vertex error of a Style-SyncFormer; with both, aperture sync of "
                    "audio-driven frames and (when --models holds a trained syncnet.safetensors) LSE-D / LSE-C. "
                    "Prints a table; --json writes the numbers.")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder from `resyncer preprocess`")
    parser.add_argument("--syncformer", type=Path, default=None, help="stage-1 syncformer.safetensors")
    parser.add_argument("--generator", type=Path, default=None, help="stage-2 or swap generator.safetensors")
    parser.add_argument("--models", type=Path, default=None,
                        help="folder with trained arcface.safetensors / syncnet.safetensors (optional)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames evaluated per clip")
    parser.add_argument("--validation-clips", type=_clip_count, default=None,
                        help="held-out clips (the training split's; default 1 per 50 clips, at least 1)")
    parser.add_argument("--compare-renderers", action="store_true",
                        help="also rebuild each frame's lower face from the same reference with the mesh warp and "
                             "with the static mouth, and score the generator and both on that region")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers to this JSON file")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(handler=_run_eval)


def _run_eval(args) -> int:
    from ..video.partial_file import check_output_location
    from .evaluate import EvalConfig, evaluate, format_table, write_json

    if args.json is not None:
        check_output_location(args.json)  # before the evaluation, not after it
    config = EvalConfig(data=str(args.data), syncformer=None if args.syncformer is None else str(args.syncformer),
                        generator=None if args.generator is None else str(args.generator),
                        models=_models_folder(args), frames=args.frames,
                        validation_clips=args.validation_clips, compare_renderers=args.compare_renderers,
                        device=args.device)
    summary = evaluate(config)
    print(format_table(summary))
    if args.json is not None:
        print(f"wrote {write_json(summary, args.json)}")
    return 0
