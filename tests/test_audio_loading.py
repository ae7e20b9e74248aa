"""load_audio: files of several codecs and arrays come back mono float32 at 16 kHz."""

import wave

import numpy as np
import pytest
import torch
from _audio_media import peak_frequency, sine, write_audio, write_video_only, write_video_with_audio

from resyncer_core.audio import SAMPLE_RATE, load_audio
from resyncer_core.errors import ResyncerInputError

ONE_FRAME_AT_25_FPS = SAMPLE_RATE // 25


def assert_is_sine(waveform, seconds, frequency, amplitude=0.5):
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - seconds * SAMPLE_RATE) <= ONE_FRAME_AT_25_FPS
    assert abs(peak_frequency(waveform, SAMPLE_RATE) - frequency) < 2.0
    # Away from codec edge transients the level survives decoding, resampling and downmixing.
    middle = waveform[len(waveform) // 4 : 3 * len(waveform) // 4]
    assert np.abs(middle).max() == pytest.approx(amplitude, rel=0.1)


@pytest.mark.parametrize(
    ("name", "codec", "channels"),
    [("stereo.wav", "pcm_s16le", 2), ("stereo.mp3", "mp3", 2), ("mono.m4a", "aac", 1), ("stereo.flac", "flac", 2)],
)
def test_files_decode_to_mono_16k(tmp_path, name, codec, channels):
    tone = sine(440, 2.0, 44100)
    write_audio(tmp_path / name, np.stack([tone] * channels), 44100, codec)
    assert_is_sine(load_audio(tmp_path / name), 2.0, 440)


def test_audio_track_of_a_video(tmp_path):
    path = write_video_with_audio(tmp_path / "talk.mp4", sine(300, 1.5, 48000), 48000)
    assert_is_sine(load_audio(str(path)), 1.5, 300)


def test_stereo_downmix_averages_channels():
    tone = sine(440, 1.0, 16000)
    mono = load_audio(np.stack([tone, np.zeros_like(tone)]), 16000)
    np.testing.assert_allclose(mono, tone / 2, atol=1e-7)


@pytest.mark.parametrize(
    "make_input",
    [
        lambda tone: tone,
        lambda tone: np.stack([tone, tone]),
        lambda tone: torch.from_numpy(np.stack([tone, tone]))[None],  # ComfyUI AUDIO waveform
        lambda tone: (tone * 32767).astype(np.int16),
    ],
    ids=["1d", "channels", "comfy-tensor", "int16"],
)
def test_arrays_resample_to_16k(make_input):
    waveform = load_audio(make_input(sine(440, 1.5, 48000)), sample_rate=48000)
    assert_is_sine(waveform, 1.5, 440)
    assert len(waveform) == 24000


def test_16k_array_passes_through_unchanged():
    tone = sine(440, 0.5, SAMPLE_RATE)
    np.testing.assert_array_equal(load_audio(tone, SAMPLE_RATE), tone)


def _raises_one_line(call, *words):
    with pytest.raises(ResyncerInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_file_errors(tmp_path):
    _raises_one_line(lambda: load_audio(tmp_path / "missing.wav"), "missing.wav", "does not exist")
    video_only = write_video_only(tmp_path / "silent_film.mp4")
    _raises_one_line(lambda: load_audio(video_only), "silent_film.mp4", "no audio stream")
    garbage = tmp_path / "noise.mp3"
    garbage.write_bytes(b"this is not audio\n" * 50)
    _raises_one_line(lambda: load_audio(garbage), "noise.mp3", "decode")
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as writer:
        writer.setnchannels(1), writer.setsampwidth(2), writer.setframerate(16000)
    _raises_one_line(lambda: load_audio(empty), "empty.wav", "no audio samples")


@pytest.mark.parametrize(
    ("array", "sample_rate", "word"),
    [
        (np.zeros(100, np.float32), None, "sample_rate"),
        (np.zeros(100, np.float32), 0, "sample_rate"),
        (np.zeros(100, np.float32), "16k", "sample_rate"),
        (np.zeros((2, 0), np.float32), 16000, "zero samples"),
        (np.zeros((2, 2, 100), np.float32), 16000, "shape"),
        (np.zeros((48000, 2), np.float32), 48000, "transpose"),
        (np.array([0.0, np.nan], np.float32), 16000, "NaN"),
        (np.array(["a", "b"]), 16000, "dtype"),
    ],
    ids=["no-rate", "zero-rate", "text-rate", "empty", "batch-of-2", "samples-first", "nan", "strings"],
)
def test_array_errors(array, sample_rate, word):
    _raises_one_line(lambda: load_audio(array, sample_rate), word)


def test_soundtrack_keeps_the_files_own_rate_and_band(tmp_path):
    """What is muxed into output videos: the file's rate, so an 11 kHz tone (gone at 16 kHz)
    survives, and its channels (stereo stays stereo, left and right apart)."""
    from resyncer_core.audio import load_soundtrack

    tone = sine(11000, 0.5, 44100)
    path = write_audio(tmp_path / "wide.wav", np.stack([tone, tone * 0.5]), 44100, "pcm_s16le")
    channels, rate = load_soundtrack(path)
    assert rate == 44100 and channels.dtype == np.float32 and channels.shape[0] == 2
    assert abs(channels.shape[1] - len(tone)) <= 1
    np.testing.assert_allclose(channels[1], channels[0] * 0.5, atol=2e-4)
    waveform = channels[0]
    assert abs(peak_frequency(waveform, rate) - 11000) < 20
    def interior_rms(x):  # past the resampler's onset transient at both ends
        return float(np.sqrt(np.mean(x[len(x) // 10: -len(x) // 10] ** 2)))

    assert interior_rms(load_audio(path)) < 0.05 * interior_rms(waveform)  # the models' 16 kHz copy has lost it
    with pytest.raises(ResyncerInputError, match="does not exist"):
        load_soundtrack(tmp_path / "absent.wav")
