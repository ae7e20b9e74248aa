"""`resyncer models init`: every model of a preset is written and loads in a fresh process."""

import json
import subprocess
import sys

import pytest

from resyncer_core.models.presets import MODEL_FILES, PRESET_NAMES, preset_audio_encoder, preset_config

_LOAD_EVERYTHING = r"""
import json, sys
from pathlib import Path
import torch
from safetensors import safe_open
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.audio import Wav2Vec2AudioEncoder
folder = Path(sys.argv[1])
report = {}
for kind, name in json.loads(sys.argv[2]).items():
    model, _ = load_checkpoint(folder / name, kind=kind)
    with safe_open(str(folder / name), "pt") as handle:
        initialisation = handle.metadata()["resyncer.initialisation"]
    report[kind] = {"params": sum(p.numel() for p in model.parameters()), "init": initialisation}
encoder = Wav2Vec2AudioEncoder.from_pretrained(folder / "wav2vec2")
features = encoder.encode(torch.zeros(16000), fps=25)
report["wav2vec2"] = {"frames": features.shape[0], "dim": features.shape[1]}
print(json.dumps(report))
"""


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "resyncer_core.cli", *args], capture_output=True, text=True, timeout=300)


def test_init_tiny_then_load_every_file_in_a_fresh_process(tmp_path):
    result = _run_cli("models", "init", "--preset", "tiny", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == set(MODEL_FILES.values()) | {"wav2vec2"}

    loaded = subprocess.run([sys.executable, "-c", _LOAD_EVERYTHING, str(tmp_path), json.dumps(MODEL_FILES)],
                            capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert set(report) == set(MODEL_FILES) | {"wav2vec2"}
    assert all(report[kind]["init"] == "random" for kind in MODEL_FILES)
    assert report["wav2vec2"] == {"frames": 25, "dim": preset_config("tiny", "syncformer").audio_dim}


def test_init_refuses_to_overwrite_and_bad_preset_is_one_line(tmp_path):
    assert _run_cli("models", "init", "--preset", "tiny", "-o", str(tmp_path)).returncode == 0
    again = _run_cli("models", "init", "--preset", "tiny", "-o", str(tmp_path))
    assert again.returncode == 2 and "--force" in again.stderr and again.stderr.count("\n") == 1
    bad = _run_cli("models", "init", "--preset", "huge", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("preset", [name for name in PRESET_NAMES if preset_audio_encoder(name) == "wav2vec2"])
def test_presets_agree_on_the_audio_width(preset):
    """The SyncFormer's audio projection must match its preset's Wav2Vec2 hidden size."""
    from resyncer_core.audio.wav2vec2_random import WAV2VEC2_PRESETS
    from resyncer_core.models.presets import _PRESETS
    from transformers import Wav2Vec2Config

    hidden = Wav2Vec2Config(**WAV2VEC2_PRESETS[_PRESETS[preset]["wav2vec2"]["preset"]]).hidden_size
    assert preset_config(preset, "syncformer").audio_dim == hidden


def test_paper_preset_keeps_paper_defaults():
    syncformer = preset_config("paper", "syncformer")
    generator = preset_config("paper", "generator")
    assert (syncformer.d_model, syncformer.style_frames, syncformer.infer_window, syncformer.infer_overlap) == (128, 90, 100, 20)
    assert (generator.size, generator.n_latent, generator.in_channels) == (256, 14, 6)
