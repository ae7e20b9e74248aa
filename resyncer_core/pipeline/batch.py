"""`resyncer batch`: the lipsync, drive and swap jobs of a manifest, with one model load per
process, shared out over the processes a launcher started (launcher_env: torchrun, Slurm).

Manifest: a CSV file with a header row, or a JSONL file (one object per line). Columns:
video, output, and per mode — lipsync: audio (style optional); drive: driver; swap: identity
(audio optional). `mode` may be left out when the other columns say it (identity → swap,
driver → drive, else lipsync). Relative paths are relative to the manifest's folder, so one
manifest serves every machine that mounts it.

Checked before any model loads:
- refused with one line (exit 2), since every shard would stumble on it: a manifest that cannot
  be read, an unknown column or mode, a job missing a column its mode needs or naming one it
  does not use, an output that is not .mp4/.mov/.m4v, two jobs with one output;
- recorded as that job's failure, and the batch goes on: anything about the files themselves
  (an input that does not exist, an output folder that cannot be written). Inputs that exist
  but cannot be decoded fail in the pipeline's own first checks, before any long work.

Job k (0-based, manifest order) is done by shard k mod N, so each job belongs to exactly one
shard. A job whose output exists is skipped: outputs appear only when complete (atomic
rename), so an existing file is a finished job and a rerun does only the rest. Each shard
appends one line per job to its own SUMMARY/shard-i-of-N.jsonl (a single write per line), so
shards on different machines never share a file.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ResyncerInputError
from ..face import FaceTracker
from ..jsonl_records import append_jsonl
from ..launcher_env import Shard
from ..stages.face_identity import sampled_face_crops
from ..stages.model_files import PipelineModels, generator_file, load_pipeline_models, resolve_models_dir
from ..stages.progress import PipelineCallbacks
from ..stages.warping import MeshWarp, choose_renderer
from .audio_driving import MouthControls
from .drive import drive_video
from .engine import OUTPUT_SUFFIXES, PipelineResult, RenderOptions, check_output_path
from .lipsync import lipsync_video
from .swap import swap_video

MODES = ("lipsync", "drive", "swap")
INPUT_COLUMNS = ("video", "audio", "driver", "identity", "style")
MANIFEST_COLUMNS = ("mode", *INPUT_COLUMNS, "output")
# Beside video and output: the columns each mode needs, and those it may also take.
_NEEDED = {"lipsync": ("audio",), "drive": ("driver",), "swap": ("identity",)}
_OPTIONAL = {"lipsync": ("style",), "drive": (), "swap": ("audio",)}


@dataclass(frozen=True)
class BatchJob:
    number: int               # 1-based position in the manifest: the job's name in messages and the summary
    mode: str
    output: Path
    inputs: dict[str, Path]   # column → file: video and the mode's others

    @property
    def drives_from_audio(self) -> bool:
        return "audio" in self.inputs

    def describe(self) -> str:
        return f"job {self.number} ({self.mode} {self.inputs['video'].name} → {self.output})"


# ------------------------------------------------------------------------------------ manifest

def _manifest_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each job row of a CSV or JSONL manifest."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ResyncerInputError(f"manifest {path} must be a .csv (with a header row) or a .jsonl file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheet programs start CSVs with a BOM
    except OSError as error:
        raise ResyncerInputError(f"cannot read manifest {path} ({error.strerror}); give an existing file") from None
    except UnicodeDecodeError:
        raise ResyncerInputError(f"manifest {path} is not UTF-8 text; save it as UTF-8") from None
    if suffix == ".jsonl":
        for line_number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ResyncerInputError(f"{path} line {line_number} is not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ResyncerInputError(f"{path} line {line_number} is not a JSON object such as "
                                         '{"video": "a.mp4", "audio": "a.wav", "output": "out/a.mp4"}')
            yield line_number, row
        return
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        if None in row:
            raise ResyncerInputError(f"{path} line {reader.line_num} has more cells than the header has columns")
        yield reader.line_num, row


def _job_from_row(path: Path, line_number: int, number: int, row: dict) -> BatchJob:
    where = f"{path} line {line_number}"
    unknown = sorted(str(column) for column in row if column not in MANIFEST_COLUMNS)
    if unknown:
        raise ResyncerInputError(f"{where}: unknown column(s) {', '.join(unknown)}; the columns are "
                                 f"{', '.join(MANIFEST_COLUMNS)}")
    values = {}
    for column, value in row.items():
        if value is not None and not isinstance(value, str):
            raise ResyncerInputError(f"{where}: {column} must be text (a path or a mode), got {value!r}")
        if value and value.strip():
            values[column] = value.strip()
    implied = "swap" if "identity" in values else "drive" if "driver" in values else "lipsync"
    mode = values.pop("mode", None) or implied
    if mode not in MODES:
        raise ResyncerInputError(f"{where}: mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    for column in ("video", "output", *_NEEDED[mode]):
        if column not in values:
            raise ResyncerInputError(f"{where}: a {mode} job needs {column}")
    unused = [column for column in values if column not in ("video", "output", *_NEEDED[mode], *_OPTIONAL[mode])]
    if unused:
        raise ResyncerInputError(f"{where}: a {mode} job does not use {', '.join(unused)}; leave it empty or set mode")
    folder = path.parent
    output = folder / values.pop("output")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ResyncerInputError(f"{where}: output {output} has an unsupported extension; name it .mp4 (or .mov, .m4v)")
    return BatchJob(number=number, mode=mode, output=output,
                    inputs={column: folder / values[column] for column in INPUT_COLUMNS if column in values})


def read_manifest(path: str | os.PathLike) -> list[BatchJob]:
    """The manifest's jobs in order, or a one-line ResyncerInputError for the first problem
    that concerns the manifest itself (module docstring)."""
    path = Path(path)
    jobs: list[BatchJob] = []
    first_line_of: dict[str, int] = {}
    for line_number, row in _manifest_rows(path):
        job = _job_from_row(path, line_number, len(jobs) + 1, row)
        key = os.path.normcase(os.path.abspath(job.output))
        if key in first_line_of:
            raise ResyncerInputError(f"{path} lines {first_line_of[key]} and {line_number} both write {job.output}; "
                                     "give every job its own output")
        first_line_of[key] = line_number
        jobs.append(job)
    if not jobs:
        raise ResyncerInputError(f"manifest {path} has no jobs")
    return jobs


def file_problem(job: BatchJob) -> str | None:
    """Why the job's files rule it out before any model loads (a missing input, an output that
    cannot be written), or None."""
    for column, source in job.inputs.items():
        if not source.is_file():
            return f"{column} {source} does not exist" if not source.exists() else f"{column} {source} is not a file"
    try:
        check_output_path(job.output, *job.inputs.values())
    except ResyncerInputError as error:
        return str(error)
    return None


# --------------------------------------------------------------------------------------- models

class BatchModels:
    """The models of every job of this process, loaded once: the renderer and, when any job
    drives from audio, the Style-SyncFormer and its encoder. With renderer auto the generator
    loads once and each job still gets the choice a single command would make for its face
    (stages.warping.choose_renderer)."""

    def __init__(self, jobs: list[BatchJob], tracker: FaceTracker, renderer: str, models_dir: Path | None = None,
                 device: str = "cpu", generator_path: Path | None = None, syncformer_path: Path | None = None,
                 log: Callable[[str], None] = print):
        self._tracker = tracker
        self._log = log
        self.loaded = load_pipeline_models(models_dir, device, with_audio=any(job.drives_from_audio for job in jobs),
                                           generator_path=generator_path, syncformer_path=syncformer_path,
                                           renderer="warp" if renderer == "warp" else "generator", log=log)
        # With auto, the checkpoint whose metadata and recorded faces decide each job's renderer.
        self._auto_generator_file = None
        if renderer == "auto":
            self._auto_generator_file = generator_file(None if generator_path else resolve_models_dir(models_dir),
                                                       generator_path)

    def for_job(self, job: BatchJob) -> PipelineModels:
        if self._auto_generator_file is None:
            return self.loaded
        choice = choose_renderer("auto", self._auto_generator_file, lambda line: self._log(f"job {job.number}: {line}"),
                                 lambda: sampled_face_crops(job.inputs["video"], self._tracker),
                                 swap=job.mode == "swap")
        return self.loaded if choice == "generator" else replace(self.loaded, generator=MeshWarp(self.loaded.device))


# ---------------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class JobSettings:
    """What every job of the batch shares: the render options, the length modes and the
    stage-1 controls of the audio-driven jobs."""

    options: RenderOptions
    long_audio: str = "pingpong"
    short_audio: str = "trim"
    controls: MouthControls = MouthControls()


def run_job(job: BatchJob, models: PipelineModels, settings: JobSettings, tracker: FaceTracker,
            callbacks: PipelineCallbacks) -> PipelineResult:
    """One job through the pipeline function its mode's command calls."""
    inputs = job.inputs
    shared = dict(long_audio=settings.long_audio, short_audio=settings.short_audio, options=settings.options,
                  callbacks=callbacks, tracker=tracker)
    if job.mode == "lipsync":
        return lipsync_video(inputs["video"], inputs["audio"], job.output, models, style_from=inputs.get("style"),
                             controls=settings.controls, **shared)
    if job.mode == "drive":
        return drive_video(inputs["video"], inputs["driver"], job.output, models, **shared)
    return swap_video(inputs["video"], inputs["identity"], job.output, models, audio=inputs.get("audio"),
                      controls=settings.controls, **shared)


def summary_path(summary_dir: Path, shard: Shard) -> Path:
    return summary_dir / f"shard-{shard.index}-of-{shard.count}.jsonl"


def _error_line(error: Exception) -> str:
    if isinstance(error, ResyncerInputError):
        return " ".join(str(error).split())
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def run_batch(jobs: list[BatchJob], shard: Shard, summary_dir: Path, settings: JobSettings, tracker: FaceTracker,
              load_models: Callable[[list[BatchJob]], BatchModels],
              callbacks: Callable[[], PipelineCallbacks] = PipelineCallbacks,
              log: Callable[[str], None] = print) -> Counter:
    """Runs this shard's jobs and returns how many were done, failed and skipped. Jobs whose
    output exists are skipped; a job whose files rule it out, or whose run raises, is recorded
    as failed and the rest go on. Models load (`load_models(jobs to run)`) only if any job
    is left. Ctrl-C and termination signals stop the batch (the running job leaves no output)."""
    try:
        summary_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ResyncerInputError(f"cannot make the summary folder {summary_dir} ({error.strerror}); "
                                 "pass --summary-dir") from None
    summary = summary_path(summary_dir, shard)
    mine = [job for position, job in enumerate(jobs) if shard.takes(position)]
    counts: Counter = Counter()

    def record(job: BatchJob, status: str, seconds: float = 0.0, frames: int | None = None,
               error: str | None = None) -> None:
        counts[status] += 1
        append_jsonl(summary, {"job": job.number, "mode": job.mode, "output": str(job.output), "status": status,
                               "seconds": round(seconds, 3), "frames": frames, "error": error,
                               "shard": f"{shard.index}/{shard.count}"})
        ending = {"done": f"done, {frames} frames in {seconds:.1f} s", "skipped": "skipped, its output exists",
                  "failed": f"failed: {error}"}[status]
        log(f"{shard}: {job.describe()}: {ending}")

    log(f"{shard} ({shard.source}): {len(mine)} of {len(jobs)} jobs; summary {summary}")
    to_run = []
    for job in mine:
        if job.output.exists():
            record(job, "skipped")
        elif (problem := file_problem(job)) is not None:
            record(job, "failed", error=problem)
        else:
            to_run.append(job)
    models = load_models(to_run) if to_run else None
    for count, job in enumerate(to_run, 1):
        log(f"{shard}: {job.describe()}: running ({count} of {len(to_run)} to run)")
        start = time.perf_counter()
        try:
            result = run_job(job, models.for_job(job), settings, tracker, callbacks())
        except Exception as error:  # any one job's failure is its own; KeyboardInterrupt and signals stop the batch
            record(job, "failed", time.perf_counter() - start, error=_error_line(error))
            continue
        record(job, "done", time.perf_counter() - start, frames=result.frames_written)
    log(f"{shard}: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped (already written) "
        f"of {len(mine)} jobs; summary {summary}")
    return counts
