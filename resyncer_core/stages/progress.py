"""Progress reporting, cancellation and per-stage timing shared by every pipeline.

Front-ends (CLI, ComfyUI nodes, tests) pass plain callables:
    progress(stage: str, done: int, total: int)   called as work advances
    should_cancel() -> bool                        polled between chunks and generator batches
    on_frames(chunk: OutputChunk)                  sees each chunk of output frames before encoding
Cancelling raises PipelineCancelled; the output file is discarded on the way out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# The stages the engine times, in pipeline order (the benchmark reports them in this order);
# a run renders with the generator or the mesh warp, so one of those two stays at 0.
STAGES = ("decode", "track", "audio", "syncformer", "render", "generator", "warp", "blend", "encode")
RENDERER_STAGES = ("generator", "warp")   # one of the two runs


def monitored_batches(batches, before_each: Callable[[], None], after_each: Callable[[int], None]) -> Iterator:
    """Yields `batches` unchanged, calling before_each() ahead of each one (a cancellation
    check) and after_each(done) once it has been consumed, with the running count of items."""
    done = 0
    for batch in batches:
        before_each()
        yield batch
        done += len(batch)
        after_each(done)


class PipelineCancelled(Exception):
    """should_cancel() returned True; no output file was left behind."""


@dataclass
class PipelineCallbacks:
    progress: Callable[[str, int, int], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    on_frames: Callable[[Any], None] | None = None
    # One-line notices of a documented fallback the run took (e.g. a still's default style).
    notice: Callable[[str], None] | None = None

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def notify(self, line: str) -> None:
        if self.notice is not None:
            self.notice(line)

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise PipelineCancelled("cancelled")


@dataclass
class StageClock:
    """Accumulates wall-clock seconds per stage name."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def measure(self, stage: str, excluding: str | None = None) -> Iterator[None]:
        """Charges the block's time to `stage`, less what it charged to `excluding` meanwhile
        (e.g. tracking that pulls frames from a timed decoder)."""
        start = time.perf_counter()
        excluded_before = self.seconds.get(excluding, 0.0) if excluding else 0.0
        try:
            yield
        finally:
            excluded = (self.seconds.get(excluding, 0.0) - excluded_before) if excluding else 0.0
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start - excluded

    def timed_iter(self, stage: str, iterable) -> Iterator:
        """Yields from `iterable`, charging the time spent producing each item to `stage`."""
        iterator = iter(iterable)
        while True:
            with self.measure(stage):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item
