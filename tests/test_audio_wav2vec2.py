"""Wav2Vec2 features: a tiny random model saved, reloaded offline, one vector per video frame."""

import json

import pytest
import torch

from resyncer_core.audio import (
    EncodingWindow,
    MelAudioEncoder,
    Wav2Vec2AudioEncoder,
    frame_count_for,
    load_audio_encoder,
    make_random_wav2vec2,
    make_tiny_wav2vec2,
    resolve_wav2vec2_folder,
)
from resyncer_core.audio.wav2vec2_encoder import sample_linearly
from resyncer_core.errors import CheckpointError, ResyncerInputError

NTSC = 30000 / 1001


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("wav2vec2-tiny"))


@pytest.fixture
def encoder(tiny_folder):
    return Wav2Vec2AudioEncoder.from_pretrained(tiny_folder)


def speechlike(seconds, seed=0):
    """A stationary tone-plus-noise signal at 16 kHz."""
    generator = torch.Generator().manual_seed(seed)
    times = torch.arange(round(seconds * 16000)) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 220 * times) + 0.1 * torch.randn(times.shape, generator=generator)


def test_folder_holds_safetensors_and_loads_in_eval_mode(tiny_folder, encoder):
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in tiny_folder.iterdir()}
    assert not encoder.training
    assert encoder.feature_dim == 32 and encoder.hop_samples == 320 and encoder.receptive_field == 400


@pytest.mark.parametrize("fps", [24, 25, 30, NTSC])
@pytest.mark.parametrize("seconds", [1.37, 2.013, 0.1])
def test_one_vector_per_video_frame(encoder, fps, seconds):
    waveform = speechlike(seconds)
    features = encoder.encode(waveform, fps)
    assert features.shape == (frame_count_for(len(waveform), fps), 32)
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("frame_count", [1, 3, 60])
def test_explicit_frame_count_crops_or_pads_audio(encoder, frame_count):
    assert encoder.encode(speechlike(1.0).numpy(), 25, frame_count=frame_count).shape == (frame_count, 32)


def test_feature_extractor_frozen_rest_trainable_and_gradients_reach_the_encoder(encoder):
    extractor_params = set(encoder.model.feature_extractor.parameters())
    assert all(not p.requires_grad for p in extractor_params)
    assert all(p.requires_grad for p in encoder.parameters() if p not in extractor_params)

    encoder.model.config.layerdrop = 0.0  # LayerDrop would randomly leave a whole layer without gradients
    encoder.train()
    encoder(speechlike(0.8)[None], 20, 25).pow(2).mean().backward()
    assert all(p.grad is None for p in extractor_params)
    for name in ("feature_projection", "encoder"):
        grads = [p.grad for p in getattr(encoder.model, name).parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_deterministic_in_eval_and_across_reload(encoder, tiny_folder):
    waveform = speechlike(1.2)
    first = encoder.encode(waveform, 25)
    assert torch.equal(first, encoder.encode(waveform, 25))
    assert torch.equal(first, Wav2Vec2AudioEncoder.from_pretrained(tiny_folder).encode(waveform, 25))


def test_batch_rows_match_single_clips(encoder):
    clips = torch.stack([speechlike(0.7, seed=1), speechlike(0.7, seed=2)])
    batched = encoder(clips, 18, 25)
    for row, clip in zip(batched, clips):
        torch.testing.assert_close(row, encoder.encode(clip, 25, frame_count=18), rtol=1e-4, atol=1e-5)


def test_normalisation_follows_preprocessor_config(tmp_path):
    folder = make_tiny_wav2vec2(tmp_path / "model")
    waveform = 3 * speechlike(0.6)[None] + 0.1
    normalised = Wav2Vec2AudioEncoder.from_pretrained(folder).prepare_waveform(waveform)
    assert abs(normalised.mean()) < 1e-5 and abs(normalised.std(correction=0) - 1) < 1e-4

    preprocessor = folder / "preprocessor_config.json"
    preprocessor.write_text(json.dumps({**json.loads(preprocessor.read_text()), "do_normalize": False}))
    raw = Wav2Vec2AudioEncoder.from_pretrained(folder)
    assert not raw.do_normalize and torch.equal(raw.prepare_waveform(waveform), waveform)


def test_same_seed_same_weights(tmp_path, encoder):
    again = Wav2Vec2AudioEncoder.from_pretrained(make_tiny_wav2vec2(tmp_path / "again", seed=0))
    other = Wav2Vec2AudioEncoder.from_pretrained(make_tiny_wav2vec2(tmp_path / "other", seed=1))
    waveform = speechlike(0.5)
    assert torch.equal(again.encode(waveform, 25), encoder.encode(waveform, 25))
    assert not torch.allclose(other.encode(waveform, 25), encoder.encode(waveform, 25))


def test_windowed_long_audio_matches_single_pass(encoder):
    waveform = speechlike(4.5)
    single_pass = encoder.encode(waveform, 25)
    encoder.window = EncodingWindow(window_seconds=1.0, context_seconds=1.0)
    windowed = encoder.encode(waveform, 25)
    assert windowed.shape == single_pass.shape == (113, 32)
    # Only Group-norm statistics and far-away attention differ between the two.
    similarity = torch.nn.functional.cosine_similarity(windowed, single_pass, dim=-1)
    assert similarity.min() > 0.995
    relative = (windowed - single_pass).norm(dim=-1) / single_pass.norm(dim=-1)
    assert relative.mean() < 0.03


def test_sample_linearly_reads_rows_between_steps_and_clamps():
    features = torch.arange(12.0).reshape(1, 4, 3)
    picked = sample_linearly(features, torch.tensor([-2.0, 0.0, 1.5, 3.0, 9.0], dtype=torch.float64))
    rows = features[0]
    expected = torch.stack([rows[0], rows[0], (rows[1] + rows[2]) / 2, rows[3], rows[3]])
    torch.testing.assert_close(picked[0], expected)


class _CentreSample(torch.nn.Module):
    """Stands in for the CNN extractor (steps every 320 samples, step i reading samples
    [320 i, 320 i + 400)): on a waveform whose sample k holds the value k, step i's feature is
    the sample index of its centre, 320 i + 199.5."""

    def forward(self, waveform):
        steps = (waveform.shape[-1] - 400) // 320 + 1
        return (waveform[:, 0:320 * steps:320] + 199.5)[:, None]


class _FirstOf(torch.nn.Module):
    def forward(self, hidden_states):
        return (hidden_states,)


@pytest.mark.parametrize("fps", [25, NTSC])
@pytest.mark.parametrize("window_seconds", [20.0, 0.5])
def test_frames_read_the_extractor_at_their_centre_time(encoder, monkeypatch, fps, window_seconds):
    """Frame j is read at its centre, (j + 0.5) / fps seconds, on the extractor's time grid, in
    one pass and in windows alike: through the stand-in extractor each frame's feature is the
    (interpolated) sample index it was read at."""
    monkeypatch.setattr(encoder.model, "feature_extractor", _CentreSample())
    monkeypatch.setattr(encoder.model, "feature_projection", torch.nn.Identity())
    monkeypatch.setattr(encoder.model, "encoder", _FirstOf())
    monkeypatch.setattr(encoder, "do_normalize", False)
    encoder.window = EncodingWindow(window_seconds=window_seconds, context_seconds=0.2)
    waveform = torch.arange(32000, dtype=torch.float64)  # 2 s; sample k holds k
    read_at = encoder.encode(waveform, fps)[:, 0].double()
    frames = torch.arange(len(read_at), dtype=torch.float64)
    last_centre = 320 * ((len(waveform) - 400) // 320) + 199.5
    expected = ((frames + 0.5) * 16000 / fps).clamp(199.5, last_centre)
    torch.testing.assert_close(read_at, expected, rtol=0, atol=0.01)


def _raises_one_line(error_type, call, *words):
    with pytest.raises(error_type) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_bad_folders_are_refused(tmp_path, tiny_folder):
    _raises_one_line(CheckpointError, lambda: Wav2Vec2AudioEncoder.from_pretrained(tmp_path / "nowhere"), "nowhere")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_folder / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    _raises_one_line(
        CheckpointError, lambda: Wav2Vec2AudioEncoder.from_pretrained(pickled), "pickle", "safe_serialization=True"
    )
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (corrupt / name).write_text((tiny_folder / name).read_text())
    (corrupt / "model.safetensors").write_bytes(b"garbage" * 10)
    _raises_one_line(CheckpointError, lambda: Wav2Vec2AudioEncoder.from_pretrained(corrupt), "corrupt")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    _raises_one_line(CheckpointError, lambda: Wav2Vec2AudioEncoder.from_pretrained(bert), "bert")


def test_resolve_folder(tmp_path, tiny_folder):
    assert resolve_wav2vec2_folder(tiny_folder) == tiny_folder
    hub_id = "facebook/wav2vec2-base-960h"
    _raises_one_line(ResyncerInputError, lambda: resolve_wav2vec2_folder(hub_id), "models_dir")
    expected_place = str(tmp_path / "facebook--wav2vec2-base-960h")
    _raises_one_line(ResyncerInputError, lambda: resolve_wav2vec2_folder(hub_id, models_dir=tmp_path), expected_place)
    _raises_one_line(ResyncerInputError, lambda: resolve_wav2vec2_folder("not a model"), "not a model")
    placed = tmp_path / "facebook--wav2vec2-base-960h"
    placed.mkdir()
    (placed / "config.json").write_text("{}")
    assert resolve_wav2vec2_folder(hub_id, models_dir=tmp_path) == placed


def test_load_audio_encoder_by_spec(tiny_folder):
    assert isinstance(load_audio_encoder("mel"), MelAudioEncoder)
    assert isinstance(load_audio_encoder(str(tiny_folder)), Wav2Vec2AudioEncoder)
    _raises_one_line(ResyncerInputError, lambda: load_audio_encoder("wav2vec3"), "wav2vec3")


def test_unknown_preset_is_refused(tmp_path):
    _raises_one_line(ResyncerInputError, lambda: make_random_wav2vec2(tmp_path, "huge"), "huge", "tiny")


@pytest.mark.slow
def test_base_preset_has_the_paper_architecture(tmp_path):
    encoder = Wav2Vec2AudioEncoder.from_pretrained(make_random_wav2vec2(tmp_path, "base"))
    assert encoder.feature_dim == 768 and len(encoder.model.encoder.layers) == 12
    assert encoder.encode(speechlike(1.0), 25).shape == (25, 768)
