"""benchmarks/eval_real_speech.py: its metrics on known answers, and a full run on the LibriVox clips
(with the shipped alignments and a tiny random SyncFormer) when pocketsphinx-testdata is installed."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "eval_real_speech.py"


@pytest.fixture(scope="module")
def evaluation():
    spec = importlib.util.spec_from_file_location("eval_real_speech", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("eval_real_speech", module)
    spec.loader.exec_module(module)
    return module


def test_lagged_correlation_finds_a_known_delay(evaluation):
    rng = np.random.default_rng(0)
    reference = np.convolve(rng.standard_normal(300), np.ones(5) / 5, mode="same")
    late = np.concatenate([np.zeros(3), reference[:-3]])  # the prediction lags by 3 frames
    correlations = evaluation.lagged_correlations(late, reference)
    assert max(correlations, key=correlations.get) == 3
    assert correlations[3] == pytest.approx(1.0, abs=1e-6)


def test_style_sentence_covers_closures_and_open_vowels(evaluation):
    phones = evaluation.style_sentence_phones()
    names = {p for p, _, _ in phones}
    assert {"M", "P", "B", "AA", "IY", "UW"} - names == {"UW"}  # no UW in the sentence, but OW/AW round
    assert phones[-1][2] * 25 >= 90  # at least T_S = 90 frames


def test_shipped_alignments_cover_every_librivox_clip(evaluation):
    alignments = json.loads(evaluation.ALIGNMENTS.read_text())
    assert len(alignments) == 5
    for phones in alignments.values():
        assert phones[0][0] == "SIL" and all(s <= e for _, s, e in phones)


@pytest.mark.skipif(not (Path("/usr/share/pocketsphinx/test/data/librivox") / "transcription").exists(),
                    reason="Debian pocketsphinx-testdata is not installed")
def test_full_evaluation_runs_with_a_random_model_and_orders_the_baselines(evaluation, tmp_path):
    alignments = json.loads(evaluation.ALIGNMENTS.read_text())
    result = evaluation.evaluate([], evaluation.LIBRIVOX, {k: alignments[k] for k in sorted(alignments)[:2]})
    rows = {row["model"]: row for row in result["rows"]}
    reference = result["reference"]
    assert reference["lve"] == 0.0 and reference["aperture_r"] == pytest.approx(1.0) and reference["best_lag"] == 0
    assert reference["aperture_open_vowel"] > 3 * max(reference["aperture_bilabial"], 0.05)
    energy = rows["energy → jaw"]
    assert energy["aperture_r"] > 0.2 and abs(energy["best_lag"]) <= 2
    assert "random tiny (mel)" in rows and len(result["style_check"]) == 1
    assert "| energy → jaw |" in evaluation.markdown(result)


def test_a_syncformer_file_without_encoder_metadata_is_read_as_mel(evaluation, tmp_path):
    from resyncer_core.models.checkpoint import save_checkpoint
    from resyncer_core.models.presets import preset_config
    from resyncer_core.models.syncformer import StyleSyncFormer
    config = preset_config("tiny", "syncformer", audio_dim=1280)
    path = save_checkpoint(StyleSyncFormer(config), config, "syncformer", tmp_path / "syncformer.safetensors")
    model, spec = evaluation.load_model(path)
    assert spec == "mel" and model.config.audio_dim == 1280
    random = evaluation.random_model(model)
    assert float(random.output_projection.weight.detach().abs().sum()) > 0  # not the zero-initialised output


def test_other_clip_styles_leave_the_evaluated_clip_out(evaluation):
    import torch

    clips = [evaluation.EvalClip(str(i), np.zeros(1), [], torch.full((40 + i, 468, 3), float(i))) for i in range(3)]
    styles = evaluation.other_clip_styles(clips)
    assert [len(s) for s in styles] == [83, 82, 81]  # all the other clips' frames, at most 90
    for index, style in enumerate(styles):
        assert not (style == index).any()
