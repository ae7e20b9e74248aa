"""Visible sync of lip-synced videos, as a viewer sees it (DESIGN §10).

    python benchmarks/visible_sync.py OUTPUT.mp4 --audio SPEECH.wav [--input INPUT] [--json F]

Re-tracks OUTPUT with the project's face tracker and reports the inner-lip aperture in
inter-ocular distances (IOD) per phone class — open vowels, P/B/M, silence — their differences
(≥ 0.05 IOD reads as visible speech), the p10-p90 spread, and the correlation (and best lag) with
the viseme rig's openness on the same phone alignment. The alignment is the stored one of the
LibriVox clip the audio is named after (benchmarks/data/librivox_alignments.json: demo/speech.wav
is clip 0920), or --alignment JSON ([[phone, start_s, end_s], ...]).
With --input (the video or still that was lip-synced), also the lower-face sharpness: variance
of the Laplacian in the nose-to-chin box, output over input, per frame (median); a plain x264
crf-18 re-encode keeps about 0.97.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import FaceTracker
from resyncer_core.face.lips import aperture_iod
from resyncer_core.metrics.visible_sync import frame_phones, rest_openness, sharpness_ratio, visible_sync
from resyncer_core.stages.frame_source import FrameSource
from resyncer_core.stages.tracking import track_video
from resyncer_core.video import probe_video

ALIGNMENTS = Path(__file__).resolve().parent / "data" / "librivox_alignments.json"
# demo/speech.wav is this LibriVox clip, unchanged (demo/README.md).
DEMO_SPEECH_CLIP = "sense_and_sensibility_01_austen_64kb-0920"


def phones_for(audio: Path, alignment: Path | None) -> list[tuple[str, float, float]]:
    if alignment is not None:
        return [tuple(p) for p in json.loads(alignment.read_text())]
    stored = json.loads(ALIGNMENTS.read_text())
    name = DEMO_SPEECH_CLIP if audio.name == "speech.wav" else audio.stem
    if name not in stored:
        raise ResyncerInputError(f"no stored phone alignment for {audio.name}; pass --alignment JSON "
                                 f"(clips with one: {', '.join(sorted(stored))})")
    return [tuple(p) for p in stored[name]]


def _frames(path: Path, indices: np.ndarray) -> np.ndarray:
    with FrameSource(path) as source:
        return source.read_each(indices)


def measure(output: Path, audio: Path, source: Path | None = None, alignment: Path | None = None,
            tracker: FaceTracker | None = None) -> dict:
    tracker = tracker or FaceTracker()
    info = probe_video(output)
    track = track_video(tracker, output, info=info)
    apertures = np.where(track.valid, aperture_iod(track.landmarks), np.nan)
    phones = phones_for(audio, alignment)
    labels = frame_phones(phones, len(apertures), info.fps)
    result = visible_sync(apertures, labels, rest_openness(phones, len(apertures), info.fps))
    report = {"output": str(output), "frames": len(apertures), "line": result.line(), **result.as_dict()}
    if source is not None:
        source_info = probe_video(source)
        picks = np.flatnonzero(track.valid)[:: max(1, int(track.valid.sum()) // 12)]
        outputs = _frames(output, picks)
        inputs = _frames(source, np.minimum(picks, source_info.frame_count - 1))
        if inputs.shape[1:] != outputs.shape[1:]:  # an odd-sized input comes out a pixel larger
            inputs = np.pad(inputs, ((0, 0), (0, outputs.shape[1] - inputs.shape[1]),
                                     (0, outputs.shape[2] - inputs.shape[2]), (0, 0)), mode="edge")
        ratios = [sharpness_ratio(o, i, track.landmarks[k]) for o, i, k in zip(outputs, inputs, picks)]
        report["sharpness_ratio"] = float(np.nanmedian(ratios))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("outputs", type=Path, nargs="+", help="lip-synced videos")
    parser.add_argument("--audio", type=Path, required=True, help="the driving speech they were made with")
    parser.add_argument("--input", type=Path, default=None, help="the video or still they were made from (sharpness)")
    parser.add_argument("--alignment", type=Path, default=None, help="phone timings JSON [[phone, start, end], ...]")
    parser.add_argument("--json", type=Path, default=None, help="also write the reports here")
    args = parser.parse_args(argv)
    tracker = FaceTracker()
    reports = []
    try:
        for output in args.outputs:
            report = measure(output, args.audio, args.input, args.alignment, tracker)
            reports.append(report)
            sharp = f"; sharpness {report['sharpness_ratio']:.2f}" if "sharpness_ratio" in report else ""
            print(f"{output.name}: {report['line']}{sharp}")
    except ResyncerInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
