"""`resyncer` console command.

Every subcommand exits 0 on success and 2 on bad input with exactly one line on stderr;
subcommands register themselves through small `add_*` functions so this file stays a router.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ResyncerInputError
from .termination import TerminatedBySignal, stop_on_termination_signals


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block on a bad argument; users and scripts get one
    line instead, and --help still shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_models_commands(subcommands) -> None:
    models = subcommands.add_parser("models", help="create or inspect model checkpoints")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=_OneLineParser)
    init = models_sub.add_parser(
        "init", help="write random-initialised checkpoints of every model from a preset",
        description="Write random-initialised checkpoints of every model (the start of training, "
                    "and the models tests and demos run with).")
    init.add_argument("--preset", choices=_preset_names(), default="tiny",
                      help="tiny: seconds on a CPU, for tests; small: CPU demos; paper: the paper's sizes; "
                           "paper-whisper: paper sizes on the shipped Whisper encoder")
    init.add_argument("-o", "--output", required=True, type=_folder_argument, help="folder to write the checkpoints into")
    init.add_argument("--seed", type=int, default=0, help="random seed of the initialisation")
    init.add_argument("--force", action="store_true", help="overwrite checkpoints already in the folder")
    init.set_defaults(handler=_run_models_init)


def _folder_argument(text: str) -> Path:
    # Path("") is the working directory: an empty -o (an unset shell variable) must not mean "here".
    if not text.strip():
        raise argparse.ArgumentTypeError("the folder name is empty; give a folder such as models")
    return Path(text)


def _preset_names() -> tuple[str, ...]:
    from .models.presets import PRESET_NAMES
    return PRESET_NAMES


def _run_models_init(args) -> int:
    from .cli_options import quiet_model_loading
    from .models.presets import init_models

    quiet_model_loading()  # transformers' "Writing model shards" bar would be a second stderr line
    written = init_models(args.preset, args.output, seed=args.seed, overwrite=args.force)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="resyncer", description="ReSyncer lip-sync, style transfer and face swap.")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    # Imported here, not at the top: `import resyncer_core.cli` stays cheap for tools that only
    # need main(), and each module keeps its own heavy imports inside its handlers.
    from .graph.command import add_run_workflow_parser
    from .pipeline.commands import add_batch_parser, add_drive_parser, add_lipsync_parser, add_swap_parser
    from .train.commands import add_eval_parser, add_personalize_parser, add_preprocess_parser, add_train_parser

    _add_models_commands(subcommands)
    for add_parser in (add_lipsync_parser, add_drive_parser, add_swap_parser, add_batch_parser, add_personalize_parser,
                       add_run_workflow_parser, add_preprocess_parser, add_train_parser, add_eval_parser):
        add_parser(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .allocator import tune_memory_allocator

    tune_memory_allocator()  # before the first large tensor: reuse freed memory instead of faulting it in again
    try:
        with stop_on_termination_signals():
            return args.handler(args)
    except ResyncerInputError as error:
        print(f"resyncer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("resyncer: interrupted", file=sys.stderr)
        return 130
    except TerminatedBySignal as stop:
        print(f"resyncer: {stop}", file=sys.stderr)
        return stop.exit_status


if __name__ == "__main__":
    sys.exit(main())
