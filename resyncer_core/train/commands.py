"""The `resyncer personalize` subcommand (and, as they come, the training commands):
argument definitions and handlers. cli.py routes to the add_* functions here."""

from __future__ import annotations

from pathlib import Path

from ..cli_options import add_model_arguments, terminal_callbacks


def add_personalize_parser(subcommands) -> None:
    from .personalize import PersonalizeConfig

    defaults = PersonalizeConfig(steps=1)
    parser = subcommands.add_parser(
        "personalize", help="fine-tune the generator on one person's video",
        description="Full-parameter fine-tuning of the generator on a target clip (L1 + adversarial, + VGG "
                    "perceptual when models/vgg19.safetensors holds pretrained weights). Use the result "
                    "with `resyncer lipsync --generator`.")
    parser.add_argument("--video", required=True, type=Path, help="clip of the target person")
    parser.add_argument("-o", "--output", required=True, type=Path, help="generator checkpoint to write (.safetensors)")
    parser.add_argument("--steps", required=True, type=int, help="optimisation steps")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam learning rate (default {defaults.lr:g})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="samples per step")
    parser.add_argument("--max-frames", type=int, default=defaults.max_frames,
                        help="use at most this many leading frames of the clip")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    add_model_arguments(parser)
    parser.set_defaults(handler=_run_personalize)


def _run_personalize(args) -> int:
    from .personalize import PersonalizeConfig, personalize_video

    config = PersonalizeConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, max_frames=args.max_frames,
                               seed=args.seed)
    path = personalize_video(args.video, args.output, config, models_dir=args.models, device=args.device,
                             generator_path=args.generator, log=print, callbacks=terminal_callbacks())
    print(f"wrote {path}")
    return 0
