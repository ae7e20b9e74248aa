"""Audio in: any file PyAV can decode, or an array/tensor, to mono float32 at 16 kHz.

Resampling goes through PyAV's AudioResampler (libswresample's band-limited polyphase filter),
which keeps the channel layout; channels are then averaged, so a stereo clip with the same
signal in both channels comes back at its original level.

What people hear (a soundtrack muxed into an output video) keeps the file's own rate and its
channels (mono or stereo; more channels are downmixed to stereo): `load_soundtrack`.
"""

from __future__ import annotations

import itertools
import numbers
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np
import torch

from ..errors import ResyncerInputError
from ..input_paths import existing_file
from .timing import SAMPLE_RATE

# Arrays are fed to the resampler in pieces of this many samples to keep frames moderate.
_ARRAY_CHUNK_SAMPLES = 1 << 16
# More "channels" than this means the caller almost surely passed [samples, channels].
_MAX_CHANNELS = 64


def load_audio(path_or_array, sample_rate: int | None = None) -> np.ndarray:
    """Mono float32 waveform at 16 kHz.

    path_or_array: a file path (wav, mp3, flac, m4a, the audio track of a video, ...), whose own
    rate is used (sample_rate is ignored); or a numpy array / torch tensor [S], [C,S] or
    [1,C,S] (ComfyUI's AUDIO waveform), float in -1..1 or integer PCM, with sample_rate in Hz.
    Raises ResyncerInputError with one sentence for anything it cannot use.
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        return _load_file(Path(path_or_array))
    return _load_array(path_or_array, sample_rate)


def load_soundtrack(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(float32 waveform [channels, samples], its sample rate) of a file at the file's own rate
    and channels (1 or 2; more are downmixed to stereo), for muxing into an output video: the
    models hear 16 kHz mono, but people should hear the original band and stereo image."""
    path = Path(path)
    rate, channels = _native_format(path)
    return _load_file(path, rate, "mono" if channels == 1 else "stereo"), rate


def _native_format(path: Path) -> tuple[int, int]:
    """The first audio stream's (sample rate, channel count). A file that cannot be opened gets
    the defaults here; _load_file then reports what is wrong with it in one sentence."""
    try:
        with av.open(str(path)) as container:
            if container.streams.audio:
                stream = container.streams.audio[0]
                return int(stream.rate or SAMPLE_RATE), int(stream.channels or 1)
    except (av.FFmpegError, OSError):
        pass
    return SAMPLE_RATE, 1


def _load_file(path: Path, rate: int = SAMPLE_RATE, layout: str | None = None) -> np.ndarray:
    """Mono [S] (layout None: channels averaged) or [C,S] in `layout`, at `rate`."""
    existing_file(path, "audio file", if_folder="give one audio file from it")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise _undecodable(path, error) from None
    with container:
        if not container.streams.audio:
            raise ResyncerInputError(f"{path} has no audio stream; choose a file with an audio track.")
        try:
            frames = container.decode(container.streams.audio[0])
            waveform = _resample_to_mono(frames, rate) if layout is None else _resample(frames, rate, layout)
        except (av.FFmpegError, ValueError) as error:  # ValueError: the resampler met a format change
            raise _undecodable(path, error) from None
    if waveform.size == 0:
        raise ResyncerInputError(f"{path} contains no audio samples; choose a file with sound in it.")
    if not np.isfinite(waveform).all():  # float WAVs can hold them; every later stage would turn to NaN
        raise ResyncerInputError(f"{path} contains NaN or infinite samples; re-export the audio as 16-bit PCM.")
    return waveform


def _undecodable(path: Path, error: Exception) -> ResyncerInputError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ResyncerInputError(f"Could not decode audio from {path} ({reason}); convert it to WAV, FLAC or MP3.")


def _load_array(array, sample_rate) -> np.ndarray:
    if sample_rate is None:
        raise ResyncerInputError("load_audio got an array without sample_rate; pass the waveform's rate in Hz.")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, numbers.Real)
        or sample_rate <= 0
        or not float(sample_rate).is_integer()
    ):
        raise ResyncerInputError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}.")
    channels = _as_float_channels(array)
    mono = channels.mean(axis=0, dtype=np.float64).astype(np.float32)
    if int(sample_rate) == SAMPLE_RATE:
        return mono
    return _resample_to_mono(_mono_frames(mono, int(sample_rate)))


def _as_float_channels(array) -> np.ndarray:
    """[C,S] float32 from [S], [C,S] or [1,C,S], converting integer PCM to -1..1."""
    if torch.is_tensor(array):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2:
        raise ResyncerInputError(
            f"Audio array has shape {array.shape}; pass one clip as [samples], [channels, samples] "
            "or [1, channels, samples]."
        )
    if array.shape[0] > _MAX_CHANNELS:
        raise ResyncerInputError(
            f"Audio array of shape {array.shape} looks like [samples, channels]; transpose it to [channels, samples]."
        )
    if array.shape[1] == 0:
        raise ResyncerInputError("Audio array has zero samples; pass a clip with sound in it.")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        half_range = (float(info.max) - float(info.min) + 1) / 2
        array = (array.astype(np.float64) - (float(info.min) + half_range)) / half_range
    elif not np.issubdtype(array.dtype, np.floating):
        raise ResyncerInputError(f"Audio array has dtype {array.dtype}; pass float samples in -1..1 or integer PCM.")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ResyncerInputError("Audio array contains NaN or infinite samples; clean the waveform first.")
    return array


def _mono_frames(mono: np.ndarray, sample_rate: int) -> Iterator[av.AudioFrame]:
    for start in range(0, mono.size, _ARRAY_CHUNK_SAMPLES):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono[None, start : start + _ARRAY_CHUNK_SAMPLES]), format="fltp", layout="mono"
        )
        frame.sample_rate = sample_rate
        yield frame


def _resample_to_mono(frames: Iterable[av.AudioFrame], rate: int = SAMPLE_RATE) -> np.ndarray:
    resampler = av.AudioResampler(format="fltp", rate=rate)
    pieces = [
        resampled.to_ndarray().mean(axis=0)
        for frame in itertools.chain(frames, [None])  # None flushes the resampler's delay line
        for resampled in resampler.resample(frame)
    ]
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def _resample(frames: Iterable[av.AudioFrame], rate: int, layout: str) -> np.ndarray:
    """[C,S] float32 in `layout` at `rate`."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    pieces = [
        resampled.to_ndarray()
        for frame in itertools.chain(frames, [None])
        for resampled in resampler.resample(frame)
    ]
    channels = 1 if layout == "mono" else 2
    return np.concatenate(pieces, axis=1).astype(np.float32) if pieces else np.zeros((channels, 0), np.float32)
