"""`resyncer preprocess`: videos → DATA with an index; resumable; bad clips skipped with reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _pipeline_media import SMALL_SIZE
from resyncer_core.cli import main
from resyncer_core.synth import synthetic_speech, write_synthetic_clip
from resyncer_core.train.dataset import (
    DATASET_FPS,
    ClipArrays,
    load_clip_arrays,
    load_features,
    read_index,
    read_wav,
    write_clip,
)
from resyncer_core.train.preprocess import find_videos, parse_shard, source_frame_indices
from resyncer_core.video import VideoWriter, read_frames

MIN_FRAMES = 12  # instead of one 100-frame window: keeps the clips (and tracking) short


def faceless_clip_with_sound(path, frames: int):
    """Drifting colour gradients (no face anywhere) with a voice on the soundtrack."""
    height, width = SMALL_SIZE
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    with VideoWriter(path, 25, SMALL_SIZE, audio=(synthetic_speech(frames / 25, 16000, 3), 16000),
                     preset="ultrafast") as writer:
        for index in range(frames):
            frame = np.broadcast_to(ramp + 2 * index, (height, width, 3)) * np.array([1.0, 0.6, 0.3])
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two usable clips (25 and 30 fps, one in a speaker folder) and three unusable videos."""
    videos = tmp_path_factory.mktemp("corpus")
    (videos / "speaker1").mkdir()
    write_synthetic_clip(videos / "speaker1" / "a.mp4", 0.6, 25, SMALL_SIZE, seed=0, preset="ultrafast")
    write_synthetic_clip(videos / "b.mp4", 0.6, 30, SMALL_SIZE, seed=1, preset="ultrafast")
    write_synthetic_clip(videos / "short.mp4", 0.2, 25, SMALL_SIZE, seed=2, preset="ultrafast")
    faceless_clip_with_sound(videos / "faceless.mp4", 14)
    (videos / "corrupt.mp4").write_bytes(b"this is not a video" * 20)
    return videos


@pytest.fixture(scope="module")
def preprocessed(corpus, tmp_path_factory):
    data = tmp_path_factory.mktemp("data") / "DATA"
    argv = ["preprocess", "--videos", str(corpus), "-o", str(data), "--min-frames", str(MIN_FRAMES),
            "--audio-encoder", "mel"]
    return data, argv


def test_preprocess_writes_the_index_and_skips_bad_clips(preprocessed, capsys):
    data, argv = preprocessed
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 clips written, 0 already done, 3 skipped" in out
    assert "no face 1" in out and "too short 1" in out and "unreadable 1" in out
    clips = read_index(data)
    assert [(clip.speaker, clip.frames) for clip in clips] == [("b", 15), ("speaker1", 15)]
    skipped = {record["source"]: record["category"] for record in map(json.loads, (data / "skipped.jsonl").read_text().splitlines())}
    assert skipped == {"corrupt.mp4": "unreadable", "faceless.mp4": "no face", "short.mp4": "too short"}
    for clip in clips:
        arrays = load_clip_arrays(clip)
        assert arrays["canonical"].shape == (15, 468, 3) and arrays["template"].shape == (468, 3)
        assert arrays["valid"].all() and arrays["crop_affine"].shape == (15, 2, 3)
        assert load_features(clip, "mel").shape == (15, 1280)
        assert len(read_wav(clip.folder / "audio.wav")) == 15 * 16000 // 25
        crops = read_frames(clip.folder / "crops.mp4")
        assert crops.shape == (15, 256, 256, 3)
    assert not list(data.glob("clips/.*"))  # no temporary folders left


def test_second_run_skips_finished_clips(preprocessed, capsys):
    data, argv = preprocessed
    if not (data / "index.jsonl").exists():
        assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 clips written, 2 already done" in capsys.readouterr().out
    assert len((data / "index.jsonl").read_text().splitlines()) == 2


def test_frames_are_brought_to_25_fps():
    assert source_frame_indices(25, 10).tolist() == list(range(10))
    assert source_frame_indices(50, 10).tolist() == [0, 2, 4, 6, 8]
    assert source_frame_indices(30, 12).tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert source_frame_indices(12.5, 3).tolist() == [0, 0, 1, 1, 2, 2]


def test_shards_split_the_corpus(corpus):
    everything = find_videos(corpus)
    shards = [find_videos(corpus, parse_shard(f"{i}/2")) for i in range(2)]
    assert sorted(shards[0] + shards[1]) == everything and not set(shards[0]) & set(shards[1])
    with pytest.raises(Exception, match="i/N"):
        parse_shard("2")


def test_clip_writer_accepts_meshes_and_audio_without_video(tmp_path):
    canonical = np.random.default_rng(0).normal(size=(10, 468, 3)).astype(np.float32)
    record = write_clip(tmp_path, "synthetic-1", ClipArrays(canonical=canonical, template=canonical[0]),
                        np.zeros(3000, np.float32), speaker="voice-a", features={"mel": np.ones((10, 4))})
    assert record["has_crops"] is False and record["frames"] == 10 and record["fps"] == DATASET_FPS
    (clip,) = read_index(tmp_path)
    assert load_clip_arrays(clip)["valid"].tolist() == [1] * 10
    assert load_features(clip, "mel").shape == (10, 4)
    assert len(read_wav(clip.folder / "audio.wav")) == 6400  # padded to the 10 frames


@pytest.mark.slow
def test_worker_processes_give_the_same_clips(corpus, tmp_path, capsys):
    data = tmp_path / "DATA"
    assert main(["preprocess", "--videos", str(corpus), "-o", str(data), "--min-frames", str(MIN_FRAMES),
                 "--workers", "2"]) == 0
    assert "2 clips written, 0 already done, 3 skipped" in capsys.readouterr().out
    assert [clip.frames for clip in read_index(data)] == [15, 15]


def test_preprocess_and_train_have_help(capsys):
    for argv in (["preprocess", "--help"], ["train", "--help"], ["train", "stage1", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "--shard" in capsys.readouterr().out
