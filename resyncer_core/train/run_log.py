"""What a training run reports: JSONL metrics (RUN/log.jsonl), TensorBoard scalars when the
`tensorboard` package is installed, and a progress line with loss and it/s on a terminal.
Only the main rank writes; the other ranks get a logger that does nothing."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

LOG_FILE = "log.jsonl"
TENSORBOARD_FOLDER = "tensorboard"


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


class RunLog:
    """Append-only metrics log of one run. `log(step, kind, values)` writes one JSON line
    {"step", "kind", "time", **values}; kind "train" lines also feed the progress line."""

    def __init__(self, run_dir: str | os.PathLike | None, total_steps: int, stage: str, enabled: bool = True,
                 progress: bool | None = None):
        self.enabled = enabled and run_dir is not None
        self.total_steps = total_steps
        self.stage = stage
        self._file = None
        self._tensorboard = None
        if self.enabled:
            run_dir = Path(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(run_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._tensorboard = _tensorboard_writer(run_dir / TENSORBOARD_FOLDER)
        self._progress = enabled and (sys.stderr.isatty() if progress is None else progress)
        self._start_time = time.perf_counter()
        self._start_step: int | None = None

    def log(self, step: int, kind: str, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "kind": kind, "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        if self._tensorboard is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tensorboard.add_scalar(f"{kind}/{name}", value, step)
        if kind == "train":
            self._show_progress(step, values)

    def iterations_per_second(self, step: int) -> float:
        """Steps per second since the first logged step of this process."""
        if self._start_step is None:
            return 0.0
        elapsed = time.perf_counter() - self._start_time
        return (step - self._start_step) / elapsed if elapsed > 0 else 0.0

    def start(self, step: int) -> None:
        """Marks where this process's timing starts (the first step after a resume)."""
        self._start_step, self._start_time = step, time.perf_counter()

    def _show_progress(self, step: int, values: dict[str, Any]) -> None:
        if not self._progress:
            return
        loss = values.get("loss")
        loss_text = f" loss {loss:.4f}" if isinstance(loss, float) else ""
        print(f"\r{self.stage} {step}/{self.total_steps}{loss_text} {self.iterations_per_second(step):.2f} it/s   ",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress:
            print(file=sys.stderr)
        if self._file is not None:
            self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
