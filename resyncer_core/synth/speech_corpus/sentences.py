"""English sentences from the fortune-mod databases (Debian `fortunes`, `fortunes-min`): thousands of
distinct, varied sentences (quotations, jokes, literature, science) for a TTS speech corpus.

Entries are split into sentences and kept when they are plain prose a voice can read: one
sentence of 3 to 30 words, letters and ordinary punctuation only, no attributions, code or
ASCII art. Each sentence belongs to the training or the validation split by a hash of its
text, so the split is the same on every machine and never depends on the seed or the order.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ...errors import ResyncerInputError

FORTUNE_FOLDERS = (Path("/usr/share/games/fortunes"), Path("/usr/share/fortunes"), Path("/usr/share/fortune"))
# Databases of pictures, code, machine output or other languages.
_SKIPPED_DATABASES = {"ascii-art", "art", "translate-me", "perl", "linux", "debian", "knghtbrd", "zippy", "linuxcookie"}
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"']?\s+(?=[\"']?[A-Z])")
_READABLE = re.compile(r"^[A-Z][A-Za-z ,;:'\"!?.\-]*[.!?]$")
_WORDS = (3, 30)
VALIDATION_PERCENT = 5


def fortune_databases(folders=FORTUNE_FOLDERS) -> list[Path]:
    """The text fortune databases installed (files with a .dat index beside them)."""
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in sorted(folder.iterdir())
                      if p.is_file() and p.with_name(p.name + ".dat").exists() and p.name not in _SKIPPED_DATABASES]
    return found


def sentences_of_entry(entry: str) -> list[str]:
    """Readable sentences of one fortune entry (attribution lines dropped, whitespace normalised)."""
    lines = [line for line in entry.splitlines() if not line.lstrip().startswith("--") and not line.startswith(("\t", "    "))]
    text = " ".join(" ".join(lines).split()).replace("--", ", ")
    kept = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip().strip("\"'").strip()
        if not _READABLE.match(sentence) or sentence.isupper():
            continue
        if _WORDS[0] <= len(sentence.split()) <= _WORDS[1]:
            kept.append(sentence)
    return kept


def is_validation(sentence: str) -> bool:
    """Whether a sentence is held out for validation (VALIDATION_PERCENT of them, by text hash)."""
    return int(hashlib.sha1(sentence.encode()).hexdigest()[:8], 16) % 100 < VALIDATION_PERCENT


def load_sentences(split: str = "train", databases: list[Path] | None = None) -> list[str]:
    """Distinct sentences of the split ("train" or "validation"), in a fixed order."""
    if split not in ("train", "validation"):
        raise ResyncerInputError(f"sentence split must be 'train' or 'validation', got {split!r}")
    databases = fortune_databases() if databases is None else databases
    if not databases:
        raise ResyncerInputError("no fortune databases found; apt-get install fortunes fortunes-min (needed only "
                                 "to make speech corpora)")
    seen: dict[str, None] = {}
    for path in databases:
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            for sentence in sentences_of_entry(entry):
                seen.setdefault(sentence)
    wanted = split == "validation"
    return [s for s in seen if is_validation(s) == wanted]
