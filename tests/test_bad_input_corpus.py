"""The bad-input corpus: what a hostile new user tries against `resyncer lipsync | drive | swap |
models init | run-workflow | personalize | preprocess | train stage1|stage2|swap | eval` with the
tiny models. Every bad input exits 2 with exactly one line
on stderr (file-descriptor level, so FFmpeg's own logging would count too) that names the
input, leaves no file anywhere, and fails in under 2 s of work. Every odd-but-valid input gives
the frame count, frame rate and audio duration its rules promise (README: odd sizes, variable
frame rates, stills)."""

from __future__ import annotations

import shutil
import tempfile
import time
import wave
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

from _pipeline_media import FPS, faceless_clip, speech_wav, talking_clip, tiny_models, variable_rate_clip
from resyncer_core.audio import frame_count_for, load_audio
from resyncer_core.audio.loading import load_soundtrack
from resyncer_core.cli import main
from resyncer_core.synth.mesh_corpus import write_mesh_corpus
from resyncer_core.video import probe_video, read_frames

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "api_workflows" / "lipsync_api.json"
FAIL_WITHIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus_media")
    return SimpleNamespace(models=tiny_models(tmp_path_factory), clip=talking_clip(tmp_path_factory, 0.6),
                           silent_clip=talking_clip(tmp_path_factory, 0.6, with_audio=False),
                           speech=speech_wav(folder / "speech.wav", 0.4),
                           faceless=faceless_clip(folder / "faceless.mp4", 5),
                           mesh_data=write_mesh_corpus(folder / "mesh_data", clips=2, frames=20),
                           runs={stage: _recorded_run(folder / f"{stage}_run", stage, folder / "mesh_data")
                                 for stage in ("stage1", "stage2")})


# The training commands' options the corpus runs with: tiny windows and batches.
STAGE_OPTIONS = {"stage1": ["--window", "16", "--style-frames", "12", "--batch-size", "2"],
                 "stage2": ["--batch-size", "1", "--hide-reference-lower-face"]}


def _recorded_run(run: Path, stage: str, data: Path) -> Path:
    """A run folder whose checkpoint records the config `resyncer train <stage>` builds from the
    corpus's options, written without training (the stage's train function replaced by one
    that only saves that config): what --resume compares a new command's config with."""
    import importlib

    from resyncer_core.train.distributed import DistributedContext
    from resyncer_core.train.loop import TrainingResult
    from resyncer_core.train.training_state import save_training_state

    def record(config, run_dir, context, **ignored):
        save_training_state(run_dir, 1, {}, {}, config, DistributedContext())
        return TrainingResult(step=1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.import_module(f"resyncer_core.train.{stage}"), f"train_{stage}", record)
        assert main(["train", stage, "--data", str(data), "-o", str(run), "--steps", "1", *STAGE_OPTIONS[stage]]) == 0
    return run


def _float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_f32le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _bad_samples(value: float) -> np.ndarray:
    samples = 0.1 * np.sin(np.arange(8000, dtype=np.float32) / 7)
    samples[4000] = value
    return samples


def _empty_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(16000)
    return path


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _blank_png(path: Path) -> Path:
    Image.fromarray(np.full((96, 96, 3), 200, np.uint8)).save(path)
    return path


def _syncformer_as_generator(tmp: Path, media) -> Path:
    """A copy of the models folder whose generator.safetensors is its Style-SyncFormer."""
    folder = tmp / "models"
    shutil.copytree(media.models, folder)
    shutil.copyfile(folder / "syncformer.safetensors", folder / "generator.safetensors")
    return folder


def _workflow(tmp: Path, media, *overrides: str, models=None, workflow=WORKFLOW) -> list[str]:
    argv = ["run-workflow", str(workflow), "--set", f"Target video.video={media.clip}",
            "--set", f"Speech.audio={media.speech}", "--models", str(models or media.models),
            "--output-dir", str(tmp / "out"), "--device", "cpu", "--quiet"]
    for override in overrides:
        argv += ["--set", override]
    return argv


def _lipsync(tmp: Path, media, video=None, audio=None, output=None, *extra: str) -> list[str]:
    return ["lipsync", "--video", str(video or media.clip), "--audio", str(audio or media.speech),
            "-o", str(output or tmp / "out.mp4"), "--models", str(media.models), *extra]


def _personalize(tmp: Path, media, *extra: str, video=None, output=None) -> list[str]:
    return ["personalize", "--video", str(video or media.clip), "-o", str(output or tmp / "person.safetensors"),
            "--steps", "1", *extra]


def _preprocess(tmp: Path, media, *extra: str, videos=None, output=None) -> list[str]:
    return ["preprocess", "--videos", str(videos or media.clip.parent), "-o", str(output or tmp / "data"), *extra]


def _train(tmp: Path, media, stage: str, *extra: str, data=None, output=None) -> list[str]:
    swap = ["--init", str(media.models / "generator.safetensors")] if stage == "swap" else []
    return ["train", stage, "--data", str(data or media.mesh_data), "-o", str(output or tmp / "run"), "--steps", "1",
            *STAGE_OPTIONS.get(stage, ["--batch-size", "1"]), *swap, *extra]


def _resume(tmp: Path, media, run_of: str, stage: str, *extra: str) -> list[str]:
    """`train <stage> --resume` into a copy of the corpus's recorded `run_of` run."""
    run = shutil.copytree(media.runs[run_of], tmp / "run")
    return _train(tmp, media, stage, "--resume", *extra, output=run)


def _eval(tmp: Path, media, *extra: str, data=None) -> list[str]:
    return ["eval", "--data", str(data or media.mesh_data), "--generator", str(media.models / "generator.safetensors"),
            *extra]


# Each case: (id, make(tmp, media) -> (argv, text the error line must contain)).
BAD_INPUTS = [
    # lipsync: the video
    ("video-missing", lambda t, m: (_lipsync(t, m, video=t / "nope.mp4"), "nope.mp4")),
    ("video-empty-file", lambda t, m: (_lipsync(t, m, video=_file(t / "empty.mp4", b"")), "empty.mp4")),
    ("video-text-file", lambda t, m: (_lipsync(t, m, video=_file(t / "notes.mp4", b"hello\n" * 50)), "notes.mp4")),
    ("video-random-bytes", lambda t, m: (_lipsync(t, m, video=_file(t / "noise.mov", np.random.default_rng(0)
                                                                     .bytes(4096))), "noise.mov")),
    ("video-truncated", lambda t, m: (_lipsync(t, m, video=_file(t / "cut.mp4", m.clip.read_bytes()[:600])), "cut.mp4")),
    ("video-is-audio", lambda t, m: (_lipsync(t, m, video=m.speech), "speech.wav")),
    ("video-is-folder", lambda t, m: (_lipsync(t, m, video=t), f"{t} is a folder, not a file")),
    # lipsync: the audio
    ("audio-missing", lambda t, m: (_lipsync(t, m, audio=t / "nope.wav"), "nope.wav")),
    ("audio-is-folder", lambda t, m: (_lipsync(t, m, audio=_folder(t / "sounds")), "sounds is a folder, not a file")),
    ("audio-empty-wav", lambda t, m: (_lipsync(t, m, audio=_empty_wav(t / "empty.wav")), "empty.wav")),
    ("audio-text-file", lambda t, m: (_lipsync(t, m, audio=_file(t / "speech.mp3", b"ID3 not really")), "speech.mp3")),
    ("audio-nan-samples", lambda t, m: (_lipsync(t, m, audio=_float_wav(t / "nan.wav", _bad_samples(np.nan))), "nan.wav")),
    ("audio-inf-samples", lambda t, m: (_lipsync(t, m, audio=_float_wav(t / "inf.wav", _bad_samples(np.inf))), "inf.wav")),
    ("audio-from-silent-video", lambda t, m: (_lipsync(t, m, audio=m.silent_clip), m.silent_clip.name)),
    # lipsync: the output
    ("output-avi", lambda t, m: (_lipsync(t, m, output=t / "out.avi"), "out.avi")),
    ("output-is-folder", lambda t, m: (_lipsync(t, m, output=_folder(t / "made.mp4")), "made.mp4")),
    ("output-under-a-file", lambda t, m: (_lipsync(t, m, output=_file(t / "plain", b"x") / "out.mp4"), "plain")),
    ("output-is-the-input", lambda t, m: (_lipsync(t, m, video=_file(t / "v.mp4", m.clip.read_bytes()),
                                                   output=t / "v.mp4"), "v.mp4")),
    # lipsync: options and models
    ("style-from-missing", lambda t, m: (_lipsync(t, m, None, None, None, "--style-from", str(t / "style.mp4")),
                                         "style.mp4")),
    ("style-from-faceless", lambda t, m: (_lipsync(t, m, None, None, None, "--style-from", str(m.faceless)),
                                          "faceless.mp4")),
    ("face-rule-unknown", lambda t, m: (_lipsync(t, m, None, None, None, "--face", "tallest"), "tallest")),
    ("face-index-negative", lambda t, m: (_lipsync(t, m, None, None, None, "--face", "index", "-1"), "-1")),
    ("crf-out-of-range", lambda t, m: (_lipsync(t, m, None, None, None, "--crf", "99"), "crf 99")),
    ("x264-preset-unknown", lambda t, m: (_lipsync(t, m, None, None, None, "--x264-preset", "warp9"), "warp9")),
    ("batch-size-zero", lambda t, m: (_lipsync(t, m, None, None, None, "--batch-size", "0"), "batch size")),
    ("feather-negative", lambda t, m: (_lipsync(t, m, None, None, None, "--feather", "-3"), "feather")),
    ("device-unknown", lambda t, m: (_lipsync(t, m, None, None, None, "--device", "tpu9"), "tpu9")),
    ("long-audio-mode-unknown", lambda t, m: (_lipsync(t, m, None, None, None, "--long-audio", "loop"), "loop")),
    ("models-folder-missing", lambda t, m: (_lipsync(t, m)[:-1] + [str(t / "no_models")], "no_models")),
    ("models-is-a-file", lambda t, m: (_lipsync(t, m)[:-1] + [str(m.models / "generator.safetensors")],
                                       "generator.safetensors (--models) is a file, not a folder")),
    ("generator-is-a-folder", lambda t, m: (_lipsync(t, m, None, None, None, "--generator", str(m.models)),
                                            f"{m.models} is a folder, not a file")),
    ("models-folder-empty", lambda t, m: (_lipsync(t, m)[:-1] + [str(_folder(t / "empty_models"))],
                                          "generator.safetensors")),
    ("generator-corrupt", lambda t, m: (_lipsync(t, m, None, None, None, "--generator",
                                                 str(_file(t / "gen.safetensors", b"\0" * 64))), "gen.safetensors")),
    ("generator-pickle", lambda t, m: (_lipsync(t, m, None, None, None, "--generator",
                                                str(_file(t / "gen.pt", b"\x80\x04K\x01."))), "gen.pt")),
    ("generator-is-a-syncformer", lambda t, m: (_lipsync(t, m, None, None, None, "--generator",
                                                         str(m.models / "syncformer.safetensors")),
                                                "holds a syncformer model, not a generator")),
    ("models-generator-is-a-syncformer", lambda t, m: (_lipsync(t, m)[:-1] + [str(_syncformer_as_generator(t, m))],
                                                       "holds a syncformer model, not a generator")),
    # drive and swap
    ("driver-missing", lambda t, m: (["drive", "--video", str(m.clip), "--driver", str(t / "d.mp4"), "-o",
                                      str(t / "out.mp4"), "--models", str(m.models)], "d.mp4")),
    ("driver-faceless", lambda t, m: (["drive", "--video", str(m.clip), "--driver", str(m.faceless), "-o",
                                       str(t / "out.mp4"), "--models", str(m.models)], "faceless.mp4")),
    ("identity-missing", lambda t, m: (["swap", "--video", str(m.clip), "--identity", str(t / "who.png"), "-o",
                                        str(t / "out.mp4"), "--models", str(m.models)], "who.png")),
    ("identity-faceless", lambda t, m: (["swap", "--video", str(m.clip), "--identity", str(_blank_png(t / "blank.png")),
                                         "-o", str(t / "out.mp4"), "--models", str(m.models)], "blank.png")),
    ("identity-is-folder", lambda t, m: (["swap", "--video", str(m.clip), "--identity", str(_folder(t / "faces")),
                                          "-o", str(t / "out.mp4"), "--models", str(m.models)],
                                         "faces is a folder, not a file")),
    ("identity-garbage", lambda t, m: (["swap", "--video", str(m.clip), "--identity",
                                        str(_file(t / "who.jpg", b"JFIF? no")), "-o", str(t / "out.mp4"),
                                        "--models", str(m.models)], "who.jpg")),
    ("swap-audio-nan", lambda t, m: (["swap", "--video", str(m.clip), "--identity", str(m.clip), "--audio",
                                      str(_float_wav(t / "nan.wav", _bad_samples(np.nan))), "-o", str(t / "out.mp4"),
                                      "--models", str(m.models)], "nan.wav")),
    # models init
    ("models-init-onto-a-file", lambda t, m: (["models", "init", "-o", str(_file(t / "models", b"x"))], "models")),
    ("models-init-under-a-file", lambda t, m: (["models", "init", "-o", str(_file(t / "f", b"x") / "m")], "f/m")),
    ("models-init-empty-name", lambda t, m: (["models", "init", "-o", ""], "-o/--output")),
    ("models-init-unknown-preset", lambda t, m: (["models", "init", "--preset", "huge", "-o", str(t / "m")], "huge")),
    # run-workflow
    ("workflow-missing", lambda t, m: (_workflow(t, m, workflow=t / "flow.json"), "flow.json")),
    ("workflow-not-json", lambda t, m: (_workflow(t, m, workflow=_file(t / "flow.json", b"{nope")), "flow.json")),
    ("workflow-ui-format", lambda t, m: (_workflow(t, m, workflow=REPO / "example_workflows" / "ReSyncer lip-sync.json"), "UI-format")),
    ("workflow-video-missing", lambda t, m: (_workflow(t, m, f"Target video.video={t / 'gone.mp4'}"), "gone.mp4")),
    ("workflow-video-garbage", lambda t, m: (_workflow(t, m, f"Target video.video={_file(t / 'g.mp4', b'xx')}"),
                                             "g.mp4")),
    ("workflow-audio-nan", lambda t, m: (_workflow(t, m, "Speech.audio="
                                                   f"{_float_wav(t / 'nan.wav', _bad_samples(np.nan))}"), "nan.wav")),
    ("workflow-prefix-escapes", lambda t, m: (_workflow(t, m, "Save Video.filename_prefix=../../escape/x"),
                                              "../../escape/x")),
    ("workflow-prefix-under-a-file", lambda t, m: (_workflow(t, m, "Save Video.filename_prefix=blocker/x"), "blocker")
     if _file(t / "out" / "blocker", b"x") else None),
    ("workflow-unknown-node", lambda t, m: (_workflow(t, m, "Nonexistent.video=x"), "Nonexistent")),
    ("workflow-bad-number", lambda t, m: (_workflow(t, m, "ReSyncerGenerator.batch_size=lots"), "batch_size")),
    ("workflow-models-not-a-folder", lambda t, m: (_workflow(t, m, models=t / "nomodels"), "nomodels")),
    ("workflow-models-is-a-file", lambda t, m: (_workflow(t, m, models=m.models / "generator.safetensors"),
                                                "is a file, not a folder")),
    ("workflow-model-missing", lambda t, m: (_workflow(t, m, "7.model=missing.safetensors"), "missing.safetensors")),
    ("workflow-start-past-the-end", lambda t, m: (_workflow(t, m, "Target video.start_frame=500"), "frame 500")),
    # personalize
    ("personalize-video-missing", lambda t, m: (_personalize(t, m, video=t / "who.mp4"), "who.mp4 does not exist")),
    ("personalize-video-is-folder", lambda t, m: (_personalize(t, m, video=_folder(t / "clips")), "clips is a folder")),
    ("personalize-steps-zero", lambda t, m: (_personalize(t, m)[:-1] + ["0"], "steps")),
    ("personalize-batch-size-zero", lambda t, m: (_personalize(t, m, "--batch-size", "0"), "batch size")),
    ("personalize-max-frames-zero", lambda t, m: (_personalize(t, m, "--max-frames", "0"), "max frames")),
    ("personalize-lr-zero", lambda t, m: (_personalize(t, m, "--lr", "0"), "learning rate")),
    ("personalize-w-plus-weight-negative", lambda t, m: (_personalize(t, m, "--w-plus", "--w-plus-weight", "-1"),
                                                         "-1")),
    ("personalize-output-is-folder", lambda t, m: (_personalize(t, m, output=_folder(t / "me.safetensors")),
                                                   "me.safetensors is a folder")),
    ("personalize-output-pt", lambda t, m: (_personalize(t, m, output=t / "me.pt"), "me.pt")),
    ("personalize-output-under-a-file", lambda t, m: (_personalize(t, m, output=_file(t / "plain", b"x") / "me.safetensors"),
                                                      "under the file")),
    ("personalize-generator-is-a-syncformer", lambda t, m: (_personalize(t, m, "--generator",
                                                                         str(m.models / "syncformer.safetensors")),
                                                            "holds a syncformer model, not a generator")),
    ("personalize-models-is-a-file", lambda t, m: (_personalize(t, m, "--models", str(m.models / "generator.safetensors")),
                                                   "is a file, not a folder")),
    # preprocess
    ("preprocess-videos-missing", lambda t, m: (_preprocess(t, m, videos=t / "clips"), "clips")),
    ("preprocess-videos-is-a-file", lambda t, m: (_preprocess(t, m, videos=m.clip), m.clip.name)),
    ("preprocess-videos-empty", lambda t, m: (_preprocess(t, m, videos=_folder(t / "clips")), "holds no video file")),
    ("preprocess-videos-no-videos", lambda t, m: (_preprocess(t, m, videos=_file(t / "clips" / "notes.txt", b"x").parent),
                                                  "holds no video file")),
    ("preprocess-output-is-a-file", lambda t, m: (_preprocess(t, m, output=_file(t / "data", b"x")),
                                                  "is a file, not a folder")),
    ("preprocess-output-under-a-file", lambda t, m: (_preprocess(t, m, output=_file(t / "plain", b"x") / "data"),
                                                     "under the file")),
    ("preprocess-shard-out-of-range", lambda t, m: (_preprocess(t, m, "--shard", "3/2"), "3/2")),
    ("preprocess-workers-zero", lambda t, m: (_preprocess(t, m, "--workers", "0"), "--workers")),
    ("preprocess-audio-encoder-unknown", lambda t, m: (_preprocess(t, m, "--audio-encoder", "hubert"), "hubert")),
    ("preprocess-min-tracked-above-one", lambda t, m: (_preprocess(t, m, "--min-tracked", "2"), "--min-tracked")),
    ("preprocess-min-frames-zero", lambda t, m: (_preprocess(t, m, "--min-frames", "0"), "--min-frames")),
    ("preprocess-device-unknown", lambda t, m: (_preprocess(t, m, "--device", "tpu9"), "tpu9")),
    # train stage1
    ("stage1-data-missing", lambda t, m: (_train(t, m, "stage1", data=t / "data"), "resyncer preprocess")),
    ("stage1-data-empty", lambda t, m: (_train(t, m, "stage1", data=_folder(t / "data")), "resyncer preprocess")),
    ("stage1-data-is-a-file", lambda t, m: (_train(t, m, "stage1", data=m.clip), "resyncer preprocess")),
    ("stage1-data-clips-too-short", lambda t, m: (_train(t, m, "stage1", "--window", "100"), "100 frames")),
    ("stage1-steps-zero", lambda t, m: (_train(t, m, "stage1", "--steps", "0"), "steps")),
    ("stage1-batch-size-zero", lambda t, m: (_train(t, m, "stage1", "--batch-size", "0"), "batch size")),
    ("stage1-grad-accum-zero", lambda t, m: (_train(t, m, "stage1", "--grad-accum", "0"), "grad accum")),
    ("stage1-batch-not-split-by-accum", lambda t, m: (_train(t, m, "stage1", "--batch-size", "3", "--grad-accum", "2"),
                                                      "--grad-accum")),
    ("stage1-checkpoint-every-zero", lambda t, m: (_train(t, m, "stage1", "--checkpoint-every", "0"), "checkpoint")),
    ("stage1-run-folder-is-a-file", lambda t, m: (_train(t, m, "stage1", output=_file(t / "run", b"x")),
                                                  "run folder")),
    ("stage1-run-folder-under-a-file", lambda t, m: (_train(t, m, "stage1", output=_file(t / "plain", b"x") / "run"),
                                                     "under the file")),
    ("stage1-audio-encoder-unknown", lambda t, m: (_train(t, m, "stage1", "--audio-encoder", "hubert"), "hubert")),
    ("stage1-window-one", lambda t, m: (_train(t, m, "stage1", "--window", "1"), "window")),
    ("stage1-validation-clips-negative", lambda t, m: (_train(t, m, "stage1", "--validation-clips", "-1"),
                                                       "--validation-clips")),
    ("stage1-validation-clips-all", lambda t, m: (_train(t, m, "stage1", "--validation-clips", "2"), "hold out 2")),
    ("stage1-resume-other-window", lambda t, m: (_resume(t, m, "stage1", "stage1", "--window", "18"), "window = 16")),
    ("stage1-resume-other-preset", lambda t, m: (_resume(t, m, "stage1", "stage1", "--preset", "small"),
                                                 "preset = 'tiny'")),
    ("stage1-resume-other-audio-encoder", lambda t, m: (_resume(t, m, "stage1", "stage1", "--audio-encoder", "whisper"),
                                                        "audio_encoder = 'mel'")),
    ("stage1-resume-a-stage2-run", lambda t, m: (_resume(t, m, "stage2", "stage1"), "another kind of run")),
    # train stage2 and swap
    ("stage2-data-missing", lambda t, m: (_train(t, m, "stage2", data=t / "data"), "resyncer preprocess")),
    ("stage2-data-without-crops", lambda t, m: (_train(t, m, "stage2"), "no clip with crop video")),
    ("stage2-steps-zero", lambda t, m: (_train(t, m, "stage2", "--steps", "0"), "steps")),
    ("stage2-batch-size-zero", lambda t, m: (_train(t, m, "stage2", "--batch-size", "0"), "batch size")),
    ("stage2-run-folder-is-a-file", lambda t, m: (_train(t, m, "stage2", output=_file(t / "run", b"x")), "run folder")),
    ("stage2-predicted-meshes-without-syncformer", lambda t, m: (_train(t, m, "stage2", "--predicted-meshes-from", "1"),
                                                                 "--syncformer")),
    ("stage2-reference-window-zero", lambda t, m: (_train(t, m, "stage2", "--reference-window", "0"), "reference window")),
    ("stage2-models-is-a-file", lambda t, m: (_train(t, m, "stage2", "--models", str(m.models / "generator.safetensors")),
                                              "is a file, not a folder")),
    ("stage2-resume-forgetting-hide-reference", lambda t, m: ([arg for arg in _resume(t, m, "stage2", "stage2")
                                                               if arg != "--hide-reference-lower-face"],
                                                              "hide_reference_lower_face = True, not False")),
    ("stage2-resume-other-batch-size", lambda t, m: (_resume(t, m, "stage2", "stage2", "--batch-size", "2"),
                                                     "loop.batch_size = 1")),
    ("stage2-resume-a-stage1-run", lambda t, m: (_resume(t, m, "stage1", "stage2"), "another kind of run")),
    ("swap-data-without-crops", lambda t, m: (_train(t, m, "swap"), "no clip with crop video")),
    ("swap-steps-zero", lambda t, m: (_train(t, m, "swap", "--steps", "0"), "steps")),
    ("swap-run-folder-is-a-file", lambda t, m: (_train(t, m, "swap", output=_file(t / "run", b"x")), "run folder")),
    ("swap-resume-a-stage2-run", lambda t, m: (_resume(t, m, "stage2", "swap"), "another kind of run")),
    # eval
    ("eval-data-missing", lambda t, m: (_eval(t, m, data=t / "data"), "resyncer preprocess")),
    ("eval-nothing-to-evaluate", lambda t, m: (["eval", "--data", str(m.mesh_data)], "--generator")),
    ("eval-frames-zero", lambda t, m: (_eval(t, m, "--frames", "0"), "frames")),
    ("eval-generator-is-a-syncformer", lambda t, m: (["eval", "--data", str(m.mesh_data), "--generator",
                                                      str(m.models / "syncformer.safetensors")],
                                                     "holds a syncformer model, not a generator")),
    ("eval-json-is-a-folder", lambda t, m: (_eval(t, m, "--json", str(_folder(t / "eval.json"))), "eval.json is a folder")),
    ("eval-json-under-a-file", lambda t, m: (_eval(t, m, "--json", str(_file(t / "plain", b"x") / "eval.json")),
                                             "under the file")),
    ("eval-models-is-a-file", lambda t, m: (_eval(t, m, "--models", str(m.models / "generator.safetensors")),
                                            "is a file, not a folder")),
    ("eval-validation-clips-negative", lambda t, m: (_eval(t, m, "--validation-clips", "-1"), "--validation-clips")),
]


def _files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if not path.is_dir()}


@pytest.fixture(scope="module")
def warm(media, tmp_path_factory):
    """Runs one failing command of each kind first, so the timed runs below measure the
    checks and not Python importing torch, the pack and the face networks."""
    from resyncer_core.face import FaceTracker

    tmp = tmp_path_factory.mktemp("warm")
    FaceTracker().track(np.zeros((1, 64, 64, 3), np.uint8))
    main(_lipsync(tmp, media, video=tmp / "missing.mp4"))
    main(_lipsync(tmp, media, None, None, None, "--style-from", str(media.faceless)))  # loads the models first
    main(_workflow(tmp, media, f"Target video.video={tmp / 'missing.mp4'}"))
    for stage in ("stage1", "stage2", "swap"):
        main(_train(tmp, media, stage, data=tmp / "missing"))
    main(_eval(tmp, media, data=tmp / "missing"))


@pytest.mark.parametrize("make", [case for _, case in BAD_INPUTS], ids=[name for name, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it_and_leaves_nothing(make, media, warm, tmp_path, capfd,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, names = make(tmp_path, media)
    before = _files_under(tmp_path)
    capfd.readouterr()
    started = time.perf_counter()
    try:
        status = main(argv)
    except SystemExit as exit_info:  # argparse's own one-line errors
        status = exit_info.code
    elapsed = time.perf_counter() - started
    error = capfd.readouterr().err
    assert status == 2, error
    assert error.count("\n") == 1 and error.endswith("\n"), error
    assert names in error, error
    assert _files_under(tmp_path) == before
    assert elapsed < FAIL_WITHIN_SECONDS, f"{elapsed:.2f} s before failing"


# ------------------------------------------------------------------------------ odd but valid

def _still(tmp: Path, media, suffix: str) -> Path:
    frame = read_frames(media.clip, stop=1)[0]
    path = tmp / f"still{suffix}"
    Image.fromarray(frame).save(path)
    return path


def _odd_size_clip(tmp: Path, media) -> Path:
    from resyncer_core.synth import write_synthetic_clip

    return write_synthetic_clip(tmp / "odd.mp4", 0.4, FPS, (161, 213), with_audio=False, preset="ultrafast")


def _stereo_44k(tmp: Path, media) -> Path:
    seconds = 0.52
    t = np.arange(round(seconds * 44100)) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    path = tmp / "stereo.wav"
    with wave.open(str(path), "wb") as file:
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(44100)
        file.writeframes(np.stack([tone, tone], axis=1).tobytes())
    return path


def _vfr(tmp: Path, media) -> Path:
    times = [0, 30, 70, 100, 160, 200, 230, 280, 320, 360, 400, 450, 480, 520]
    return variable_rate_clip(tmp / "vfr.mp4", media.clip, times)


def _one_frame_mp4(tmp: Path, media) -> Path:
    from resyncer_core.video import VideoWriter

    frame = read_frames(media.clip, stop=1)[0]
    with VideoWriter(tmp / "one.mp4", 30, frame.shape[:2], preset="ultrafast") as writer:
        writer.write(frame)
    return writer.path


# Each: (id, video maker, audio maker or None for the speech WAV, extra arguments).
ODD_INPUTS = [
    ("still-png", lambda t, m: _still(t, m, ".png"), None, []),
    ("still-jpeg", lambda t, m: _still(t, m, ".jpg"), None, []),
    ("still-webp", lambda t, m: _still(t, m, ".webp"), None, []),
    ("one-frame-mp4-at-30fps", _one_frame_mp4, None, []),
    ("odd-size-161x213", _odd_size_clip, None, []),
    ("variable-frame-rate", _vfr, None, []),
    ("stereo-44k-audio", None, _stereo_44k, []),
    ("audio-from-a-video", None, lambda t, m: m.clip, []),
    ("audio-longer-than-video-pingpong", lambda t, m: _still(t, m, ".png"), lambda t, m: m.clip, []),
    ("short-audio-padded", None, None, ["--short-audio", "pad"]),
]


@pytest.mark.parametrize("make_video, make_audio, extra", [case[1:] for case in ODD_INPUTS],
                         ids=[case[0] for case in ODD_INPUTS])
def test_odd_but_valid_input_gives_the_promised_frames_rate_and_audio(make_video, make_audio, extra, media, tmp_path,
                                                                      capsys):
    video = make_video(tmp_path, media) if make_video else media.clip
    audio = make_audio(tmp_path, media) if make_audio else media.speech
    output = tmp_path / "out.mp4"
    assert main(["lipsync", "--video", str(video), "--audio", str(audio), "-o", str(output), "--models",
                 str(media.models), "--x264-preset", "ultrafast", *extra]) == 0, capsys.readouterr().err
    source, result = probe_video(video), probe_video(output)
    audio_seconds = len(load_audio(audio)) / 16000
    padded = "pad" in extra and audio_seconds < source.duration
    # The output runs at the source's rate, re-timed to a steady one (variable-rate input), for
    # as many frames as the audio spans (the whole video with --short-audio pad).
    expected_frames = source.frame_count if padded else frame_count_for(len(load_audio(audio)), source.fps)
    assert result.frame_rate == source.frame_rate
    assert result.frame_count == expected_frames
    # Odd sizes are padded by one edge row/column to the even size H.264 needs.
    assert (result.width, result.height) == (source.width + source.width % 2, source.height + source.height % 2)
    soundtrack, rate = load_soundtrack(output)
    expected_seconds = source.duration if padded else audio_seconds
    assert abs(soundtrack.shape[-1] / rate - expected_seconds) < 0.05  # [channels, samples]
    assert capsys.readouterr().err == ""



@pytest.mark.parametrize("quiet", [False, True], ids=["notices", "quiet"])
def test_run_workflow_off_a_terminal_writes_nothing_to_stderr_and_leaves_no_previews(media, tmp_path, capfd,
                                                                                    monkeypatch, quiet):
    """Progress lines and transformers' "Loading weights" bar are for terminals; a log gets
    the output file on stdout, after the nodes' notices (the mesh warp standing in for the tiny
    random generator, as `lipsync` prints it), or the file alone with --quiet; stderr stays
    empty either way (an error would be its one line). The nodes' preview sheets live in the
    run's own temporary folder, gone when it ends."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    random_generator = "Load ReSync Generator.model=generator.safetensors"  # the tiny folder's, not the shipped one
    argv = [arg for arg in _workflow(tmp_path, media, "ReSyncerGenerator.batch_size=8", random_generator)
            if quiet or arg != "--quiet"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    *notices, written = captured.out.splitlines()
    assert notices == [] if quiet else any("mesh warp" in line for line in notices), notices
    # Fit Length trims the clip to the speech (its default --short-audio trim).
    source = probe_video(media.clip)
    assert probe_video(written).frame_count == min(source.frame_count, frame_count_for(len(load_audio(media.speech)), source.fps))
    assert list(temp.iterdir()) == []


def test_models_init_into_a_new_nested_folder_is_quiet_on_stderr(tmp_path, capfd):
    assert main(["models", "init", "-o", str(tmp_path / "a" / "b")]) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and "generator.safetensors" in captured.out


def test_meshes_from_video_node_refuses_a_faceless_driver_like_drive_does(media):
    from comfy_stubs.harness import load_pack_as_comfyui

    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.face import FaceTracker

    tracker = FaceTracker()
    target, faceless = tracker.track(read_frames(media.clip, stop=3)), tracker.track(read_frames(media.faceless, stop=3))
    node = load_pack_as_comfyui().NODE_CLASS_MAPPINGS["ReSyncerMeshesFromVideo"]()
    with pytest.raises(ResyncerInputError, match="driver track .* no face"):
        node.transfer(faceless, target)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tiff", ".gif"])
def test_every_still_format_is_a_one_frame_video_read_again_and_again(tmp_path, suffix):
    from resyncer_core.stages.frame_source import FrameSource

    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    path = tmp_path / f"still{suffix}"
    Image.fromarray(image).save(path)
    info = probe_video(path)
    assert (info.frame_count, info.fps, info.width, info.height) == (1, 25.0, 64, 48)
    with FrameSource(path) as source:  # ping-pong over a still reads frame 0 again and again
        reads = [source.read(0, 1) for _ in range(3)]
    assert all(read.shape == (1, 48, 64, 3) and (read == reads[0]).all() for read in reads)
