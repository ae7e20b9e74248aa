"""`resyncer run-workflow FILE.json`: run an API-format workflow in this process (default) or on
a running ComfyUI server (--server). The same JSON works both ways.

In-process, the node classes come from the ReSyncer pack folder, imported by file path at
call time (--pack, $RESYNCER_PACK_DIR, or the checkout this library lives in); models are
found in --models DIR (else $RESYNCER_MODELS); outputs go to --output-dir.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path

from ..cli_options import quiet_model_loading
from ..errors import ResyncerInputError

# The pack's nodes log under "resyncer.nodes"; their warnings (e.g. the mesh warp standing in
# for an untrained generator) are what `lipsync` prints as notices.
PACK_LOGGER = "resyncer"


def add_run_workflow_parser(subcommands) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "run-workflow", help="run an API-format ComfyUI workflow headless (in-process or on a ComfyUI server)",
        description="Run an API-format workflow JSON (e.g. api_workflows/lipsync_api.json) in this process with the "
                    "ReSyncer nodes, or submit it to a running ComfyUI with --server. Prints the output files.")
    parser.add_argument("workflow", type=Path, help="API-format workflow file (*_api.json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override an input before running; NODE is a node id, title or type "
                             "(e.g. --set 1.video=clip.mp4 --set ReSyncerGenerator.batch_size=4); repeatable")
    parser.add_argument("--server", metavar="URL",
                        help="submit to the ComfyUI server at URL (e.g. http://127.0.0.1:8188) instead of running here")
    parser.add_argument("--models", type=Path, metavar="DIR",
                        help="in-process: folder with the model files (default $RESYNCER_MODELS); "
                             "a server uses its own models/resyncer folder")
    parser.add_argument("--output-dir", type=Path, default=Path("output"), metavar="DIR",
                        help="where output files are written (in-process) or downloaded to (--server); default ./output")
    parser.add_argument("--device", help="in-process: torch device for every model (default: cuda when available, else cpu)")
    parser.add_argument("--pack", type=Path, metavar="DIR",
                        help="in-process: the ReSyncer node pack folder (default: $RESYNCER_PACK_DIR or this checkout)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="--server: give up waiting after this many seconds")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the output files, not the nodes' notices (progress is shown only on a "
                             "terminal anyway)")
    parser.set_defaults(handler=run_workflow_command)
    return parser


class _Reporter:
    """One stderr line per node started and per progress step worth showing, on a terminal
    only: in logs and scripts an error stays the last and only line on stderr."""

    def __init__(self, prompt: dict, quiet: bool):
        self.prompt, self.quiet = prompt, quiet or not sys.stderr.isatty()
        self.last_progress: dict[str, int] = {}

    def __call__(self, event: str, data: dict) -> None:
        if self.quiet:
            return
        node = data.get("node")
        if event == "executing" and node is not None:
            print(f"resyncer: running node {node} ({self._class(node)})", file=sys.stderr)
        elif event == "progress" and node is not None:
            value, total = int(data.get("value", 0)), max(int(data.get("max", 1)), 1)
            percent = 100 * value // total
            if percent >= self.last_progress.get(node, -100) + 25 or value == total:
                self.last_progress[node] = percent
                print(f"resyncer:   {self._class(node)} {value}/{total}", file=sys.stderr)
        elif event == "execution_cached" and data.get("nodes"):
            print(f"resyncer: reusing cached nodes {', '.join(map(str, data['nodes']))}", file=sys.stderr)
        elif event == "queued":
            print(f"resyncer: queued as prompt {data.get('prompt_id')}", file=sys.stderr)

    def _class(self, node) -> str:
        return str(self.prompt.get(str(node), {}).get("class_type", "?"))


def _output_paths(ui: dict, output_dir: Path) -> list[Path]:
    from .remote import output_files

    return [output_dir / item.get("subfolder", "") / item["filename"] for item in output_files(ui)]


def run_workflow_command(args) -> int:
    from .prompt import apply_overrides, load_workflow

    prompt = apply_overrides(load_workflow(args.workflow), args.overrides)
    reporter = _Reporter(prompt, args.quiet)
    if args.server:
        from .remote import ComfyClient

        result = ComfyClient(args.server).run(prompt, args.output_dir, listener=reporter, timeout=args.timeout)
        for path in result.files:
            print(path)
        if not args.quiet:
            print(f"resyncer: done on {args.server} in {result.seconds:.1f} s", file=sys.stderr)
        return 0
    with _node_notices_on_stdout(args.quiet):
        return _run_in_process(args, prompt, reporter)


@contextlib.contextmanager
def _node_notices_on_stdout(quiet: bool):
    """The nodes' warnings as lines on stdout beside the output files, as `lipsync` prints its
    notices, or nowhere with --quiet (only the files): never on stderr, which off a terminal is
    empty on success and one line on error. Unhandled, logging's last resort writes them there."""
    logger = logging.getLogger(PACK_LOGGER)
    handler = logging.NullHandler() if quiet else logging.StreamHandler(sys.stdout)
    handler.setLevel(logging.WARNING)
    propagates = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagates


def _run_in_process(args, prompt: dict, reporter: _Reporter) -> int:
    from ..stages.model_files import resolve_models_dir
    from . import context
    from .executor import GraphExecutor, GraphInterrupted, NodeExecutionError
    from .pack import load_node_registry

    if args.models is not None:
        resolve_models_dir(args.models)  # a missing folder or a file is one line before any node runs
    registry = load_node_registry(args.pack)
    executor = GraphExecutor(registry, listener=reporter)
    output_dir = args.output_dir.resolve()
    with context.scoped(models_dir=args.models, output_dir=output_dir):
        executor.validate(prompt)  # bad inputs fail here, before any model loads
    quiet_model_loading()
    previous_handler = _install_interrupt_handler()
    try:
        # Previews are for a UI; headless they go to a folder of this run's own, removed after it.
        with tempfile.TemporaryDirectory(prefix="resyncer-run-") as previews, \
                context.scoped(models_dir=args.models, output_dir=output_dir, temp_dir=previews, device=args.device):
            result = executor.execute(prompt)
    except GraphInterrupted as interrupted:
        print(f"resyncer: {interrupted}; no output was written by unfinished nodes", file=sys.stderr)
        return 130
    except NodeExecutionError as failure:
        if isinstance(failure.error, ResyncerInputError):
            raise ResyncerInputError(str(failure)) from None
        print(f"resyncer: error: {failure}", file=sys.stderr)
        return 1
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    for path in _output_paths(result.ui, output_dir):
        print(path)
    if not reporter.quiet:
        print(f"resyncer: done in {result.seconds:.1f} s ({len(result.executed)} nodes run, "
              f"{len(result.cached)} cached)", file=sys.stderr)
    return 0


def _install_interrupt_handler():
    """First Ctrl-C asks the graph to stop at the next check (between generator batches); a
    second one stops at once. Only from the main thread."""
    import threading

    from . import context

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if context.interrupt_requested():
            raise KeyboardInterrupt
        context.request_interrupt()
        if sys.stderr.isatty():  # off a terminal the closing "interrupted" line stays the only one
            print("resyncer: stopping at the next checkpoint (Ctrl-C again to stop now)", file=sys.stderr)

    return signal.signal(signal.SIGINT, handler)
