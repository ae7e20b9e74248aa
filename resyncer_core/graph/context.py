"""Run-time settings and signals shared by the headless runner and whatever runs inside it.

The headless executor (executor.py) and the node pack's ComfyUI adapter never import each
other: the executor is generic and the pack adapter may not be imported as a top-level
module. They meet here instead. The runner fills in folders and listeners before it runs a
graph; the adapter's plain fallbacks (used when ComfyUI is not present) read them:

    models_dir   where model files are found (`resyncer run-workflow --models DIR`)
    output_dir   where output nodes write (`--output-dir`)
    temp_dir     where preview images go
    input_dir    where relative input paths are resolved
    device       the torch device nodes should use ("cpu", "cuda", ... or None for automatic)

Interrupts: `request_interrupt()` sets a flag that node code polls through the adapter
(`check_interrupt()` raises ProcessingInterrupted); the executor clears it when a run starts.

Progress: node code reports (value, total) through `report_progress`; the executor installs a
listener that turns it into "progress" events naming the node being executed.

Nothing here touches a file or a device at import time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

ProgressListener = Callable[[int, int, "str | None"], None]


class ProcessingInterrupted(Exception):
    """Raised inside a node when the user asked the run to stop (the fallback of ComfyUI's
    InterruptProcessingException)."""


@dataclass
class RunContext:
    models_dir: Path | None = None
    output_dir: Path | None = None
    temp_dir: Path | None = None
    input_dir: Path | None = None
    device: str | None = None
    progress_listener: ProgressListener | None = None
    current_node: str | None = None
    interrupt: threading.Event = field(default_factory=threading.Event)


_CONTEXT = RunContext()
_SETTABLE = {f.name for f in fields(RunContext)} - {"interrupt"}
_PATH_FIELDS = {"models_dir", "output_dir", "temp_dir", "input_dir"}


def current() -> RunContext:
    """The settings in force (one per process: a graph runs on one thread at a time)."""
    return _CONTEXT


def _normalise(name: str, value):
    if name in _PATH_FIELDS and value is not None:
        return Path(value).expanduser()
    return value


def configure(**settings) -> None:
    """Sets fields of the current context (see the module docstring for the names)."""
    unknown = sorted(set(settings) - _SETTABLE)
    if unknown:
        raise TypeError(f"unknown run-context settings {unknown}; known: {sorted(_SETTABLE)}")
    for name, value in settings.items():
        setattr(_CONTEXT, name, _normalise(name, value))


@contextlib.contextmanager
def scoped(**settings) -> Iterator[RunContext]:
    """`configure(**settings)` for the duration of a `with` block, then the previous values."""
    previous = {name: getattr(_CONTEXT, name) for name in settings}
    configure(**settings)
    try:
        yield _CONTEXT
    finally:
        for name, value in previous.items():
            setattr(_CONTEXT, name, value)


def request_interrupt() -> None:
    """Ask the running graph to stop at the next interrupt check (thread-safe)."""
    _CONTEXT.interrupt.set()


def clear_interrupt() -> None:
    _CONTEXT.interrupt.clear()


def interrupt_requested() -> bool:
    return _CONTEXT.interrupt.is_set()


def raise_if_interrupted() -> None:
    if _CONTEXT.interrupt.is_set():
        raise ProcessingInterrupted("processing was interrupted")


def report_progress(value: int, total: int, node_id: str | None = None) -> None:
    """Forward a node's progress to the runner's listener, if any."""
    listener = _CONTEXT.progress_listener
    if listener is not None:
        listener(int(value), int(total), node_id if node_id is not None else _CONTEXT.current_node)
