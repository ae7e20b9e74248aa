"""The bundled demo assets are what demo/README.md says, and the generator still works."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from resyncer_core.synth.make_demo import main
from resyncer_core.video import probe_video

DEMO = Path(__file__).resolve().parent.parent / "demo"


def test_bundled_target_video_is_a_small_silent_4s_clip():
    info = probe_video(DEMO / "target.mp4")
    assert (info.frame_count, info.fps, info.width, info.height, info.has_audio) == (100, 25.0, 512, 512, False)
    assert (DEMO / "target.mp4").stat().st_size < 1_000_000


def test_bundled_speech_is_the_6s_librivox_reading_at_16khz_mono():
    with wave.open(str(DEMO / "speech.wav")) as file:
        assert (file.getnchannels(), file.getframerate(), file.getnframes()) == (1, 16000, 96800)


@pytest.mark.slow
def test_make_demo_regenerates_the_video(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.mp4"]
    assert probe_video(tmp_path / "target.mp4").frame_count == 100
