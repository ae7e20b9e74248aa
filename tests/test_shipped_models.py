"""Shipped defaults: with no --models, $RESYNCER_MODELS or ./models the pipelines use the weights in
resyncer_core/weights; a Style-SyncFormer checkpoint names the audio encoder it was trained on
(resyncer.audio_encoder) and the pipeline loads that one; the paper-whisper preset; the nodes
list the shipped files."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from _pipeline_media import speech_wav, talking_clip, tiny_models

from resyncer_core.audio import MelAudioEncoder, Wav2Vec2AudioEncoder, WhisperAudioEncoder
from resyncer_core.audio.encoder_factory import audio_encoder_name
from resyncer_core.cli import main
from resyncer_core.errors import ResyncerInputError
from resyncer_core.models.checkpoint import read_checkpoint_header, read_checkpoint_metadata, save_checkpoint
from resyncer_core.models.presets import AUDIO_ENCODER_KEY, preset_audio_encoder, preset_config
from resyncer_core.models.syncformer import StyleSyncFormer
from resyncer_core.stages import model_files
from resyncer_core.weights import SHIPPED_MODELS_DIR, WHISPER_ENCODER_PATH


@pytest.fixture
def no_models_anywhere(monkeypatch, tmp_path):
    """A working directory without ./models and no $RESYNCER_MODELS."""
    monkeypatch.delenv(model_files.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def _folder_for_encoder(tmp_path_factory, folder, spec: str | None, audio_dim: int):
    """The tiny generator and a tiny SyncFormer of `audio_dim` whose metadata names `spec`."""
    tiny = tiny_models(tmp_path_factory)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny / "generator.safetensors", folder / "generator.safetensors")
    if spec in (None, "wav2vec2"):
        shutil.copytree(tiny / "wav2vec2", folder / "wav2vec2", dirs_exist_ok=True)
    config = dataclasses.replace(preset_config("tiny", "syncformer"), audio_dim=audio_dim)
    metadata = {} if spec is None else {AUDIO_ENCODER_KEY: spec}
    save_checkpoint(StyleSyncFormer(config), config, "syncformer", folder / "syncformer.safetensors", metadata)
    return folder


def test_models_folder_falls_back_to_the_shipped_weights(no_models_anywhere, tmp_path, monkeypatch):
    assert model_files.resolve_models_dir() == SHIPPED_MODELS_DIR
    (tmp_path / "models").mkdir()
    assert model_files.resolve_models_dir().resolve() == (tmp_path / "models").resolve()
    with pytest.raises(ResyncerInputError, match="does not exist"):
        model_files.resolve_models_dir(tmp_path / "elsewhere")  # a folder that is named must exist
    monkeypatch.setenv(model_files.MODELS_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(ResyncerInputError, match="does not exist"):
        model_files.resolve_models_dir()


def test_missing_shipped_model_is_one_clear_line(no_models_anywhere, tmp_path, monkeypatch):
    monkeypatch.setattr(model_files, "SHIPPED_MODELS_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    with pytest.raises(ResyncerInputError) as caught:
        model_files.load_pipeline_models()
    message = str(caught.value)
    assert "\n" not in message and "no generator.safetensors is shipped" in message and "--models" in message


def _refusal(action) -> str:
    with pytest.raises(ResyncerInputError) as caught:
        action()
    return str(caught.value)


def test_models_folder_advice_leads_to_the_shipped_weights_or_training_never_to_random_ones(
        no_models_anywhere, tmp_path, monkeypatch):
    """`resyncer models init` writes random weights that, in a models folder, hide the shipped
    trained ones and draw noise: no hint for a missing, empty or mistyped models folder (flag,
    variable, ComfyUI roots) may suggest it (issue 24)."""
    from nodes import comfy_adapter

    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "file.safetensors").write_bytes(b"x")
    messages = {
        "missing --models": _refusal(lambda: model_files.resolve_models_dir(tmp_path / "gone")),
        "--models is a file": _refusal(lambda: model_files.resolve_models_dir(tmp_path / "file.safetensors")),
        **{f"empty folder, {kind}": _refusal(lambda kind=kind: model_files.model_file(empty, kind))
           for kind in ("generator", "syncformer", "discriminator", "wav2vec2")},
        "not shipped": _refusal(lambda: model_files.model_file(SHIPPED_MODELS_DIR, "wav2vec2")),
        "ComfyUI, no folder": _refusal(lambda: comfy_adapter.resolve_model("resyncer", "generator.safetensors")),
    }
    monkeypatch.setenv(model_files.MODELS_ENV, str(tmp_path / "gone"))
    messages["$RESYNCER_MODELS missing"] = _refusal(model_files.resolve_models_dir)
    for case, message in messages.items():
        assert "models init" not in message and "\n" not in message, (case, message)
    for case in ("missing --models", "$RESYNCER_MODELS missing", "empty folder, generator"):
        assert "to use the shipped weights" in messages[case], messages[case]
    assert "is a file, not a folder" in messages["--models is a file"]
    assert "resyncer train stage2" in messages["empty folder, generator"]
    assert "(shipped)" in messages["ComfyUI, no folder"]


@pytest.mark.parametrize("spec, audio_dim, encoder_class", [
    ("whisper", 384, WhisperAudioEncoder), ("mel", 1280, MelAudioEncoder), (None, 32, Wav2Vec2AudioEncoder)])
def test_syncformer_metadata_picks_the_audio_encoder(tmp_path_factory, tmp_path, spec, audio_dim, encoder_class):
    folder = _folder_for_encoder(tmp_path_factory, tmp_path / "models", spec, audio_dim)
    models = model_files.load_pipeline_models(folder)
    assert isinstance(models.audio_encoder, encoder_class) and models.drives_from_audio


def test_unknown_or_mismatched_audio_encoder_is_refused(tmp_path_factory, tmp_path):
    folder = _folder_for_encoder(tmp_path_factory, tmp_path / "a", "hubert", 384)
    with pytest.raises(ResyncerInputError, match="names audio encoder 'hubert'"):
        model_files.load_pipeline_models(folder)
    folder = _folder_for_encoder(tmp_path_factory, tmp_path / "b", "whisper", 32)
    with pytest.raises(ResyncerInputError, match="384-d features but the Style-SyncFormer expects 32"):
        model_files.load_pipeline_models(folder)


def test_lipsync_with_no_models_flag_uses_the_shipped_folder(no_models_anywhere, tmp_path, tmp_path_factory,
                                                             monkeypatch, capsys):
    """The whole default path: no --models, no ./models -> the shipped folder (here a stand-in
    holding a SyncFormer trained on Whisper features and the tiny random generator, which the
    mesh warp replaces, saying so)."""
    shipped = _folder_for_encoder(tmp_path_factory, tmp_path / "shipped", "whisper", 384)
    monkeypatch.setattr(model_files, "SHIPPED_MODELS_DIR", shipped)
    clip, speech = talking_clip(tmp_path_factory, 0.8), speech_wav(tmp_path / "speech.wav", 0.6)
    output = tmp_path / "out.mp4"
    argv = ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output), "--x264-preset", "ultrafast"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert output.is_file() and "15 frames at 25 fps" in printed
    assert "generator.safetensors is a random initialisation (untrained): rendering with the training-free mesh warp" in printed


def test_paper_whisper_preset_fits_the_shipped_encoder(tmp_path):
    assert preset_audio_encoder("paper-whisper") == "whisper" and preset_audio_encoder("tiny") == "wav2vec2"
    syncformer = preset_config("paper-whisper", "syncformer")
    assert syncformer.audio_dim == read_checkpoint_header(WHISPER_ENCODER_PATH).config["d_model"] == 384
    assert syncformer.d_model == preset_config("paper", "syncformer").d_model == 128


@pytest.mark.parametrize("spec, name", [("whisper", "whisper"), (" Mel ", "mel"), ("models/wav2vec2", "wav2vec2"),
                                        ("converted/whisper_base.safetensors", "whisper")])
def test_audio_encoder_name_of_a_spec(spec, name):
    assert audio_encoder_name(spec) == name


def test_models_init_records_the_audio_encoder(tmp_path_factory):
    metadata = read_checkpoint_metadata(tiny_models(tmp_path_factory) / "syncformer.safetensors")
    assert metadata[AUDIO_ENCODER_KEY] == "wav2vec2"


def test_nodes_offer_the_shipped_encoder(monkeypatch):
    from comfy_stubs.harness import load_pack_as_comfyui

    from resyncer_core.graph import context

    monkeypatch.delenv(model_files.MODELS_ENV, raising=False)
    pack = load_pack_as_comfyui()
    adapter = pack.nodes.comfy_adapter
    with context.scoped(models_dir=None):
        shipped_name = WHISPER_ENCODER_PATH.name + adapter.SHIPPED_SUFFIX
        assert shipped_name in adapter.list_checkpoints("whisper_encoder")
        assert adapter.resolve_model(adapter.RESYNCER_FOLDER, shipped_name) == WHISPER_ENCODER_PATH
        loader = pack.nodes.ALL_NODE_CLASSES["ReSyncerLoadWav2Vec2"]
        assert adapter.WHISPER_ENCODER in loader.INPUT_TYPES()["required"]["model"][0]
        handle = loader().load(adapter.WHISPER_ENCODER, "cpu")[0]
    assert isinstance(handle.model, WhisperAudioEncoder)
