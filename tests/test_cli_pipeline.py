"""`resyncer lipsync | drive | swap | personalize` from the command line: success prints a
summary, bad input is one line on stderr with exit status 2 and no output file."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest
from PIL import Image

from _pipeline_media import faceless_clip, leftovers, speech_wav, talking_clip, tiny_models
from resyncer_core.cli import main
from resyncer_core.models.checkpoint import load_checkpoint
from resyncer_core.video import probe_video


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return talking_clip(tmp_path_factory, 1.2)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return speech_wav(tmp_path_factory.mktemp("speech") / "speech.wav", 0.8)


def run_fails(capsys, argv, output, match) -> None:
    """The command exits 2 with one line on stderr containing `match`, and leaves nothing at `output`."""
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("resyncer: error: "), error
    assert match in error
    assert leftovers(output.parent, output.name) == []


@pytest.mark.parametrize("command", ["lipsync", "drive", "swap", "personalize"])
def test_every_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: resyncer {command}" in capsys.readouterr().out


def test_lipsync_writes_the_video_and_prints_a_summary(capsys, tmp_path, models_dir, clip, speech):
    output = tmp_path / "out.mp4"
    argv = ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output), "--models", str(models_dir),
            "--x264-preset", "ultrafast", "--batch-size", "4"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "20 frames at 25 fps, 0 without a face" in captured.out and captured.err == ""
    # The models are random-initialised: one line says the mesh warp renders instead.
    assert sum("mesh warp" in line for line in captured.out.splitlines()) == 1
    assert probe_video(output).frame_count == 20


def test_models_folder_comes_from_the_environment(capsys, tmp_path, monkeypatch, models_dir, clip, speech):
    monkeypatch.setenv("RESYNCER_MODELS", str(models_dir))
    output = tmp_path / "out.mp4"
    assert main(["swap", "--video", str(clip), "--identity", str(clip), "-o", str(output),
                 "--x264-preset", "ultrafast"]) == 0
    assert probe_video(output).frame_count == 30


def test_video_without_faces_passes_through_and_is_counted(capsys, tmp_path, models_dir, speech):
    video = faceless_clip(tmp_path / "faceless.mp4", 20)
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(video), "--audio", str(speech), "-o", str(output),
                 "--models", str(models_dir)]) == 0
    assert "20 frames at 25 fps, 20 without a face" in capsys.readouterr().out


def test_missing_video(capsys, tmp_path, models_dir, speech):
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(tmp_path / "nope.mp4"), "--audio", str(speech), "-o", str(output),
                       "--models", str(models_dir)], output, "does not exist")


def test_audio_file_given_as_video(capsys, tmp_path, models_dir, speech):
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(speech), "--audio", str(speech), "-o", str(output),
                       "--models", str(models_dir)], output, "no video stream")


def test_zero_length_audio(capsys, tmp_path, models_dir, clip):
    silence = tmp_path / "empty.wav"
    with wave.open(str(silence), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(16000)
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(clip), "--audio", str(silence), "-o", str(output),
                       "--models", str(models_dir)], output, "no audio")


def test_corrupt_checkpoint_in_the_models_folder(capsys, tmp_path, models_dir, clip, speech):
    broken = shutil.copytree(models_dir, tmp_path / "models")
    syncformer = broken / "syncformer.safetensors"
    syncformer.write_bytes(syncformer.read_bytes()[:1000])
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output),
                       "--models", str(broken)], output, "syncformer.safetensors")


def test_corrupt_generator_given_with_flag(capsys, tmp_path, models_dir, clip):
    generator = tmp_path / "generator.safetensors"
    generator.write_bytes(b"\x00" * 64)
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["drive", "--video", str(clip), "--driver", str(clip), "-o", str(output),
                       "--models", str(models_dir), "--generator", str(generator)], output, "generator.safetensors")


def test_missing_models_folder(capsys, tmp_path, clip, speech):
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output),
                       "--models", str(tmp_path / "no_models")], output, "to use the shipped weights")


def test_missing_model_names_the_file_and_what_to_do(capsys, tmp_path, clip, speech):
    empty = tmp_path / "models"
    empty.mkdir()
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output),
                       "--models", str(empty)], output, f"no generator at {empty / 'generator.safetensors'}")


def test_unsupported_output_extension(capsys, tmp_path, models_dir, clip, speech):
    output = tmp_path / "out.avi"
    run_fails(capsys, ["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output),
                       "--models", str(models_dir)], output, ".mp4")


def test_identity_without_a_face(capsys, tmp_path, models_dir, clip):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(blank)
    output = tmp_path / "out.mp4"
    run_fails(capsys, ["swap", "--video", str(clip), "--identity", str(blank), "-o", str(output),
                       "--models", str(models_dir)], output, "no face")


def test_personalize_then_lipsync_with_the_personal_generator(capsys, tmp_path, models_dir, clip, speech):
    generator = tmp_path / "person.safetensors"
    assert main(["personalize", "--video", str(clip), "-o", str(generator), "--steps", "2", "--batch-size", "2",
                 "--max-frames", "10", "--models", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "EfficientNet-Lite0 feature loss" in out and f"wrote {generator}" in out
    load_checkpoint(generator, kind="generator")
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(clip), "--audio", str(speech), "-o", str(output), "--models", str(models_dir),
                 "--generator", str(generator), "--x264-preset", "ultrafast"]) == 0
    assert probe_video(output).frame_count == 20


@pytest.mark.parametrize("arguments, match", [(["--steps", "0"], "at least 1"),
                                              (["--steps", "2", "--lr", "0"], "learning rate")])
def test_personalize_rejects_bad_settings(capsys, tmp_path, models_dir, clip, arguments, match):
    output = tmp_path / "person.safetensors"
    run_fails(capsys, ["personalize", "--video", str(clip), "-o", str(output), "--models", str(models_dir), *arguments],
              output, match)


def test_personalize_needs_a_safetensors_output(capsys, tmp_path, models_dir, clip):
    output = tmp_path / "person.pt"
    run_fails(capsys, ["personalize", "--video", str(clip), "-o", str(output), "--steps", "1",
                       "--models", str(models_dir)], output, ".safetensors")
