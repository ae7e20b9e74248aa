"""Phone timings of recorded or neural speech from its transcript: pocketsphinx forced alignment.

pocketsphinx (pip `pocketsphinx`, BSD; CMU en-us acoustic model and CMUdict inside) aligns a
known word sequence to 16 kHz audio at 10 ms resolution and returns ARPAbet phones with
silences. Optional: imported on first use; `pocketsphinx_available()` says whether it is there.
"""

from __future__ import annotations

import functools
import importlib.util
import re

import numpy as np

from ...audio import SAMPLE_RATE
from ...errors import ResyncerInputError

_FRAME_S = 0.01  # pocketsphinx's frame rate is 100 Hz
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def pocketsphinx_available() -> bool:
    return importlib.util.find_spec("pocketsphinx") is not None


def transcript_words(text: str) -> list[str]:
    """Lower-case words of a transcript (apostrophes kept inside words, other punctuation dropped)."""
    return _WORD.findall(text.lower().replace("’", "'"))


@functools.cache
def _decoder():
    if not pocketsphinx_available():
        raise ResyncerInputError("pocketsphinx is not installed; pip install pocketsphinx (needed only for forced alignment)")
    from pocketsphinx import Decoder
    return Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL")


def known_words(text: str) -> bool:
    """Whether every word of `text` is in pocketsphinx's pronunciation dictionary (alignable)."""
    decoder = _decoder()
    words = transcript_words(text)
    return bool(words) and all(decoder.lookup_word(word) is not None for word in words)


def align_phones(waveform_16k: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """ARPAbet phone timings [(phone, start_s, end_s)] of `text` spoken in `waveform_16k` (SIL for pauses)."""
    words = transcript_words(text)
    if not words:
        raise ResyncerInputError(f"transcript {text!r} has no words to align")
    decoder = _decoder()
    unknown = [w for w in words if decoder.lookup_word(w) is None]
    if unknown:
        raise ResyncerInputError(f"words not in the pronunciation dictionary: {', '.join(unknown[:5])}; "
                                 "spell them out or choose another sentence")
    pcm = (np.clip(np.asarray(waveform_16k, dtype=np.float32), -1, 1) * 32767).astype("<i2").tobytes()
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    decoder.set_alignment()  # second pass: phone-level segmentation of the aligned words
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    alignment = decoder.get_alignment()
    if alignment is None:
        raise ResyncerInputError("forced alignment failed (audio and transcript do not match)")
    return [(phone.name, phone.start * _FRAME_S, (phone.start + phone.duration) * _FRAME_S)
            for word in alignment for phone in word]
