"""Stage 1 on real human speech: Style-SyncFormers against the viseme rig driven by forced alignment.

    python benchmarks/eval_real_speech.py --syncformer RUN/syncformer.safetensors [MORE.safetensors ...]

Clips: the public-domain LibriVox recordings in Debian's `pocketsphinx-testdata` (read speech,
never trained on). Reference ΔM: their transcripts force-aligned by pocketsphinx (the phone
timings are stored in benchmarks/data/librivox_alignments.json; `--align` recomputes them and
needs pip `pocketsphinx`) through the same viseme rig the synthetic corpus uses, with the
rig's reference speaking style. Style reference of every model (--style): `sentence` (default),
the rig's ΔM of a fixed sentence (mouth.style.style_sentence_phones) in the reference style, so
no TTS is needed here; `preset-NAME`, a shipped style preset (what a still photo gets); or
`other-clips`, the first 90 reference frames of the reader's other clips (the
evaluated clip left out), as inference takes the style from the same person's own footage.

Rows: each --syncformer file (its audio encoder is the one its metadata records, else mel), a
randomly initialised SyncFormer of the first file's configuration, an energy → jaw baseline
(the audio's loudness opens the rig's jaw) and the static mouth (ΔM = 0).
Columns: lip vertex error (max over the 40 lip vertices, canonical units ≈ cm), Pearson
correlation of predicted vs reference lip aperture (mean over clips), the lag in frames that
maximises it (> 0: the prediction is late), and the mean predicted aperture on bilabial
(P B M), open-vowel (AA AE AH AO AW AY) and silence frames; then the viewer's measure, the
same differences in inter-ocular distances (open vowel − P/B/M, open vowel − silence).
Style check (each SyncFormer): the same audio with style references from a subdued
(amplitude 0.6) and an exaggerated (1.4) synthetic speaker; the output's mean aperture
should follow that order.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resyncer_core.audio import frame_count_for, load_audio, load_audio_encoder
from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import lips
from resyncer_core.metrics.mesh import lip_vertex_error
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.models.presets import preset_config
from resyncer_core.models.syncformer import StyleSyncFormer
from resyncer_core.stages.functions import compute_audio_features, predict_meshes
from resyncer_core.stages.model_files import trained_audio_encoder_spec
from resyncer_core.face.lips import aperture_iod
from resyncer_core.mouth.style import STYLE_PRESETS, preset_style_reference, style_sentence_phones
from resyncer_core.mouth.viseme_rig import RIG_FPS, SpeakingStyle, VisemeRig

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
ALIGNMENTS = Path(__file__).resolve().parent / "data" / "librivox_alignments.json"
MAX_LAG = 8
BILABIALS = {"P", "B", "M"}
OPEN_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY"}
SILENCES = {"SIL"}
STYLE_AMPLITUDES = (0.6, 1.4)
STYLE_SOURCES = ("sentence", "other-clips", *(f"preset-{name}" for name in STYLE_PRESETS))
STYLE_FRAMES = 90  # (paper) T_S
STYLE_ORDER_MARGIN = 0.02  # canonical units (0.2 mm): smaller differences do not count as ordered
@dataclass
class EvalClip:
    name: str
    waveform: np.ndarray
    phones: list[tuple[str, float, float]]
    reference: torch.Tensor  # ΔM [T,468,3]

    @property
    def frames(self) -> int:
        return len(self.reference)


def read_transcripts(folder: Path) -> dict[str, str]:
    """{file id: transcript} from the package's `transcription` file (`<s> words </s> (id)` lines)."""
    transcripts = {}
    for line in (folder / "transcription").read_text().splitlines():
        text, _, name = line.rpartition("(")
        transcripts[name.strip(") ")] = text.replace("<s>", "").replace("</s>", "").strip()
    return transcripts


def align_clips(folder: Path) -> dict[str, list]:
    from resyncer_core.synth.speech_corpus.forced_alignment import align_phones
    return {name: [[p, round(start, 3), round(end, 3)] for p, start, end in align_phones(load_audio(folder / f"{name}.wav"), text)]
            for name, text in sorted(read_transcripts(folder).items())}


def load_clips(folder: Path, alignments: dict[str, list], rig: VisemeRig) -> list[EvalClip]:
    clips = []
    for name, phones in sorted(alignments.items()):
        path = folder / f"{name}.wav"
        if not path.is_file():
            raise ResyncerInputError(f"{path} is missing; apt-get install pocketsphinx-testdata or pass --librivox DIR")
        waveform = load_audio(path)
        phones = [tuple(p) for p in phones]
        reference = rig(phones, frame_count=frame_count_for(len(waveform), RIG_FPS))
        clips.append(EvalClip(name, waveform, phones, reference))
    return clips


def frame_labels(clip: EvalClip) -> np.ndarray:
    """The reference phone (stress digits removed) at each frame centre; "SIL" outside phones."""
    labels = np.full(clip.frames, "SIL", dtype=object)
    centres = (np.arange(clip.frames) + 0.5) / RIG_FPS
    for phone, start, end in clip.phones:
        labels[(centres >= start) & (centres < end)] = phone.rstrip("012").upper()
    return labels


def lagged_correlations(predicted: np.ndarray, reference: np.ndarray) -> dict[int, float]:
    """{lag: Pearson r of predicted[t + lag] vs reference[t]} for |lag| <= MAX_LAG."""
    result = {}
    n = len(reference)
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        a = predicted[max(lag, 0): n + min(lag, 0)]
        b = reference[max(-lag, 0): n - max(lag, 0)]
        result[lag] = float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 1e-8 and np.std(b) > 1e-8 else float("nan")
    return result


def score(name: str, predictions: list[torch.Tensor], clips: list[EvalClip], rest: torch.Tensor) -> dict:
    """Metrics of predicted ΔM per clip against the clips' references."""
    lve = float(np.mean([lip_vertex_error(p, c.reference) for p, c in zip(predictions, clips)]))
    by_lag = [lagged_correlations(lips.lip_aperture(rest + p).numpy(), lips.lip_aperture(rest + c.reference).numpy())
              for p, c in zip(predictions, clips)]
    mean_by_lag = {lag: float(np.mean([c[lag] for c in by_lag])) for lag in by_lag[0]}
    finite = {lag: r for lag, r in mean_by_lag.items() if np.isfinite(r)}
    best_lag = max(finite, key=finite.get) if finite else None
    apertures = np.concatenate([lips.lip_aperture(rest + p).numpy() for p in predictions])
    labels = np.concatenate([frame_labels(c) for c in clips])
    classes = {"bilabial": BILABIALS, "open_vowel": OPEN_VOWELS, "silence": SILENCES}
    means = {k: float(apertures[np.isin(labels, list(v))].mean()) for k, v in classes.items()}
    # The viewer's measure (DESIGN §10): the same apertures in inter-ocular distances.
    in_iod = np.concatenate([aperture_iod((rest + p).numpy()) for p in predictions])
    iod = {k: float(in_iod[np.isin(labels, list(v))].mean()) for k, v in classes.items()}
    return {"model": name, "lve": lve, "aperture_r": mean_by_lag[0], "best_lag": best_lag,
            "best_lag_r": finite.get(best_lag, float("nan")) if best_lag is not None else float("nan"),
            "r_within_one_frame": max(mean_by_lag[lag] for lag in (-1, 0, 1)),
            **{f"aperture_{k}": v for k, v in means.items()}, **{f"iod_{k}": v for k, v in iod.items()},
            "iod_open_minus_bilabial": iod["open_vowel"] - iod["bilabial"],
            "iod_open_minus_silence": iod["open_vowel"] - iod["silence"]}


def energy_jaw_predictions(clips: list[EvalClip], rig: VisemeRig) -> list[torch.Tensor]:
    """Baseline: per frame, the audio's log RMS scaled to 0..1 between its 10th and 95th
    percentiles opens the rig's jaw (no lips, no phones)."""
    predictions = []
    for clip in clips:
        hop = 16000 // RIG_FPS
        padded = np.pad(clip.waveform, (0, clip.frames * hop - len(clip.waveform)))[: clip.frames * hop]
        loudness = np.log(np.sqrt(np.mean(padded.reshape(clip.frames, hop) ** 2, axis=1)) + 1e-5)
        low, high = np.percentile(loudness, [10, 95])
        parameters = np.zeros((clip.frames, 6), dtype=np.float32)
        parameters[:, 0] = np.clip((loudness - low) / max(high - low, 1e-6), 0, 1) * 0.7
        predictions.append(rig.displacements(parameters))
    return predictions


def model_predictions(model: StyleSyncFormer, encoder, clips: list[EvalClip], styles: list[torch.Tensor],
                      rest: torch.Tensor) -> list[torch.Tensor]:
    """ΔM per clip, each with its own style reference."""
    predictions = []
    for clip, style in zip(clips, styles, strict=True):
        features = compute_audio_features(encoder, clip.waveform, RIG_FPS, clip.frames)
        predictions.append(predict_meshes(model, features, style, rest) - rest)
    return predictions


def other_clip_styles(clips: list[EvalClip]) -> list[torch.Tensor]:
    """Per clip, the first STYLE_FRAMES reference frames of the other clips, in order."""
    return [torch.cat([other.reference for other in clips if other is not clip])[:STYLE_FRAMES] for clip in clips]


def load_model(path: Path) -> tuple[StyleSyncFormer, str]:
    model = load_checkpoint(path, kind="syncformer")[0].eval()
    return model, trained_audio_encoder_spec(path) or "mel"


def random_model(like: StyleSyncFormer, seed: int = 0) -> StyleSyncFormer:
    """An untrained SyncFormer of the same configuration. Its own init zeroes the output
    projection (the static mouth); here that layer is random too, so the row shows what
    untrained weights do to the metrics."""
    torch.manual_seed(seed)
    model = StyleSyncFormer(like.config).eval()
    torch.nn.init.xavier_uniform_(model.output_projection.weight)
    return model


@torch.no_grad()
def evaluate(syncformers: list[Path], folder: Path, alignments: dict[str, list], style: str = "sentence") -> dict:
    if style not in STYLE_SOURCES:
        raise ResyncerInputError(f"style {style!r} is unknown; choose one of {', '.join(STYLE_SOURCES)}")
    rig = VisemeRig()
    rest = rig.rest
    clips = load_clips(folder, alignments, rig)
    if style == "sentence":
        styles = [rig(style_sentence_phones(), style=SpeakingStyle())] * len(clips)
    elif style.startswith("preset-"):
        styles = [preset_style_reference(style.removeprefix("preset-"), STYLE_FRAMES)] * len(clips)
    else:
        styles = other_clip_styles(clips)
    models = [(f"{path.parent.name}/{path.name}", *load_model(path)) for path in syncformers]
    if not models:  # nothing trained yet: the pipeline runs on a tiny random model of the mel front-end
        mel = load_audio_encoder("mel")
        models = [("random tiny (mel)", random_model(StyleSyncFormer(preset_config("tiny", "syncformer",
                                                                                  audio_dim=mel.feature_dim))), "mel")]
    else:
        models.append((f"random weights ({models[0][0]})", random_model(models[0][1]), models[0][2]))
    rows, style_checks = [], []
    encoders: dict[str, object] = {}
    for name, model, spec in models:
        encoder = encoders.setdefault(spec, load_audio_encoder(spec))
        rows.append({**score(name, model_predictions(model, encoder, clips, styles, rest), clips, rest),
                     "audio_encoder": spec})
        amplitudes = []
        for amplitude in STYLE_AMPLITUDES:
            speaker = rig(style_sentence_phones(), style=SpeakingStyle(amplitude=amplitude))
            outputs = model_predictions(model, encoder, clips, [speaker] * len(clips), rest)
            amplitudes.append(float(np.mean([lips.lip_aperture(rest + p).mean() for p in outputs])))
        style_checks.append({"model": name, "mean_aperture": dict(zip(map(str, STYLE_AMPLITUDES), amplitudes)),
                             "ordered": bool(amplitudes[1] - amplitudes[0] > STYLE_ORDER_MARGIN)})
    rows.append(score("energy → jaw", energy_jaw_predictions(clips, rig), clips, rest))
    rows.append(score("static mouth", [torch.zeros_like(c.reference) for c in clips], clips, rest))
    reference = score("reference (rig)", [c.reference for c in clips], clips, rest)
    return {"clips": [c.name for c in clips], "seconds": sum(c.frames for c in clips) / RIG_FPS, "style": style,
            "rows": rows, "reference": reference, "style_check": style_checks}


def markdown(result: dict) -> str:
    header = ("| model | LVE ↓ | aperture r ↑ | best lag (r) | aperture bilabial / open vowel / silence | "
              "IOD open − P/B/M, open − silence |\n|---|---|---|---|---|---|")
    lines = [header]
    for row in [*result["rows"], result["reference"]]:
        lag = "–" if row["best_lag"] is None else f"{row['best_lag']:+d} ({row['best_lag_r']:.2f})"
        lines.append(f"| {row['model']} | {row['lve']:.3f} | {row['aperture_r']:.3f} | {lag} | "
                     f"{row['aperture_bilabial']:.2f} / {row['aperture_open_vowel']:.2f} / {row['aperture_silence']:.2f} | "
                     f"{row['iod_open_minus_bilabial']:.3f}, {row['iod_open_minus_silence']:.3f} |")
    lines.append("")
    for check in result["style_check"]:
        values = ", ".join(f"amplitude {k}: {v:.3f}" for k, v in check["mean_aperture"].items())
        lines.append(f"style check {check['model']}: mean aperture {values} → {'ordered' if check['ordered'] else 'NOT ordered'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--syncformer", type=Path, nargs="*", default=[], help="Style-SyncFormer files to evaluate")
    parser.add_argument("--librivox", type=Path, default=LIBRIVOX, help=f"folder of the clips (default {LIBRIVOX})")
    parser.add_argument("--alignments", type=Path, default=ALIGNMENTS, help="phone timings JSON (default: shipped)")
    parser.add_argument("--align", action="store_true", help="re-align with pocketsphinx and write --alignments")
    parser.add_argument("--style", choices=STYLE_SOURCES, default="sentence",
                        help="style reference: the rig's fixed sentence, or the reader's other clips")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        if args.align:
            args.alignments.parent.mkdir(parents=True, exist_ok=True)
            clips = align_clips(args.librivox)
            args.alignments.write_text("{\n" + ",\n".join(  # one phone per line: diffable
                f"{json.dumps(name)}: [\n  " + ",\n  ".join(json.dumps(p) for p in phones) + "\n]"
                for name, phones in clips.items()) + "\n}\n")
            print(f"wrote {args.alignments}")
        alignments = json.loads(args.alignments.read_text())
        result = evaluate(args.syncformer, args.librivox, alignments, args.style)
    except ResyncerInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(result['clips'])} LibriVox clips, {result['seconds']:.1f} s of real speech, style: {args.style}\n")
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
