"""A synthetic speech corpus for stage 1: English sentences (fortune databases) read by many
synthetic speakers (espeak-ng variants, Piper), phone timings → viseme rig → meshes at 25 fps.

The TTS engines and the aligner are tools, not dependencies of the pack: each is loaded on
first use and reported missing with a one-line error. tools/make_speech_corpus.py writes a
training dataset folder from this package.
"""

from .augment import Augmentation, augment
from .corpus import CorpusPlan, SyntheticSpeechClip, make_clip
from .sentences import load_sentences
from .speakers import SyntheticSpeaker, random_face_shape
from .voices import available_voice_kinds

__all__ = ["Augmentation", "CorpusPlan", "SyntheticSpeaker", "SyntheticSpeechClip", "augment", "available_voice_kinds",
           "load_sentences", "make_clip", "random_face_shape"]
